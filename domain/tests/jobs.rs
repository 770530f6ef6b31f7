//! The job queue on both backends: backoff, then dead-letter, then a manual retry;
//! ordered jobs waiting their turn, runs, and waiting jobs moved up.

use domain::jobs::{self, JobStatus, NewJob, Outcome};
use domain::tenants;
use domain::testing::TestDb;
use serde_json::json;

async fn force_due(t: &TestDb) {
    domain::sqlx::query("UPDATE jobs SET run_at = 0")
        .execute(t.db.writer())
        .await
        .unwrap();
}

#[tokio::test]
async fn failing_jobs_back_off_then_go_dead_and_can_be_retried() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let mut conn = t.db.writer().acquire().await.unwrap();
        jobs::enqueue(
            &mut conn,
            &[NewJob::raw("acme", "test.kind", json!({})).attempts(2)],
        )
        .await
        .unwrap();
        drop(conn);
        let failure = Outcome::Retry {
            error: "upstream said 503".into(),
            retry_after_ms: None,
        };

        let first = jobs::claim(&t.db, "w1", &["test.kind"], 10, 60_000)
            .await
            .unwrap();
        assert_eq!(first.len(), 1);
        assert!(
            jobs::claim(&t.db, "w2", &["test.kind"], 10, 60_000)
                .await
                .unwrap()
                .is_empty(),
            "leased to w1"
        );
        jobs::finish(&t.db, &first[0], "w1", 0, &failure)
            .await
            .unwrap();
        assert!(
            jobs::claim(&t.db, "w2", &["test.kind"], 10, 60_000)
                .await
                .unwrap()
                .is_empty(),
            "backing off"
        );

        force_due(&t).await;
        let second = jobs::claim(&t.db, "w2", &["test.kind"], 10, 60_000)
            .await
            .unwrap();
        assert_eq!(second[0].attempt, 2);
        jobs::finish(&t.db, &second[0], "w2", 0, &failure)
            .await
            .unwrap();
        assert_eq!(
            jobs::counts(&t.db, "acme").await.unwrap(),
            [("dead".to_string(), 1)],
            "{:?}",
            t.backend()
        );
        let (error,): (Option<String>,) = domain::sqlx::query_as("SELECT last_error FROM jobs")
            .fetch_one(t.db.reader())
            .await
            .unwrap();
        assert_eq!(error.as_deref(), Some("upstream said 503"));
        let (attempts,): (i64,) = domain::sqlx::query_as("SELECT COUNT(*) FROM job_attempts")
            .fetch_one(t.db.reader())
            .await
            .unwrap();
        assert_eq!(attempts, 2, "every attempt is recorded");

        force_due(&t).await;
        assert!(
            jobs::claim(&t.db, "w3", &["test.kind"], 10, 60_000)
                .await
                .unwrap()
                .is_empty(),
            "dead jobs stay dead"
        );
        jobs::retry_dead(&t.db, "acme", &second[0].id)
            .await
            .unwrap();
        let again = jobs::claim(&t.db, "w3", &["test.kind"], 10, 60_000)
            .await
            .unwrap();
        assert_eq!(
            again[0].attempt, 1,
            "a manual retry starts a fresh set of attempts"
        );
        jobs::finish(&t.db, &again[0], "w3", 0, &Outcome::Done)
            .await
            .unwrap();
        assert_eq!(
            jobs::counts(&t.db, "acme").await.unwrap(),
            [("done".to_string(), 1)]
        );
    }
}

#[tokio::test]
async fn an_expired_lease_hands_the_job_to_another_worker() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let mut conn = t.db.writer().acquire().await.unwrap();
        jobs::enqueue(&mut conn, &[NewJob::raw("acme", "test.kind", json!({}))])
            .await
            .unwrap();
        drop(conn);
        let crashed = jobs::claim(&t.db, "w1", &["test.kind"], 10, 50)
            .await
            .unwrap();
        assert_eq!(crashed.len(), 1);
        tokio::time::sleep(std::time::Duration::from_millis(80)).await;
        let taken = jobs::claim(&t.db, "w2", &["test.kind"], 10, 60_000)
            .await
            .unwrap();
        assert_eq!(taken[0].id, crashed[0].id);
        // The crashed worker's late report is ignored: the job is w2's now.
        jobs::finish(&t.db, &crashed[0], "w1", 0, &Outcome::Done)
            .await
            .unwrap();
        assert_eq!(
            jobs::counts(&t.db, "acme").await.unwrap(),
            [("running".to_string(), 1)]
        );
    }
}

async fn live_refresh_jobs(t: &TestDb) -> i64 {
    let (n,): (i64,) = domain::sqlx::query_as(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'wallet.refresh' AND status IN ('queued', 'running')",
    )
    .fetch_one(t.db.reader())
    .await
    .unwrap();
    n
}

