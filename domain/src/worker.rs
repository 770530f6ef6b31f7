//! The worker loop: claims jobs, runs them side by side, renews their leases, and
//! records how each attempt ended. Started by `passhook serve`, stopped with it.

use std::any::Any;
use std::collections::{BTreeSet, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use sqlx::{AnyConnection, Connection};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::core::Core;
use crate::db::{Backend, Db};
use crate::error::Result;
use crate::ids::new_id;
use crate::jobs::{self, Job, JobStatus, Outcome};
use crate::live::LiveEvent;
use crate::{deliveries, events};

/// How a worker claims jobs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// A claimed job belongs to its worker this long unless renewed; a crashed
    /// worker's jobs run again after it.
    pub lease_ms: i64,
    /// How often the worker looks for jobs when nobody signals new ones.
    pub poll: Duration,
    /// Jobs claimed and run side by side at once.
    pub batch: i64,
    /// Jobs of one ordering key claimed and run one after the other as one run (see
    /// [`Handler::run_kinds`]); a run takes one of the `batch` places.
    pub run: usize,
    /// Places one tenant holds at most (its ordered pass updates aside): one tenant's
    /// slow jobs (callbacks to a host that hangs) never hold the places every other
    /// tenant's work needs.
    pub per_tenant: usize,
}

/// The lease on PostgreSQL: a replica that died has its jobs taken over by the
/// others within this (the renewals of a live worker come every third of it).
pub const REPLICA_LEASE_MS: i64 = 12_000;

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            lease_ms: 60_000,
            poll: Duration::from_millis(500),
            batch: 32,
            run: 32,
            per_tenant: 16,
        }
    }
}

impl WorkerConfig {
    /// The defaults for a backend. SQLite is one process by design, which takes its
    /// predecessor's jobs over at start ([`jobs::take_over_at_start`]): its lease
    /// only guards against a database that stops answering, and can be long. On
    /// PostgreSQL leases are short, so that a dead replica's jobs come back soon.
    pub fn for_backend(backend: Backend) -> Self {
        let lease_ms = match backend {
            Backend::Sqlite => 60_000,
            Backend::Postgres => REPLICA_LEASE_MS,
        };
        WorkerConfig {
            lease_ms,
            ..WorkerConfig::default()
        }
    }
}

