//! Faults: outside services that fail (time out, answer 500 or 429 with
//! `Retry-After`, drop the connection) and a database that goes away and comes back.
//! Nothing is lost, backoff is honoured, failures are visible in the deliveries
//! listing the console shows, and listeners keep answering fast, or answer 503 when
//! they cannot store what they receive.

mod support;

use std::time::{Duration, Instant};

use domain::actito::settings::{self, ActitoSettingsInput};
use domain::api_keys::Scope;
use domain::crypto::MasterKey;
use domain::passes::{self, Identifiers, NewPass};
use domain::testing::TestDb;
use serde_json::{json, Value};
use support::fakes::{eventually_within, Answer, FlakyPeer};
use support::{allow_loopback, problem, TestServer};

const LISTENER: &str = "/api/acme/webhooks/listeners/actito/custom-actions/updatePass";

struct Tenant {
    key: String,
    pass_id: String,
}

/// The `acme` tenant with Actito callbacks allowed to the peer, and one pass.
async fn tenant(s: &TestServer, peer: &FlakyPeer) -> Tenant {
    s.tenant("acme").await;
    let key = s
        .key(
            "acme",
            &[
                Scope::ActitoListenerWrite,
                Scope::AuditRead,
                Scope::PassesRead,
            ],
        )
        .await;
    let input = ActitoSettingsInput {
        api_base_url: Some(peer.url.clone()),
        entity: "MyEntity".into(),
        api_key: Some("actito-key".into()),
        profile_table_id: "1".into(),
        identifier_mapping: None,
        data_mapping: None,
        callback_hosts: Some(vec!["127.0.0.1".into()]),
    };
    let core = s.core();
    settings::put(
        core.vault(),
        core.outbound.private_hosts(),
        "acme",
        input,
        "test",
    )
    .await
    .unwrap();
    let mut identifiers = Identifiers::new();
    identifiers.insert("email".into(), "ann@example.com".into());
    let new = NewPass {
        pass_type: "loyalty".into(),
        identifiers,
        ..Default::default()
    };
    let pass_id = passes::create(&s.db.db, "acme", new).await.unwrap().id;
    Tenant { key, pass_id }
}

/// A ONE_BY_ONE custom action setting `points` on the pass, notifying the peer.
fn envelope(id: &str, t: &Tenant, peer: &FlakyPeer, points: i64) -> Value {
    json!({"id": id, "data": {
        "actionParameters.passId": t.pass_id,
        "actionParameters.points": points,
        "_links": {"notifyOK": {"href": format!("{}/ca/OK_{id}", peer.url)},
                   "notifyKO": {"href": format!("{}/ca/KO_{id}", peer.url)}}}})
}