#[tokio::test]
async fn owed_refreshes_coalesce_and_a_dead_job_is_replaced() {
    use domain::wallet::delivery;
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let mut conn = t.db.writer().acquire().await.unwrap();
        delivery::owe(&mut conn, "acme", "p1", 2, false, None)
            .await
            .unwrap();
        delivery::owe(&mut conn, "acme", "p1", 3, true, Some("Hi"))
            .await
            .unwrap();
        assert_eq!(live_refresh_jobs(&t).await, 1, "one job for both versions");

        // The job gave up (dead-lettered): the next update must not wait on it.
        domain::sqlx::query("UPDATE jobs SET status = 'dead'")
            .execute(&mut *conn)
            .await
            .unwrap();
        delivery::owe(&mut conn, "acme", "p1", 4, false, None)
            .await
            .unwrap();
        assert_eq!(live_refresh_jobs(&t).await, 1);
        let (version, significant): (i64, i64) = domain::sqlx::query_as(
            "SELECT version, significant FROM wallet_refreshes WHERE pass_id = 'p1'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(
            (version, significant),
            (4, 3),
            "the newest version, and the last significant one"
        );
    }
}

/// Enqueues one job per kind, all of one ordering key, in one call; returns their ids.
async fn enqueue_ordered(t: &TestDb, kinds: &[&'static str]) -> Vec<String> {
    let jobs: Vec<NewJob> = kinds
        .iter()
        .map(|kind| NewJob::raw("acme", kind, json!({})).ordered_by("k".into()))
        .collect();
    let mut conn = t.db.writer().acquire().await.unwrap();
    jobs::enqueue(&mut conn, &jobs).await.unwrap()
}

async fn statuses(t: &TestDb, ids: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        let (status,): (String,) = domain::sqlx::query_as("SELECT status FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_one(t.db.reader())
            .await
            .unwrap();
        out.push(status);
    }
    out
}

const ANY: [&str; 2] = ["test.a", "test.b"];

#[tokio::test]
async fn ordered_jobs_wait_behind_their_key_and_move_up_one_at_a_time() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let mut ids = enqueue_ordered(&t, &["test.a", "test.a"]).await;
        // Enqueued later, on its own: still behind the pending ones.
        ids.extend(enqueue_ordered(&t, &["test.a"]).await);
        assert_eq!(statuses(&t, &ids).await, ["queued", "waiting", "waiting"]);

        let first = jobs::claim(&t.db, "w", &ANY, 10, 60_000).await.unwrap();
        assert_eq!(first.len(), 1, "only the key's first job is runnable");
        assert_eq!(first[0].id, ids[0]);
        jobs::finish(&t.db, &first[0], "w", 0, &Outcome::Done)
            .await
            .unwrap();
        assert_eq!(statuses(&t, &ids).await, ["done", "queued", "waiting"]);

        // A retry keeps its place: the job behind it still waits.
        let second = jobs::claim(&t.db, "w", &ANY, 10, 60_000).await.unwrap();
        assert_eq!(second[0].id, ids[1]);
        let retry = Outcome::Retry {
            error: "503".into(),
            retry_after_ms: None,
        };
        jobs::finish(&t.db, &second[0], "w", 0, &retry)
            .await
            .unwrap();
        assert_eq!(statuses(&t, &ids).await, ["done", "queued", "waiting"]);
        force_due(&t).await;
        let again = jobs::claim(&t.db, "w", &ANY, 10, 60_000).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, ids[1]);
        // A dead job lets the next one go.
        let fatal = Outcome::Fatal {
            error: "bad".into(),
        };
        jobs::finish(&t.db, &again[0], "w", 0, &fatal)
            .await
            .unwrap();
        assert_eq!(statuses(&t, &ids).await, ["done", "dead", "queued"]);
    }
}