/// What the workers run: the queue knows no job kind, its handler does (the
/// product's is [`crate::processing::Flows`]; a test may bring its own).
pub trait Handler: Send + Sync + 'static {
    /// The kinds of job it runs: the queue claims only these.
    fn kinds(&self) -> &[&'static str];

    /// The kinds whose consecutive jobs of one ordering key are claimed together as
    /// one run (and do not count in a tenant's share of places; see
    /// [`jobs::Shares`]).
    fn run_kinds(&self) -> &[&'static str] {
        &[]
    }

    /// Runs a claimed run (most often one job); one outcome per job, in order.
    fn run(&self, core: Core, run: Vec<Job>) -> BoxFuture<'static, Vec<Ran>>;

    /// What a job's death implies (a custom action's notifyKO callbacks), written in
    /// the transaction that marks it dead, so a crash cannot lose it.
    fn on_dead<'a>(
        &'a self,
        _db: &'a Db,
        _conn: &'a mut AnyConnection,
        _job: &'a Job,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// How a job attempt went, with the delivery attempt it made (recorded in the same
/// transaction as the job's outcome).
#[derive(Debug)]
pub struct Ran {
    pub outcome: Outcome,
    pub delivery: Option<(String, deliveries::Attempt)>,
}

impl From<Outcome> for Ran {
    fn from(outcome: Outcome) -> Self {
        Ran {
            outcome,
            delivery: None,
        }
    }
}

/// Runs the jobs `handler` knows until `shutdown`; jobs already started are finished
/// first.
///
/// Up to `batch` jobs run side by side, and free places are filled as jobs finish:
/// one slow job (a callback to a peer that hangs until the HTTP timeout) never holds
/// back the jobs behind it.
pub async fn run(
    core: Core,
    config: WorkerConfig,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) {
    let worker = new_id("wrk");
    tracing::info!(%worker, "worker started");
    match jobs::take_over_at_start(&core.db).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "running jobs of a previous process taken over"),
        Err(e) => tracing::warn!(error = %e, "cannot take over a previous process's jobs"),
    }
    let finisher = Finisher::start(core.db.clone(), worker.clone(), handler.clone());
    let mut running = JoinSet::new();
    // What each running task runs: a job whose lease lapsed while it still runs here
    // can come back in a claim, and must not start a second time beside itself; only
    // these jobs' leases are renewed; and each tenant's places are counted.
    let mut tasks: HashMap<tokio::task::Id, Task> = HashMap::new();
    let runs = jobs::Runs {
        kinds: handler.run_kinds(),
        max: config.run.max(1),
    };
    let mut orphans_checked = tokio::time::Instant::now();
    let lease = Duration::from_millis(config.lease_ms as u64);
    // When the running jobs' leases were last set (by their claim or a renewal).
    let mut renewed = tokio::time::Instant::now();
    let mut heartbeat = tokio::time::interval(lease / 3);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Claims wait for a quarter of the places to be free, so that a busy queue is not
    // claimed from one job at a time.
    let refill = (config.batch / 4).max(1) as usize;
    let mut claim_failed = false;
    loop {
        let free = config.batch.max(1) as usize - running.len();
        let mut idle = false;
        if !shutdown.is_cancelled() && (running.is_empty() || free >= refill) {
            let asked = tokio::time::Instant::now();
            let busy = places_by_tenant(&tasks);
            let shares = jobs::Shares {
                per_tenant: config.per_tenant.max(1),
                exempt: handler.run_kinds(),
                busy: &busy,
            };
            match jobs::claim_shared(
                &core.db,
                &worker,
                handler.kinds(),
                &runs,
                &shares,
                free as i64,
                config.lease_ms,
            )
            .await
            {
                Ok(claimed) => {
                    claim_failed = false;
                    // Fewer than asked: the queue is empty for now, so wait for news.
                    idle = claimed.len() < free;
                    if running.is_empty() {
                        renewed = asked;
                        heartbeat.reset();
                    }
                    for run in claimed {
                        let busy = |job: &Job| tasks.values().any(|t| t.seqs.contains(&job.seq));
                        if run.iter().any(busy) {
                            continue;
                        }
                        let task = Task {
                            tenant_id: run[0].tenant_id.clone(),
                            counted: !handler.run_kinds().contains(&run[0].kind.as_str()),
                            seqs: run.iter().map(|job| job.seq).collect(),
                        };
                        let (core, finisher, handler) =
                            (core.clone(), finisher.clone(), handler.clone());
                        let spawned = running.spawn(async move {
                            run_in_order(&core, &finisher, &handler, run).await
                        });
                        tasks.insert(spawned.id(), task);
                    }
                    if idle && orphans_checked.elapsed() >= ORPHAN_CHECK {
                        orphans_checked = tokio::time::Instant::now();
                        promote_orphans(&core.db).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim jobs; retrying");
                    claim_failed = true;
                }
            }
        }
        if shutdown.is_cancelled() && running.is_empty() {
            break;
        }
        let wait = if claim_failed {
            Duration::from_secs(1)
        } else {
            config.poll
        };
        tokio::select! {
            Some(ended) = running.join_next_with_id(), if !running.is_empty() => {
                let mut ended = Some(ended);
                while let Some(task) = ended {
                    tasks.remove(&task.map_or_else(|e| e.id(), |(id, ())| id));
                    ended = running.try_join_next_with_id();
                }
            }
            _ = core.jobs_ready.notified(), if idle => {}
            _ = tokio::time::sleep(wait), if idle || claim_failed => {}
            _ = shutdown.cancelled(), if !shutdown.is_cancelled() => {}
            _ = heartbeat.tick(), if !running.is_empty() => {
                let asked = tokio::time::Instant::now();
                let live: Vec<i64> = tasks.values().flat_map(|t| t.seqs.iter().copied()).collect();
                match tokio::time::timeout(lease / 3, jobs::heartbeat(&core.db, &worker, &live, config.lease_ms)).await {
                    Ok(Ok(())) => renewed = asked,
                    Ok(Err(e)) => tracing::warn!(error = %e, "cannot renew job leases"),
                    Err(_) => tracing::warn!("cannot renew job leases: the database does not answer"),
                }
                // Another worker may take these jobs once their lease lapses: stop
                // them first (as a crash would: each job's writes are transactional,
                // and it runs again), so a job never runs twice at once.
                if renewed.elapsed() >= lease * 2 / 3 {
                    tracing::error!(jobs = running.len(), "job leases could not be renewed; abandoning the running jobs");
                    running.abort_all();
                    while running.join_next().await.is_some() {}
                    tasks.clear();
                }
            }
        }
    }
    tracing::info!(%worker, "worker stopped");
}

