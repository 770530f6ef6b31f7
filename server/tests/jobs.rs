//! The job system across processes and in order.

mod support;

use domain::api_keys::Scope;
use domain::passes::{self, Identifiers, NewPass};
use domain::testing::TestDb;
use serde_json::{json, Value};
use support::fakes::eventually;
use support::TestServer;

const LISTENER: &str = "/api/acme/webhooks/listeners/actito/custom-actions/updatePass";

async fn pass(db: &domain::db::Db, email: &str) -> String {
    let mut identifiers = Identifiers::new();
    identifiers.insert("email".into(), email.into());
    passes::create(
        db,
        "acme",
        NewPass {
            pass_type: "loyalty".into(),
            identifiers,
            ..Default::default()
        },
    )
    .await
    .unwrap()
    .id
}

fn envelope(id: &str, email: &str, points: i64) -> Value {
    json!({"id": id, "data": {"actionParameters.points": points, "profileAttributes.emailAddress": email}})
}

#[tokio::test]
async fn updates_to_one_pass_are_applied_in_the_order_received() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let id = pass(&s.db.db, "ann@example.com").await;
        for points in 1..=30 {
            let response = s
                .http
                .post(s.url(LISTENER))
                .header("X-API-KEY", &key)
                .json(&envelope(&format!("e{points}"), "ann@example.com", points))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        eventually("all thirty versions", || async {
            passes::get(&s.db.db, "acme", &id).await.unwrap().version == 31
        })
        .await;
        let history = passes::versions(&s.db.db, "acme", &id).await.unwrap();
        let applied: Vec<Value> = history
            .iter()
            .rev()
            .map(|v| v.changes[0].after.clone().unwrap())
            .collect();
        assert_eq!(
            applied,
            (1..=30).map(|p| json!(p)).collect::<Vec<_>>(),
            "{:?}",
            s.backend()
        );
        s.stop().await;
    }
}

/// Two servers on one PostgreSQL database share the queue without running a job twice.
#[tokio::test]
async fn replicas_on_postgres_never_run_a_job_twice() {
    let Some(first_db) = TestDb::postgres().await else {
        eprintln!("TEST_DATABASE_URL is not set: the PostgreSQL replica test is skipped");
        return;
    };
    let url = first_db.url.clone();
    let second_db = TestDb::attach(&url).await;
    let a = TestServer::start(first_db).await;
    let b = TestServer::start(second_db).await;
    a.tenant("acme").await;
    let key = a.key("acme", &[Scope::ActitoListenerWrite]).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(pass(&a.db.db, &format!("p{i}@example.com")).await);
    }
    for round in 0..3 {
        for i in 0..40 {
            let server = if i % 2 == 0 { &a } else { &b };
            let body = envelope(
                &format!("r{round}-{i}"),
                &format!("p{i}@example.com"),
                round,
            );
            let response = server
                .http
                .post(server.url(LISTENER))
                .header("X-API-KEY", &key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    }
    eventually("every update applied", || async {
        let (n,): (i64,) = domain::sqlx::query_as("SELECT COUNT(*) FROM passes WHERE version = 4")
            .fetch_one(a.db.db.reader())
            .await
            .unwrap();
        // A job's attempt is recorded with its outcome, in a batch after the
        // update itself commits: wait for the outcomes too.
        let (pending,): (i64,) = domain::sqlx::query_as(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'actito.custom_action' AND status <> 'done'",
        )
        .fetch_one(a.db.db.reader())
        .await
        .unwrap();
        n == 40 && pending == 0
    })
    .await;
    let (jobs,): (i64,) = domain::sqlx::query_as(
        "SELECT COUNT(DISTINCT a.job_id) FROM job_attempts a \
         JOIN jobs j ON j.id = a.job_id WHERE j.kind = 'actito.custom_action'",
    )
    .fetch_one(a.db.db.reader())
    .await
    .unwrap();
    assert_eq!(jobs, 120);
    // One tenant's updates run in order, in runs that one replica may well take
    // all of; the passes' wallet refreshes (one order per pass) spread.
    eventually("both replicas took work", || async {
        let (workers,): (i64,) =
            domain::sqlx::query_as("SELECT COUNT(DISTINCT worker) FROM job_attempts")
                .fetch_one(a.db.db.reader())
                .await
                .unwrap();
        workers == 2
    })
    .await;
    let (all, distinct): (i64, i64) =
        domain::sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT job_id) FROM job_attempts")
            .fetch_one(a.db.db.reader())
            .await
            .unwrap();
    assert_eq!(all, distinct, "no job ran twice");
    b.stop().await;
    a.stop().await;
}
