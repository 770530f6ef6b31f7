//! What an anonymous caller can make the server hold: bodies limited per route,
//! requests in flight limited for the whole server, device logs limited per tenant,
//! metrics series that callers cannot multiply, SFMC tokens that cannot be replayed
//! once their dedupe record is gone.

mod support;

use domain::sfmc::settings::{self, SfmcSettingsInput, SigningKeyInput};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::fakes::eventually;
use support::{problem, TestServer};
use tokio::io::AsyncWriteExt;

const LOG: &str = "/wallet/apple/v1/log";
const SFMC: &str = "/webhooks/listeners/sfmc/actions/pushupdate";
const SALT: &[u8] = b"journey-signing-secret";

fn logs_of(bytes: usize) -> Value {
    json!({ "logs": ["x".repeat(bytes)] })
}

async fn post_log(s: &TestServer, tenant: &str, body: &Value) -> reqwest::Response {
    s.http
        .post(s.url(&format!("/api/{tenant}{LOG}")))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn rejected(s: &TestServer, tenant: &str) -> Vec<(String, String)> {
    domain::sqlx::query_as(
        "SELECT source, reason FROM inbound_events WHERE tenant_id = $1 AND status = 'rejected' \
         ORDER BY received_at",
    )
    .bind(tenant)
    .fetch_all(s.db.db.reader())
    .await
    .unwrap()
}

async fn configure_sfmc(s: &TestServer, tenant: &str) {
    let input = SfmcSettingsInput {
        signing_keys: vec![SigningKeyInput {
            id: "current".into(),
            secret: Some(String::from_utf8(SALT.to_vec()).unwrap()),
        }],
        customer_key: None,
        when_no_pass: None,
    };
    settings::put(s.core().vault(), tenant, input, "test")
        .await
        .unwrap();
}

fn sign(claims: &Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SALT),
    )
    .unwrap()
}

async fn execute(
    s: &TestServer,
    tenant: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    s.http
        .post(s.url(&format!("/api/{tenant}{SFMC}/execute")))
        .header("content-type", "application/jwt")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn each_route_takes_the_body_it_needs_and_no_more() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        configure_sfmc(&s, "acme").await;

        // Device logs: 64 KiB.
        assert_eq!(
            post_log(&s, "acme", &logs_of(60 * 1024)).await.status(),
            200
        );
        for tenant in ["acme", "nobody"] {
            let body = problem(post_log(&s, tenant, &logs_of(100 * 1024)).await, 413).await;
            assert_eq!(body["code"], "PAYLOAD_TOO_LARGE", "{tenant}");
        }

        // SFMC calls: 256 KiB, refused before any key check, and audited for the tenant.
        let huge_token = format!("{}.{}.sig", "eyJhbGciOiJIUzI1NiJ9", "A".repeat(300 * 1024));
        let body = problem(execute(&s, "acme", huge_token.clone()).await, 413).await;
        assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
        let body = problem(
            s.http
                .post(s.url(&format!("/api/acme{SFMC}/save")))
                .body(huge_token)
                .send()
                .await
                .unwrap(),
            413,
        )
        .await;
        assert_eq!(body["code"], "PAYLOAD_TOO_LARGE");
        let small = sign(&json!({"inArguments": [{"passId": "none"}], "jti": "small"}));
        problem(execute(&s, "acme", small).await, 404).await;
        assert_eq!(
            rejected(&s, "acme").await,
            [
                ("sfmc".to_string(), "PAYLOAD_TOO_LARGE".to_string()),
                ("sfmc".to_string(), "PAYLOAD_TOO_LARGE".to_string()),
                ("sfmc".to_string(), "NO_MATCHING_PASS".to_string()),
            ]
        );

        // The management API keeps 5 MiB, the Actito listeners take more (32 MiB).
        let big = vec![b' '; 6 * 1024 * 1024];
        let api = s
            .http
            .post(s.url("/api/acme/passes"))
            .body(big.clone())
            .send()
            .await
            .unwrap();
        problem(api, 413).await;
        let key = s
            .key("acme", &[domain::api_keys::Scope::ActitoListenerWrite])
            .await;
        let actito = s
            .http
            .post(s.url("/api/acme/webhooks/listeners/actito/custom-actions/updatePass"))
            .header("X-API-KEY", &key)
            .body(big)
            .send()
            .await
            .unwrap();
        assert_eq!(problem(actito, 400).await["code"], "MALFORMED_BODY");

        assert_eq!(
            s.http.get(s.url("/healthz")).send().await.unwrap().status(),
            200,
            "the server is still up"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn device_logs_of_an_unknown_tenant_are_not_found() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let body = json!({"logs": ["a line"]});
        assert_eq!(post_log(&s, "acme", &body).await.status(), 200);
        let body = problem(post_log(&s, "nobody", &body).await, 404).await;
        assert_eq!(body["code"], "NOT_FOUND");
        assert!(rejected(&s, "nobody").await.is_empty());
        s.stop().await;
    }
}