#[tokio::test]
async fn a_run_takes_the_waiting_jobs_of_its_kinds_right_behind_its_first() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let ids = enqueue_ordered(&t, &["test.a", "test.a", "test.a", "test.b", "test.a"]).await;
        let runs = jobs::Runs {
            kinds: &["test.a"],
            max: 10,
        };
        let claimed = jobs::claim_runs(&t.db, "w", &ANY, &runs, 10, 60_000)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        let run: Vec<&str> = claimed[0].iter().map(|j| j.id.as_str()).collect();
        assert_eq!(run, &ids[..3], "stops at the first job of another kind");
        assert_eq!(
            statuses(&t, &ids).await,
            ["running", "running", "running", "waiting", "waiting"]
        );

        // The second fails and will be retried: the third is released unrun.
        let retry = Outcome::Retry {
            error: "503".into(),
            retry_after_ms: None,
        };
        let outcomes = [Outcome::Done, retry, Outcome::Released];
        for (job, outcome) in claimed[0].iter().zip(&outcomes) {
            jobs::finish(&t.db, job, "w", 0, outcome).await.unwrap();
        }
        assert_eq!(
            statuses(&t, &ids).await,
            ["done", "queued", "waiting", "waiting", "waiting"]
        );
        force_due(&t).await;
        let claimed = jobs::claim_runs(&t.db, "w", &ANY, &runs, 10, 60_000)
            .await
            .unwrap();
        let run: Vec<(&str, i64)> = claimed[0]
            .iter()
            .map(|j| (j.id.as_str(), j.attempt))
            .collect();
        assert_eq!(
            run,
            [(ids[1].as_str(), 2), (ids[2].as_str(), 1)],
            "the released job's attempt was given back"
        );
        // Only the job whose attempt ended has an attempt row.
        let (attempts,): (i64,) =
            domain::sqlx::query_as("SELECT COUNT(*) FROM job_attempts WHERE job_id = $1")
                .bind(&ids[2])
                .fetch_one(t.db.reader())
                .await
                .unwrap();
        assert_eq!(attempts, 0);
        for job in &claimed[0] {
            jobs::finish(&t.db, job, "w", 0, &Outcome::Done)
                .await
                .unwrap();
        }
        // The run ended: the next job (another kind) moves up, and runs alone.
        let claimed = jobs::claim_runs(&t.db, "w", &ANY, &runs, 10, 60_000)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].len(), 1);
        assert_eq!(claimed[0][0].id, ids[3]);
    }
}

#[tokio::test]
async fn a_waiting_job_left_without_a_job_ahead_is_moved_up() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let ids = enqueue_ordered(&t, &["test.a", "test.a", "test.a"]).await;
        // As when the first job ends while another replica queues behind it.
        domain::sqlx::query("UPDATE jobs SET status = 'done' WHERE id = $1")
            .bind(&ids[0])
            .execute(t.db.writer())
            .await
            .unwrap();
        assert!(jobs::claim(&t.db, "w", &ANY, 10, 60_000)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(jobs::promote_orphans(&t.db).await.unwrap(), 1);
        assert_eq!(statuses(&t, &ids).await, ["done", "queued", "waiting"]);
        assert_eq!(jobs::promote_orphans(&t.db).await.unwrap(), 0);
        let claimed = jobs::claim(&t.db, "w", &ANY, 10, 60_000).await.unwrap();
        assert_eq!(claimed[0].id, ids[1]);
    }
}

#[tokio::test]
async fn outcomes_recorded_together_move_each_job_as_one_by_one_would() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let ids = enqueue_ordered(&t, &["test.a", "test.a", "test.a", "test.a", "test.b"]).await;
        let runs = jobs::Runs {
            kinds: &["test.a"],
            max: 10,
        };
        let claimed = jobs::claim_runs(&t.db, "w", &ANY, &runs, 10, 60_000)
            .await
            .unwrap();
        let run = &claimed[0];
        assert_eq!(run.len(), 4);
        // The third job's lease went to another worker meanwhile.
        domain::sqlx::query("UPDATE jobs SET locked_by = 'other' WHERE id = $1")
            .bind(&ids[2])
            .execute(t.db.writer())
            .await
            .unwrap();
        let fatal = Outcome::Fatal {
            error: "bad".into(),
        };
        let outcomes = [Outcome::Done, Outcome::Done, Outcome::Done, fatal];
        let ended: Vec<jobs::Ended> = run
            .iter()
            .zip(&outcomes)
            .map(|(job, outcome)| jobs::Ended {
                job,
                started_at: 0,
                outcome,
            })
            .collect();
        let mut conn = t.db.writer().acquire().await.unwrap();
        let recorded = jobs::finish_many_in(&mut conn, "w", &ended).await.unwrap();
        drop(conn);

        assert_eq!(
            recorded,
            [
                Some(JobStatus::Done),
                Some(JobStatus::Done),
                None,
                Some(JobStatus::Dead)
            ]
        );
        assert_eq!(
            statuses(&t, &ids).await,
            ["done", "done", "running", "dead", "waiting"],
            "the lost job is left to its owner, and the key's next job waits for it"
        );
        let (attempts,): (i64,) = domain::sqlx::query_as(
            "SELECT COUNT(*) FROM job_attempts WHERE job_id IN ($1, $2, $3, $4)",
        )
        .bind(&ids[0])
        .bind(&ids[1])
        .bind(&ids[2])
        .bind(&ids[3])
        .fetch_one(t.db.reader())
        .await
        .unwrap();
        assert_eq!(attempts, 3, "an attempt row for each job moved");

        // Its owner finishes it: the key's next job moves up.
        let mut lost = run[2].clone();
        lost.attempt = 1;
        jobs::finish(&t.db, &lost, "other", 0, &Outcome::Done)
            .await
            .unwrap();
        assert_eq!(
            statuses(&t, &ids).await,
            ["done", "done", "done", "dead", "queued"]
        );
    }
}
