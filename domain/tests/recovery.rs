//! The queue recovers, on both backends: a job that panics is a failed attempt and
//! runs again; a previous process's jobs are taken over soon after a restart; one
//! tenant's hanging jobs leave places for the other tenants.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use domain::db::Backend;
use domain::jobs::{self, Job, NewJob, Outcome};
use domain::tenants;
use domain::testing::TestDb;
use domain::worker::{self, Handler, Ran, WorkerConfig};
use domain::Core;
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn enqueue(t: &TestDb, tenant: &str, count: usize) {
    let mut conn = t.db.writer().acquire().await.unwrap();
    let batch: Vec<NewJob> = (0..count)
        .map(|n| NewJob::raw(tenant, KIND, json!({ "n": n })))
        .collect();
    jobs::enqueue(&mut conn, &batch).await.unwrap();
}

/// The statuses of a tenant's jobs, in the order enqueued.
async fn statuses(t: &TestDb, tenant: &str) -> Vec<String> {
    domain::sqlx::query_scalar("SELECT status FROM jobs WHERE tenant_id = $1 ORDER BY seq")
        .bind(tenant)
        .fetch_all(t.db.reader())
        .await
        .unwrap()
}

async fn all_done(t: &TestDb, tenant: &str) -> bool {
    statuses(t, tenant).await.iter().all(|s| s == "done")
}

/// Waits until `check` holds, for at most `within`; false if it never did.
async fn within<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The only kind these tests' jobs have: the queue runs whatever its handler knows.
const KIND: &str = "test.kind";

/// A handler that runs every job of [`KIND`] with `f`.
struct Test<F>(F);

impl<F, Fut> Handler for Test<F>
where
    F: Fn(Vec<Job>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Vec<Ran>> + Send + 'static,
{
    fn kinds(&self) -> &[&'static str] {
        &[KIND]
    }

    fn run(&self, _core: Core, run: Vec<Job>) -> BoxFuture<'static, Vec<Ran>> {
        Box::pin((self.0)(run))
    }
}

fn handler<F, Fut>(f: F) -> Arc<dyn Handler>
where
    F: Fn(Vec<Job>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Vec<Ran>> + Send + 'static,
{
    Arc::new(Test(f))
}

fn done(run: &[Job]) -> Vec<Ran> {
    run.iter().map(|_| Ran::from(Outcome::Done)).collect()
}

fn quick() -> WorkerConfig {
    WorkerConfig {
        poll: Duration::from_millis(50),
        ..WorkerConfig::default()
    }
}

#[tokio::test]
async fn a_job_that_panics_is_a_failed_attempt_and_runs_again() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        enqueue(&t, "acme", 1).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let panics_once = handler(move |run: Vec<Job>| {
            let counted = counted.clone();
            async move {
                if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                    // A panic without the panic hook: with RUST_BACKTRACE set (as in
                    // CI), the hook's backtrace of this large test binary alone takes
                    // about a minute on two cores, on the runtime's only thread.
                    std::panic::resume_unwind(Box::new("expiry overflowed"));
                }
                done(&run)
            }
        });
        let shutdown = CancellationToken::new();
        let worker = tokio::spawn(worker::run(
            t.core(),
            quick(),
            panics_once,
            shutdown.clone(),
        ));
        // The retry's backoff (2 s) is cut short: only the outcome matters here.
        let retried = within(Duration::from_secs(30), || async {
            domain::sqlx::query("UPDATE jobs SET run_at = 0 WHERE status = 'queued'")
                .execute(t.db.writer())
                .await
                .unwrap();
            all_done(&t, "acme").await
        })
        .await;
        shutdown.cancel();
        worker.await.unwrap();
        assert!(
            retried,
            "{:?}: {:?}",
            t.backend(),
            statuses(&t, "acme").await
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let attempts: Vec<(i64, Option<String>)> =
            domain::sqlx::query_as("SELECT attempt, error FROM job_attempts ORDER BY attempt")
                .fetch_all(t.db.reader())
                .await
                .unwrap();
        assert_eq!(attempts.len(), 2, "{attempts:?}");
        let error = attempts[0].1.as_deref().unwrap_or_default();
        assert!(error.contains("expiry overflowed"), "{error}");
        assert_eq!(attempts[1].1, None);
    }
}