/// A running task's run: its tenant, whether it counts in the tenant's share (see
/// [`jobs::Shares`]), and its jobs.
struct Task {
    tenant_id: String,
    counted: bool,
    seqs: Vec<i64>,
}

fn places_by_tenant(tasks: &HashMap<tokio::task::Id, Task>) -> HashMap<String, usize> {
    let mut busy = HashMap::new();
    for task in tasks.values().filter(|t| t.counted) {
        *busy.entry(task.tenant_id.clone()).or_default() += 1;
    }
    busy
}

/// How often an idle worker looks for waiting jobs left without a job ahead of them.
const ORPHAN_CHECK: Duration = Duration::from_secs(2);

async fn promote_orphans(db: &Db) {
    match jobs::promote_orphans(db).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(jobs = n, "waiting jobs with nothing ahead of them queued"),
        Err(e) => tracing::warn!(error = %e, "cannot look for waiting jobs"),
    }
}

/// Runs a claimed run (most often one job) and hands every outcome to the finisher
/// at once, so they share its next commit.
async fn run_in_order(core: &Core, finisher: &Finisher, handler: &Arc<dyn Handler>, run: Vec<Job>) {
    let started = now_ms();
    let rans = match AssertUnwindSafe(handler.run(core.clone(), run.clone()))
        .catch_unwind()
        .await
    {
        Ok(rans) => rans,
        Err(panic) => panicked(&run, panic.as_ref()),
    };
    let mut replies = Vec::with_capacity(run.len());
    for (job, ran) in run.into_iter().zip(rans) {
        if let Outcome::Retry { error, .. } | Outcome::Fatal { error } = &ran.outcome {
            tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempt, %error, "job attempt failed");
        }
        replies.push(finisher.send(job, started, ran).await);
    }
    let mut dead = false;
    for reply in replies {
        let answer = match reply {
            Some(answer) => answer.await.ok().flatten(),
            None => None,
        };
        match answer {
            Some(status) => dead |= status == Some(JobStatus::Dead),
            None => tracing::error!(
                "cannot record a job's outcome; its lease will expire and it will run again"
            ),
        }
    }
    // A dead custom action queued its notifyKO callbacks: wake a worker for them.
    if dead {
        core.jobs_ready.notify_one();
    }
}

/// The outcomes of a run whose handler panicked: a failed attempt of its first job,
/// with the panic's message, retried like any failure; the jobs behind it wait for it.
fn panicked(run: &[Job], panic: &(dyn Any + Send)) -> Vec<Ran> {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    tracing::error!(job = %run[0].id, kind = %run[0].kind, %message, "job panicked");
    let mut rans: Vec<Ran> = vec![Outcome::Retry {
        error: format!("the job panicked: {message}"),
        retry_after_ms: None,
    }
    .into()];
    rans.extend(run[1..].iter().map(|_| Ran::from(Outcome::Released)));
    rans
}

/// A job's status once its outcome is recorded; `None` when its lease was lost.
type Recorded = Option<JobStatus>;

/// A job attempt that ended, on its way to the database.
struct Finished {
    job: Job,
    started_at: i64,
    ran: Ran,
    /// The job's recorded status (`Some(None)`: the lease was lost and nothing was
    /// written); `None` when the database refused the batch.
    reply: oneshot::Sender<Option<Recorded>>,
}

