//! The console's live feed: `GET /console/live` (server-sent events).

mod support;

use std::time::Duration;

use base64::Engine;
use domain::api_keys::Scope;
use domain::testing::TestDb;
use domain::users::{self, Role};
use serde_json::{json, Value};
use support::{problem, TestServer};

const PASSWORD: &str = "live-feed-password";

fn listener(tenant: &str) -> String {
    format!("/api/{tenant}/webhooks/listeners/actito/custom-actions/updatePass")
}

/// Creates an admin of `tenant` and signs in through the console's login function;
/// returns the session cookie.
async fn sign_in(http: &reqwest::Client, base: &str, db: &domain::db::Db, tenant: &str) -> String {
    let email = format!("admin@{tenant}.test");
    users::upsert(db, tenant, &email, Role::Admin, PASSWORD)
        .await
        .unwrap();
    support::sign_in_at(http, base, &email, PASSWORD)
        .await
        .expect("a session cookie")
}

#[derive(Clone, Debug)]
struct Sse {
    id: Option<String>,
    event: String,
    data: Value,
}

/// A server-sent event stream read chunk by chunk.
struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    async fn open(
        http: &reqwest::Client,
        base: &str,
        cookie: &str,
        last_event_id: Option<&str>,
    ) -> Stream {
        let mut request = http
            .get(format!("{base}/console/live"))
            .header("cookie", cookie);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        let headers = response.headers();
        assert_eq!(headers["content-type"], "text/event-stream");
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-accel-buffering"], "no");
        Stream {
            response,
            buffer: String::new(),
        }
    }

    /// The next event within `within`, if any.
    async fn next(&mut self, within: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some(Sse {
                    id,
                    event,
                    data: serde_json::from_str(&data).unwrap(),
                });
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .unwrap()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// Events until one matches `until` (included); panics after `within`.
    async fn until(&mut self, within: Duration, until: impl Fn(&Sse) -> bool) -> Vec<Sse> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(event) = self.next(left).await else {
                panic!("no matching event within {within:?}; saw {seen:?}");
            };
            let done = until(&event);
            seen.push(event);
            if done {
                return seen;
            }
        }
    }
}

fn inbound(e: &Sse, status: &str) -> bool {
    e.event == "inbound" && e.data["status"] == status
}

async fn post_update(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    key: Option<&str>,
    id: &str,
) -> u16 {
    let mut request = http
        .post(format!("{base}{}", listener(tenant)))
        .json(&json!({"id": id, "data": {"actionParameters.points": 1,
            "profileAttributes.emailAddress": "nobody@example.com"}}));
    if let Some(key) = key {
        request = request.header("X-API-KEY", key);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_live_feed_streams_the_sessions_tenant_and_resumes() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        s.tenant("other").await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let other_key = s.key("other", &[Scope::ActitoListenerWrite]).await;

        // Not signed in: a problem document, no stream.
        let refused = s.http.get(s.url("/console/live")).send().await.unwrap();
        let body = problem(refused, 401).await;
        assert_eq!(body["code"], "UNAUTHENTICATED");

        let cookie = sign_in(&s.http, &s.url, &s.db.db, "acme").await;
        let mut stream = Stream::open(&s.http, &s.url, &cookie, None).await;

        // Another tenant's event first: it must never reach acme's stream.
        assert_eq!(
            post_update(&s.http, &s.url, "other", Some(&other_key), "o1").await,
            200
        );
        assert_eq!(
            post_update(&s.http, &s.url, "acme", Some(&key), "a1").await,
            200
        );
        assert_eq!(post_update(&s.http, &s.url, "acme", None, "a2").await, 401);

        let within = Duration::from_secs(2);
        let seen = stream
            .until(within, |e| inbound(e, "accepted") || inbound(e, "rejected"))
            .await;
        let mut seen = seen;
        let first = seen.last().unwrap().clone();
        let second_kind = if inbound(&first, "accepted") {
            "rejected"
        } else {
            "accepted"
        };
        seen.extend(stream.until(within, |e| inbound(e, second_kind)).await);
        for e in &seen {
            assert_eq!(e.data["tenantId"], "acme", "{:?}: {e:?}", s.backend());
            assert_eq!(e.id.as_deref(), e.data["id"].as_str());
            assert_eq!(e.event, e.data["type"]);
        }
        let accepted = seen.iter().find(|e| inbound(e, "accepted")).unwrap();
        assert_eq!(accepted.data["source"], "actito");
        assert_eq!(accepted.data["kind"], "custom-action.updatePass");
        assert!(accepted.data["eventId"]
            .as_str()
            .unwrap()
            .starts_with("evt_"));
        let rejected = seen.iter().find(|e| inbound(e, "rejected")).unwrap();
        assert_eq!(rejected.data["reason"], "UNAUTHENTICATED");

        // The accepted event settles (no pass matched, so it has no pass events).
        // It may already be among the events read so far.
        let event_id = accepted.data["eventId"].clone();
        let is_settled = |e: &Sse| e.data["eventId"] == event_id && inbound(e, "processed");
        if !seen.iter().any(is_settled) {
            seen.extend(stream.until(Duration::from_secs(5), is_settled).await);
        }
        assert!(
            seen.iter().all(|e| e.data["tenantId"] == "acme"),
            "{seen:?}"
        );

        // Reconnecting after the first event replays everything after it, in order.
        let first_id = seen[0].id.clone().unwrap();
        let mut resumed = Stream::open(&s.http, &s.url, &cookie, Some(&first_id)).await;
        let mut replayed = Vec::new();
        while replayed.len() < seen.len() - 1 {
            let e = resumed
                .next(Duration::from_secs(2))
                .await
                .expect("the missed events are replayed");
            replayed.push(e.id.unwrap());
        }
        let expected: Vec<String> = seen[1..].iter().map(|e| e.id.clone().unwrap()).collect();
        assert_eq!(replayed, expected, "{:?}", s.backend());
        s.stop().await;
    }
}