#[tokio::test]
async fn device_logs_are_limited_per_tenant() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        s.tenant("other").await;
        let body = json!({"logs": ["a line"]});
        for n in 0..server::passkit::LOG_REQUESTS_PER_MINUTE {
            let status = post_log(&s, "acme", &body).await.status();
            assert_eq!(status, 200, "request {n}");
        }
        let refused = post_log(&s, "acme", &body).await;
        let retry_after: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_eq!(problem(refused, 429).await["code"], "RATE_LIMITED");
        assert_eq!(
            post_log(&s, "other", &body).await.status(),
            200,
            "another tenant's budget is its own"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn invented_methods_share_one_metrics_label() {
    for s in TestServer::all().await {
        let invented = ["FROBNICATE", "XYZZY", "PLUGH"];
        for method in invented {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            for path in ["/healthz", "/api/acme/passes", "/nowhere"] {
                s.http
                    .request(method.clone(), s.url(path))
                    .send()
                    .await
                    .unwrap();
            }
        }
        let metrics = s.get_text("/metrics").await;
        for method in invented {
            assert!(!metrics.contains(method), "{method} in\n{metrics}");
        }
        assert!(metrics.contains(r#"method="other""#), "{metrics}");
        s.stop().await;
    }
}

/// Opens a request whose body never finishes: the server holds it in flight.
async fn hanging_request(s: &TestServer) -> tokio::net::TcpStream {
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/acme{SFMC}/execute HTTP/1.1\r\nhost: localhost\r\ncontent-length: 1000\r\n\r\nab"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[tokio::test]
async fn requests_beyond_the_limit_in_flight_are_refused_at_once() {
    for db in domain::testing::TestDb::all().await {
        let s = TestServer::start_with(db, domain::crypto::MasterKey::generate(), |c| {
            c.max_in_flight = 2
        })
        .await;
        s.tenant("acme").await;
        let healthz = || async { s.http.get(s.url("/healthz")).send().await.unwrap() };
        assert_eq!(healthz().await.status(), 200);
        let held = [hanging_request(&s).await, hanging_request(&s).await];
        eventually("both slots are taken", || async {
            healthz().await.status() == 503
        })
        .await;
        let refused = healthz().await;
        assert_eq!(refused.headers()["retry-after"], "1");
        let refused = s.http.get(s.url("/api/acme/passes")).send().await.unwrap();
        assert_eq!(problem(refused, 503).await["code"], "OVERLOADED");
        drop(held);
        eventually("the slots are free again", || async {
            healthz().await.status() == 200
        })
        .await;
        s.stop().await;
    }
}

#[tokio::test]
async fn tokens_issued_before_the_dedupe_window_are_refused() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        configure_sfmc(&s, "acme").await;
        let now = chrono::Utc::now().timestamp();
        let claims = |iat: i64, jti: &str| json!({"inArguments": [{"passId": "none"}], "iat": iat, "jti": jti});
        let old = sign(&claims(now - 25 * 3600, "old"));
        let body = problem(execute(&s, "acme", old).await, 401).await;
        assert_eq!(body["code"], "TOKEN_EXPIRED");
        // Within the window, the token is verified (and finds no pass here).
        let recent = sign(&claims(now - 23 * 3600, "recent"));
        let body = problem(execute(&s, "acme", recent).await, 404).await;
        assert_eq!(body["code"], "NO_MATCHING_PASS");
        s.stop().await;
    }
}

/// Serde's derived structs also read an array of their fields in order: `[]` was a
/// device log with no lines, answered 200. Every documented body is an object, so
/// anything else is a 400 problem (Schemathesis found this one).
#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_refused() {
    let s = TestServer::start(domain::testing::TestDb::sqlite().await).await;
    s.tenant("acme").await;
    for body in [json!([]), json!([["a line"]]), json!("logs"), json!(null)] {
        let answer = post_log(&s, "acme", &body).await;
        let doc = problem(answer, 400).await;
        assert!(
            doc["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("a JSON object"),
            "{body}: {doc}"
        );
    }
    assert_eq!(
        post_log(&s, "acme", &json!({"logs": ["a line"]}))
            .await
            .status(),
        200
    );
    s.stop().await;
}