async fn post(s: &TestServer, key: &str, body: &Value) -> reqwest::Response {
    s.http
        .post(s.url(LISTENER))
        .header("X-API-KEY", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The deliveries listing (what the console's push history shows).
async fn deliveries(s: &TestServer, key: &str, query: &str) -> Vec<Value> {
    let page: Value = s
        .http
        .get(s.url(&format!("/api/acme/deliveries?{query}")))
        .header("X-API-KEY", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

async fn delivery_status(s: &TestServer, key: &str) -> Option<Value> {
    deliveries(s, key, "channel=actito-callback")
        .await
        .into_iter()
        .next()
}

fn codes(delivery: &Value) -> Vec<Option<i64>> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["statusCode"].as_i64())
        .collect()
}

#[tokio::test]
async fn callbacks_wait_as_long_as_retry_after_asks() {
    for s in TestServer::all_with(allow_loopback).await {
        let peer = FlakyPeer::start().await;
        let t = tenant(&s, &peer).await;
        peer.script(&[
            Answer::Status(429, Some("3")),
            Answer::Status(503, Some("1")),
        ]);
        assert_eq!(
            post(&s, &t.key, &envelope("ra-1", &t, &peer, 5))
                .await
                .status(),
            200
        );
        eventually_within(
            "the callback is delivered",
            Duration::from_secs(15),
            || async {
                delivery_status(&s, &t.key)
                    .await
                    .is_some_and(|d| d["status"] == "delivered")
            },
        )
        .await;
        let requests = peer.requests();
        assert_eq!(requests.len(), 3, "{requests:?}");
        let waited = |i: usize| requests[i + 1].1.duration_since(requests[i].1);
        assert!(waited(0) >= Duration::from_secs(3), "{:?}", waited(0));
        assert!(waited(1) >= Duration::from_secs(1), "{:?}", waited(1));
        // Retry-After replaces the backoff, it does not add to it.
        assert!(waited(0) < Duration::from_secs(5), "{:?}", waited(0));
        let delivery = delivery_status(&s, &t.key).await.unwrap();
        assert_eq!(codes(&delivery), [Some(429), Some(503), Some(200)]);
        assert_eq!(delivery["attempts"][0]["error"], "HTTP 429");
        s.stop().await;
    }
}

#[tokio::test]
async fn callbacks_that_keep_failing_are_dead_lettered_with_their_error() {
    for s in TestServer::all_with(allow_loopback).await {
        let peer = FlakyPeer::start().await;
        let t = tenant(&s, &peer).await;
        // `Retry-After: 0` lets the ten attempts run back to back.
        peer.otherwise(Answer::Status(500, Some("0")));
        assert_eq!(
            post(&s, &t.key, &envelope("dead-1", &t, &peer, 5))
                .await
                .status(),
            200
        );
        eventually_within(
            "the callback fails for good",
            Duration::from_secs(20),
            || async {
                delivery_status(&s, &t.key)
                    .await
                    .is_some_and(|d| d["status"] == "failed")
            },
        )
        .await;
        // Ten attempts, then no more (one more request only if an attempt was cut
        // short and ran again: a lapsed lease on a very busy machine).
        let sent = peer.requests().len();
        assert!((10..=11).contains(&sent), "{sent} requests");
        let failed = deliveries(&s, &t.key, "status=failed").await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0]["lastError"], "HTTP 500");
        assert_eq!(codes(&failed[0]), vec![Some(500); 10]);
        let jobs = domain::jobs::counts(&s.db.db, "acme").await.unwrap();
        assert!(jobs.contains(&("dead".into(), 1)), "{jobs:?}");
        // The pass update itself was applied once, whatever happened to the callback.
        let pass = passes::get(&s.db.db, "acme", &t.pass_id).await.unwrap();
        assert_eq!(pass.version, 2);
        s.stop().await;
    }
}

#[tokio::test]
async fn dropped_connections_are_retried_with_backoff() {
    for s in TestServer::all_with(allow_loopback).await {
        let peer = FlakyPeer::start().await;
        let t = tenant(&s, &peer).await;
        peer.script(&[Answer::Close]);
        assert_eq!(
            post(&s, &t.key, &envelope("close-1", &t, &peer, 5))
                .await
                .status(),
            200
        );
        eventually_within(
            "the callback is delivered",
            Duration::from_secs(15),
            || async {
                delivery_status(&s, &t.key)
                    .await
                    .is_some_and(|d| d["status"] == "delivered")
            },
        )
        .await;
        let requests = peer.requests();
        assert_eq!(requests.len(), 2);
        // The first backoff is 2 s ± 20 %.
        let waited = requests[1].1.duration_since(requests[0].1);
        assert!(waited >= Duration::from_millis(1_600), "{waited:?}");
        let delivery = delivery_status(&s, &t.key).await.unwrap();
        assert_eq!(codes(&delivery), [None, Some(200)]);
        assert!(
            delivery["attempts"][0]["error"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{delivery}"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn a_hanging_peer_never_slows_the_listeners() {
    // Each backend waits out an HTTP timeout: side by side, to keep the suite short.
    let runs: Vec<_> = TestServer::all_with(allow_loopback)
        .await
        .into_iter()
        .map(|s| tokio::spawn(hanging_peer(s)))
        .collect();
    for run in runs {
        run.await.unwrap();
    }
}

async fn hanging_peer(s: TestServer) {
    let peer = FlakyPeer::start().await;
    let t = tenant(&s, &peer).await;
    peer.otherwise(Answer::Hang(Duration::from_secs(30)));
    assert_eq!(
        post(&s, &t.key, &envelope("hang-0", &t, &peer, 0))
            .await
            .status(),
        200
    );
    eventually_within(
        "the peer holds a callback",
        Duration::from_secs(10),
        || async { !peer.requests().is_empty() },
    )
    .await;
    let mut slowest = Duration::ZERO;
    for n in 1..=20 {
        let started = Instant::now();
        let answer = post(&s, &t.key, &envelope(&format!("hang-{n}"), &t, &peer, n)).await;
        assert_eq!(answer.status(), 200);
        slowest = slowest.max(started.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "{:?}: a listener waited {slowest:?} while callbacks hang",
        s.backend()
    );
    // Every update is applied, in order, while the callbacks still hang (the HTTP
    // client gives up on them after 10 s).
    eventually_within(
        "the updates are applied",
        Duration::from_secs(5),
        || async {
            passes::get(&s.db.db, "acme", &t.pass_id)
                .await
                .unwrap()
                .version
                == 22
        },
    )
    .await;
    // The hung attempt ends as a timeout, recorded and retried.
    eventually_within(
        "the hung callback times out",
        Duration::from_secs(15),
        || async {
            deliveries(&s, &t.key, "channel=actito-callback")
                .await
                .iter()
                .any(|d| d["attempts"][0]["error"] == "timed out" && d["status"] == "retrying")
        },
    )
    .await;
    s.stop().await;
}

/// A PostgreSQL of our own, restarted mid-run: `/readyz` and the listeners answer 503
/// while it is away, and everything works again once it is back.
#[tokio::test]
async fn the_server_rides_out_a_database_restart() {
    if domain::testing::postgres_url().is_none() {
        eprintln!("skipped: TEST_DATABASE_URL is not set (no PostgreSQL in this run)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pg = Pg(tmp.path().join("pg"));
    let url = pg.run("start");
    restart_scenario(&url, &pg).await;
}

/// A PostgreSQL of our own (`scripts/pg.sh`), deleted when dropped, even on a panic.
struct Pg(std::path::PathBuf);

impl Pg {
    fn run(&self, cmd: &str) -> String {
        let out =
            std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/pg.sh"))
                .args([cmd, self.0.to_str().unwrap()])
                .output()
                .unwrap();
        assert!(out.status.success(), "pg.sh {cmd}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.run("stop");
    }
}

async fn restart_scenario(url: &str, pg: &Pg) {
    let db = domain::db::Db::connect(url).await.unwrap();
    db.migrate().await.unwrap();
    let s = TestServer::start_with(
        TestDb::attach(url).await,
        MasterKey::generate(),
        allow_loopback,
    )
    .await;
    let peer = FlakyPeer::start().await;
    let t = tenant(&s, &peer).await;
    let ready = || async { s.http.get(s.url("/readyz")).send().await.unwrap().status() };
    assert_eq!(ready().await, 200);
    assert_eq!(
        post(&s, &t.key, &envelope("before", &t, &peer, 1))
            .await
            .status(),
        200
    );

    pg.run("pause");
    let started = Instant::now();
    assert_eq!(ready().await, 503);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let refused = post(&s, &t.key, &envelope("during", &t, &peer, 2)).await;
    assert!(refused.headers().contains_key("retry-after"));
    let body = problem(refused, 503).await;
    assert_eq!(body["code"], "SERVICE_UNAVAILABLE");
    let execute = s
        .http
        .post(s.url("/api/acme/webhooks/listeners/sfmc/actions/pushupdate/execute"))
        .body("e30.e30.sig")
        .send()
        .await
        .unwrap();
    problem(execute, 503).await;

    pg.run("resume");
    eventually_within("ready again", Duration::from_secs(15), || async {
        ready().await == 200
    })
    .await;
    // The sender retries what was refused; it is stored and applied once.
    let mut answer = 0;
    for _ in 0..50 {
        answer = post(&s, &t.key, &envelope("during", &t, &peer, 2))
            .await
            .status()
            .as_u16();
        if answer == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer, 200);
    // The workers came back: both updates applied, both callbacks delivered.
    eventually_within("the workers recover", Duration::from_secs(20), || async {
        let delivered = deliveries(&s, &t.key, "status=delivered").await.len();
        let version = passes::get(&s.db.db, "acme", &t.pass_id)
            .await
            .map(|p| p.version)
            .unwrap_or(0);
        delivered == 2 && version == 3
    })
    .await;
    let events: Value = s
        .http
        .get(s.url("/api/acme/events?source=actito"))
        .header("X-API-KEY", &t.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["processed", "processed"]);
    s.stop().await;
    db.close().await;
}