/// Group commit for job outcomes: a worker's finished attempts (the job's new state,
/// the attempt row, a delivery attempt, a dead custom action's notifyKO callbacks,
/// and the settling of events whose last job this was) are written in one
/// transaction per batch, whatever ended during the previous commit, instead of two
/// or three transactions per job. A crash leaves all of an attempt's consequences or
/// none (the job then runs again once its lease lapses).
#[derive(Clone)]
struct Finisher {
    sender: mpsc::Sender<Finished>,
}

/// Outcomes recorded per commit at most (a commit holds the SQLite writer, which
/// inbound events wait for).
const FINISH_BATCH: usize = 16;

impl Finisher {
    fn start(db: Db, worker: String, handler: Arc<dyn Handler>) -> Finisher {
        let (sender, receiver) = mpsc::channel(4 * FINISH_BATCH);
        tokio::spawn(record_batches(db, worker, handler, receiver));
        Finisher { sender }
    }

    /// Queues an outcome; the answer says whether it was recorded (see [`Finished`]).
    async fn send(
        &self,
        job: Job,
        started_at: i64,
        ran: Ran,
    ) -> Option<oneshot::Receiver<Option<Recorded>>> {
        let (reply, answer) = oneshot::channel();
        let finished = Finished {
            job,
            started_at,
            ran,
            reply,
        };
        self.sender.send(finished).await.ok()?;
        Some(answer)
    }
}

async fn record_batches(
    db: Db,
    worker: String,
    handler: Arc<dyn Handler>,
    mut receiver: mpsc::Receiver<Finished>,
) {
    let mut batch = Vec::with_capacity(FINISH_BATCH);
    while receiver.recv_many(&mut batch, FINISH_BATCH).await > 0 {
        match record(&db, &worker, handler.as_ref(), &batch).await {
            Ok((recorded, live)) => {
                db.publish_all(live);
                for (finished, recorded) in batch.drain(..).zip(recorded) {
                    let _ = finished.reply.send(Some(recorded));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "cannot record job outcomes");
                for finished in batch.drain(..) {
                    let _ = finished.reply.send(None);
                }
            }
        }
    }
}

async fn record(
    db: &Db,
    worker: &str,
    handler: &dyn Handler,
    batch: &[Finished],
) -> Result<(Vec<Recorded>, Vec<LiveEvent>)> {
    let mut conn = db.background().await?;
    let mut tx = conn.begin().await?;
    // The call was made whatever became of the lease: its attempt is recorded.
    let attempts: Vec<(&str, &deliveries::Attempt)> = batch
        .iter()
        .filter_map(|f| f.ran.delivery.as_ref())
        .map(|(delivery_id, attempt)| (delivery_id.as_str(), attempt))
        .collect();
    let mut live = deliveries::record_attempts_in(&mut tx, &attempts).await?;
    let ended: Vec<jobs::Ended> = batch
        .iter()
        .map(|f| jobs::Ended {
            job: &f.job,
            started_at: f.started_at,
            outcome: &f.ran.outcome,
        })
        .collect();
    let recorded = jobs::finish_many_in(&mut tx, worker, &ended).await?;
    for (f, status) in batch.iter().zip(&recorded) {
        if *status == Some(JobStatus::Dead) {
            handler.on_dead(db, &mut tx, &f.job).await?;
        }
    }
    // In a stable order: on PostgreSQL settling locks the events' rows.
    let settled: BTreeSet<&str> = batch
        .iter()
        .zip(&recorded)
        .filter(|(_, recorded)| recorded.is_some())
        .filter_map(|(f, _)| f.job.event_id.as_deref())
        .collect();
    let settled: Vec<&str> = settled.into_iter().collect();
    live.extend(events::settle_all_when_done_in(&mut tx, &settled).await?);
    if db.notify_in(&mut tx, &live).await? {
        live.clear();
    }
    tx.commit().await?;
    Ok((recorded, live))
}
