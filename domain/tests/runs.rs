//! A backlog of one tenant's pass updates is worked off in runs (several jobs per
//! claim and per transaction), still in the order received, on both backends.

use std::collections::BTreeSet;
use std::time::Duration;

use domain::events::Inbound;
use domain::jobs::NewJob;
use domain::passes::{self, Identifiers, NewPass};
use domain::processing::{tenant_order, ACTITO_CUSTOM_ACTION, SFMC_EXECUTE};
use domain::tenants;
use domain::testing::TestDb;
use domain::worker::{self, WorkerConfig};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const UPDATES: i64 = 40;

fn custom_action(n: i64) -> (Inbound, NewJob) {
    let body = json!({"id": format!("e{n}"), "data": {
        "actionParameters.points": n, "profileAttributes.emailAddress": "ann@example.com"}});
    let inbound = Inbound {
        tenant_id: "acme".into(),
        source: "actito",
        kind: "custom-action.updatePass".into(),
        headers: json!({}),
        body: body.to_string(),
        dedupe_key: Some(format!("custom-action:e{n}")),
        items: 1,
        ..Default::default()
    };
    let job = NewJob::new("acme", ACTITO_CUSTOM_ACTION, json!({})).ordered_by(tenant_order("acme"));
    (inbound, job)
}

fn sfmc_execute(n: i64, pass_id: &str) -> (Inbound, NewJob) {
    let inbound = Inbound {
        tenant_id: "acme".into(),
        source: "sfmc",
        kind: "pushupdate.execute".into(),
        headers: json!({}),
        body: "token".into(),
        dedupe_key: Some(format!("sfmc:{n}")),
        items: 1,
        ..Default::default()
    };
    let payload = json!({"passIds": [pass_id], "additionalData": {"points": n}});
    let job = NewJob::new("acme", SFMC_EXECUTE, payload).ordered_by(tenant_order("acme"));
    (inbound, job)
}

#[tokio::test]
async fn a_backlog_is_applied_in_runs_in_the_order_received() {
    for t in TestDb::all().await {
        tenants::create(&t.db, "acme", "Acme").await.unwrap();
        let mut identifiers = Identifiers::new();
        identifiers.insert("email".into(), "ann@example.com".into());
        let new = NewPass {
            pass_type: "loyalty".into(),
            identifiers,
            ..Default::default()
        };
        let pass_id = passes::create(&t.db, "acme", new).await.unwrap().id;
        // The backlog, stored before any worker runs: custom actions with every
        // fifth update an SFMC push update, all in the tenant's order.
        let core = t.core();
        for n in 1..=UPDATES {
            let (inbound, job) = match n % 5 {
                0 => sfmc_execute(n, &pass_id),
                _ => custom_action(n),
            };
            core.ingestor
                .ingest(inbound, None, vec![job])
                .await
                .unwrap();
        }

        let shutdown = CancellationToken::new();
        let config = WorkerConfig {
            poll: Duration::from_millis(50),
            ..WorkerConfig::default()
        };
        let running = tokio::spawn(worker::run(core.clone(), config, shutdown.clone()));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while passes::get(&t.db, "acme", &pass_id).await.unwrap().version < UPDATES + 1 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "backlog not applied"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
        running.await.unwrap();

        let history = passes::versions(&t.db, "acme", &pass_id).await.unwrap();
        let applied: Vec<Value> = history
            .iter()
            .rev()
            .map(|v| v.changes[0].after.clone().unwrap())
            .collect();
        let expected: Vec<Value> = (1..=UPDATES).map(|n| json!(n)).collect();
        assert_eq!(applied, expected, "{:?}", t.backend());
        // Jobs claimed together share their start: far fewer starts than jobs.
        let attempts: Vec<(i64, i64)> = domain::sqlx::query_as(
            "SELECT a.started_at, a.attempt FROM job_attempts a JOIN jobs j ON j.id = a.job_id \
             WHERE j.kind IN ('actito.custom_action', 'sfmc.execute')",
        )
        .fetch_all(t.db.reader())
        .await
        .unwrap();
        assert_eq!(attempts.len() as i64, UPDATES, "one attempt each");
        let starts: BTreeSet<i64> = attempts.iter().map(|(s, _)| *s).collect();
        assert!(
            starts.len() <= 4,
            "{} separate starts for {UPDATES} jobs: not run together ({:?})",
            starts.len(),
            t.backend()
        );
        let (pending,): (i64,) = domain::sqlx::query_as(
            "SELECT COUNT(*) FROM jobs WHERE status <> 'done' \
                AND kind IN ('actito.custom_action', 'sfmc.execute')",
        )
        .fetch_one(t.db.reader())
        .await
        .unwrap();
        assert_eq!(pending, 0);
    }
}
