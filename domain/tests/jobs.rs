//! The job queue's retry rules on both backends: backoff, then dead-letter, then a
//! manual retry.

use domain::jobs::{self, NewJob, Outcome};
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
            &[NewJob::new("acme", "test.kind", json!({})).attempts(2)],
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
        jobs::enqueue(&mut conn, &[NewJob::new("acme", "test.kind", json!({}))])
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