#[tokio::test]
async fn only_the_leases_of_live_jobs_are_renewed() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        enqueue(&t, "acme", 2).await;
        let claimed = jobs::claim(&t.db, "w1", &[KIND], 10, 200).await.unwrap();
        assert_eq!(claimed.len(), 2);
        // Only the first job's task is alive.
        jobs::heartbeat(&t.db, "w1", &[claimed[0].seq], 60_000)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let taken = jobs::claim(&t.db, "w2", &[KIND], 10, 60_000).await.unwrap();
        let taken: Vec<i64> = taken.iter().map(|j| j.seq).collect();
        assert_eq!(taken, [claimed[1].seq], "{:?}", t.backend());
    }
}

/// A process died with jobs claimed: its successor (SQLite) or another replica
/// (PostgreSQL) runs them within about 15 s, not after the old one-minute lease.
#[tokio::test]
async fn a_dead_processs_jobs_run_soon_after_a_restart() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        enqueue(&t, "acme", 20).await;
        let config = WorkerConfig {
            poll: Duration::from_millis(50),
            ..WorkerConfig::for_backend(t.backend())
        };
        let claimed = jobs::claim(&t.db, "wrk_dead", &[KIND], 20, config.lease_ms)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 20);

        let started = tokio::time::Instant::now();
        let shutdown = CancellationToken::new();
        let worker = tokio::spawn(worker::run(
            t.core(),
            config,
            handler(|run: Vec<Job>| async move { done(&run) }),
            shutdown.clone(),
        ));
        let limit = match t.backend() {
            Backend::Sqlite => Duration::from_secs(5),
            Backend::Postgres => Duration::from_secs(17),
        };
        let recovered = within(limit, || all_done(&t, "acme")).await;
        shutdown.cancel();
        worker.await.unwrap();
        assert!(
            recovered,
            "{:?}: not taken over within {limit:?}: {:?}",
            t.backend(),
            statuses(&t, "acme").await
        );
        if t.backend() == Backend::Sqlite {
            assert!(started.elapsed() < Duration::from_secs(5));
        }
    }
}

/// One tenant's jobs hang (callbacks to a host that never answers): another
/// tenant's job, queued after all of them, still runs meanwhile.
#[tokio::test]
async fn one_tenants_hanging_jobs_leave_places_for_the_others() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "slow", "Slow").await.unwrap();
        tenants::create(&t.db, "quick", "Quick").await.unwrap();
        enqueue(&t, "slow", 60).await;
        enqueue(&t, "quick", 1).await;
        let release = CancellationToken::new();
        let hanging = release.clone();
        let hangs_for_slow = handler(move |run: Vec<Job>| {
            let hanging = hanging.clone();
            async move {
                if run[0].tenant_id == "slow" {
                    hanging.cancelled().await;
                }
                done(&run)
            }
        });
        let shutdown = CancellationToken::new();
        let worker = tokio::spawn(worker::run(
            t.core(),
            quick(),
            hangs_for_slow,
            shutdown.clone(),
        ));
        let served = within(Duration::from_secs(10), || all_done(&t, "quick")).await;
        let slow = statuses(&t, "slow").await;
        release.cancel();
        shutdown.cancel();
        worker.await.unwrap();
        assert!(served, "{:?}: the other tenant waited", t.backend());
        let running = slow.iter().filter(|s| *s == "running").count();
        assert_eq!(
            running,
            WorkerConfig::default().per_tenant,
            "{:?}: the slow tenant holds its share of the places, no more",
            t.backend()
        );
    }
}
