//! A backlog of one tenant's pass updates is worked off in runs (several jobs per
//! claim and per transaction), still in the order received, on both backends.

use std::collections::BTreeSet;
use std::time::Duration;

use domain::events::Inbound;
use domain::jobs;
use domain::jobs::NewJob;
use domain::passes::{self, Identifiers, NewPass};
use domain::processing::{self, Flows};
use domain::tasks::{CustomAction, Kind, SfmcExecute, Task};
use domain::tenants;
use domain::testing::TestDb;
use domain::worker::{self, Handler, WorkerConfig};
use domain::Core;
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
    let job = Task::CustomAction(CustomAction {}).job("acme");
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
    let job = Task::SfmcExecute(SfmcExecute {
        pass_ids: vec![pass_id.to_string()],
        additional_data: json!({"points": n}).as_object().unwrap().clone(),
        ..Default::default()
    })
    .job("acme");
    (inbound, job)
}

/// Ann's pass, the one every update of these tests is for.
async fn ann_pass(t: &TestDb) -> String {
    tenants::create(&t.db, "acme", "Acme").await.unwrap();
    let mut identifiers = Identifiers::new();
    identifiers.insert("email".into(), "ann@example.com".into());
    let new = NewPass {
        pass_type: "loyalty".into(),
        identifiers,
        ..Default::default()
    };
    passes::create(&t.db, "acme", new).await.unwrap().id
}

/// Runs a worker until the last of `events` is settled, then stops it.
async fn work_off(core: &Core, events: &[String]) {
    let shutdown = CancellationToken::new();
    let config = WorkerConfig {
        poll: Duration::from_millis(50),
        ..WorkerConfig::default()
    };
    let running = tokio::spawn(worker::run(
        core.clone(),
        config,
        std::sync::Arc::new(Flows),
        shutdown.clone(),
    ));
    let last = events.last().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while domain::events::get(&core.db, "acme", last)
        .await
        .unwrap()
        .status
        == "accepted"
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "backlog not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    running.await.unwrap();
}

/// The points each version of the pass set, oldest first.
async fn applied_points(t: &TestDb, pass_id: &str) -> Vec<Value> {
    let history = passes::versions(&t.db, "acme", pass_id).await.unwrap();
    history
        .iter()
        .rev()
        .map(|v| v.changes[0].after.clone().unwrap())
        .collect()
}

#[tokio::test]
async fn a_backlog_is_applied_in_runs_in_the_order_received() {
    for t in TestDb::all().await {
        let pass_id = ann_pass(&t).await;
        // The backlog, stored before any worker runs: custom actions with every
        // fifth update an SFMC push update, all in the tenant's order.
        let core = t.core();
        let mut events = Vec::new();
        for n in 1..=UPDATES {
            let (inbound, job) = match n % 5 {
                0 => sfmc_execute(n, &pass_id),
                _ => custom_action(n),
            };
            let ingested = core
                .ingestor
                .ingest(inbound, None, vec![job])
                .await
                .unwrap();
            events.push(ingested.event_id().to_string());
        }
        work_off(&core, &events).await;

        let applied = applied_points(&t, &pass_id).await;
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

#[tokio::test]
async fn a_job_that_fails_in_a_run_fails_alone() {
    for t in TestDb::all().await {
        let pass_id = ann_pass(&t).await;
        let core = t.core();
        let mut events = Vec::new();
        for n in 1..=6 {
            let (mut inbound, job) = custom_action(n);
            if n == 3 {
                // Stored as received, yet no envelope (as an old release might have).
                inbound.body = "not an envelope".into();
            }
            let ingested = core
                .ingestor
                .ingest(inbound, None, vec![job])
                .await
                .unwrap();
            events.push(ingested.event_id().to_string());
        }
        work_off(&core, &events).await;

        let applied = applied_points(&t, &pass_id).await;
        let expected: Vec<Value> = [1, 2, 4, 5, 6].iter().map(|n| json!(n)).collect();
        assert_eq!(applied, expected, "{:?}", t.backend());
        let mut statuses = Vec::new();
        for id in &events {
            statuses.push(domain::events::get(&t.db, "acme", id).await.unwrap().status);
        }
        assert_eq!(
            statuses,
            [
                "processed",
                "processed",
                "failed",
                "processed",
                "processed",
                "processed"
            ]
        );
    }
}

#[tokio::test]
async fn updates_run_again_after_their_outcome_was_lost_change_nothing() {
    for t in TestDb::all().await {
        let pass_id = ann_pass(&t).await;
        let core = t.core();
        for (inbound, job) in [
            sfmc_execute(2, &pass_id),
            custom_action(3),
            sfmc_execute(4, &pass_id),
        ] {
            core.ingestor
                .ingest(inbound, None, vec![job])
                .await
                .unwrap();
        }
        let runs = jobs::Runs {
            kinds: Flows.run_kinds(),
            max: 10,
        };
        let claimed = jobs::claim_runs(&t.db, "w", Flows.run_kinds(), &runs, 10, 60_000)
            .await
            .unwrap();
        assert_eq!(claimed[0].len(), 3);
        // Applied, then run again as after a crash before the outcomes were stored:
        // together, and one by one.
        for _ in 0..2 {
            processing::run_in_order(&core, &claimed[0]).await;
        }
        for job in &claimed[0] {
            processing::run(&core, job).await;
        }
        let expected: Vec<Value> = [2, 3, 4].iter().map(|n| json!(n)).collect();
        assert_eq!(
            applied_points(&t, &pass_id).await,
            expected,
            "{:?}",
            t.backend()
        );
    }
}

/// A replica that still runs a job whose lease lapsed while another runs it again:
/// both read the event's progress before either commits. Only one may record its
/// items, so each item is applied and called back once (the crash test with three
/// replicas found a notifyOK queued twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_run_twice_at_once_calls_back_once() {
    for t in TestDb::all().await {
        ann_pass(&t).await;
        let core = t.core();
        let (mut inbound, job) = custom_action(1);
        inbound.body = json!({"id": "e1", "data": {
            "actionParameters.points": 1, "profileAttributes.emailAddress": "ann@example.com",
            "_links": {"notifyOK": {"href": "https://callbacks.invalid/OK_1"},
                       "notifyKO": {"href": "https://callbacks.invalid/KO_1"}}}})
        .to_string();
        core.ingestor
            .ingest(inbound, None, vec![job])
            .await
            .unwrap();
        let job = jobs::claim(&t.db, "w1", &[Kind::CustomAction.as_str()], 1, 60_000)
            .await
            .unwrap()
            .remove(0);
        let (first, second) =
            tokio::join!(processing::run(&core, &job), processing::run(&core, &job));
        let _ = (first, second);
        let (callbacks,): (i64,) = domain::sqlx::query_as(
            "SELECT COUNT(*) FROM deliveries WHERE channel = 'actito-callback'",
        )
        .fetch_one(t.db.reader())
        .await
        .unwrap();
        assert_eq!(callbacks, 1, "{:?}", t.backend());
    }
}