#[tokio::test]
async fn marketers_follow_their_tenant_and_voided_sessions_are_refused() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let cookie = sign_in(&s.http, &s.url, &s.db.db, "acme").await;
        // Another admin demotes this one to marketer (a role change keeps sessions).
        users::upsert(&s.db.db, "acme", "other@acme.test", Role::Admin, PASSWORD)
            .await
            .unwrap();
        let user = users::find_by_email(&s.db.db, "admin@acme.test")
            .await
            .unwrap()
            .unwrap();
        users::set_role(&s.db.db, "acme", &user.id, Role::Marketer)
            .await
            .unwrap();
        let _stream = Stream::open(&s.http, &s.url, &cookie, None).await;
        // "Sign out everywhere" voids the session (its time is in ms: step past it).
        tokio::time::sleep(Duration::from_millis(5)).await;
        users::sign_out_everywhere(&s.db.db, &user.id)
            .await
            .unwrap();
        let refused = s
            .http
            .get(s.url("/console/live"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        problem(refused, 401).await;
        s.stop().await;
    }
}

/// Two `passhook serve` processes on one PostgreSQL database: an event ingested by
/// one reaches a console following the other.
#[tokio::test]
async fn replicas_share_the_live_feed_through_postgres() {
    let Some(db) = TestDb::postgres().await else {
        eprintln!("TEST_DATABASE_URL is not set: the PostgreSQL live-feed replica test is skipped");
        return;
    };
    domain::tenants::create(&db.db, "acme", "Acme")
        .await
        .unwrap();
    let key = domain::api_keys::create(&db.db, "acme", "test", &[Scope::ActitoListenerWrite], None)
        .await
        .unwrap()
        .1;
    let master = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let mut children = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..2 {
        let port = {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            socket.local_addr().unwrap().port()
        };
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_passhook"))
            .arg("serve")
            .env("DATABASE_URL", &db.url)
            .env("PASSHOOK_ADDR", format!("127.0.0.1:{port}"))
            .env("PASSHOOK_MASTER_KEY", &master)
            .env("PASSHOOK_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .expect("passhook starts");
        children.push(child);
        bases.push(format!("http://127.0.0.1:{port}"));
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for base in &bases {
        support::fakes::eventually("the replica is ready", || async {
            http.get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
    }
    let cookie = sign_in(&http, &bases[0], &db.db, "acme").await;
    let mut stream = Stream::open(&http, &bases[0], &cookie, None).await;
    assert_eq!(
        post_update(&http, &bases[1], "acme", Some(&key), "r1").await,
        200
    );
    let seen = stream
        .until(Duration::from_secs(2), |e| inbound(e, "accepted"))
        .await;
    assert_eq!(seen.last().unwrap().data["tenantId"], "acme");
    for mut child in children {
        child.kill().await.unwrap();
    }
}
