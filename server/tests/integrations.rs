//! Integration settings and the rejection budget.

mod support;

use domain::api_keys::Scope;
use domain::crypto::MasterKey;
use domain::events::REJECTION_BUDGET;
use domain::history::{self, Area};
use domain::testing::TestDb;
use serde_json::{json, Value};
use support::fakes::{FakeActito, ACTITO_API_KEY, ACTITO_BODY_MARKER};
use support::{allow_loopback, problem, TestServer};

#[tokio::test]
async fn actito_settings_are_stored_sealed_and_shown_masked() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let key = s.key("acme", &[Scope::IntegrationsWrite]).await;
        let url = s.url("/api/acme/integrations/actito");
        problem(
            s.http
                .get(&url)
                .header("X-API-KEY", &key)
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
        let missing_key = s
            .http
            .put(&url)
            .header("X-API-KEY", &key)
            .json(&json!({"entity": "MyEntity", "profileTableId": "1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            problem(missing_key, 400).await["errors"][0]["field"],
            "apiKey"
        );

        let put = s.http.put(&url).header("X-API-KEY", &key)
            .json(&json!({"entity": "MyEntity", "apiKey": "actito-secret-9876", "profileTableId": "12", "dataMapping": {"tier": "tier"}}))
            .send().await.unwrap();
        assert_eq!(put.status(), 200);
        let view: Value = s
            .http
            .get(&url)
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["apiBaseUrl"], "https://api.actito.com");
        assert_eq!(view["apiKey"], "••••9876");
        assert_eq!(
            view["identifierMapping"],
            json!({"emailAddress": "email", "businessId": "customId"})
        );
        assert_eq!(
            view["callbackHosts"],
            json!(["*.actito.com", "*.actito.be"])
        );
        assert_eq!(view["dataMapping"], json!({"tier": "tier"}));

        // Leaving the key out keeps it; it is never stored in clear.
        let put = s
            .http
            .put(&url)
            .header("X-API-KEY", &key)
            .json(&json!({"entity": "Other", "profileTableId": "12"}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
        let settings = domain::actito::settings::get(s.core().vault(), "acme")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (settings.entity.as_str(), settings.api_key.as_str()),
            ("Other", "actito-secret-9876")
        );
        let (stored,): (String,) = domain::sqlx::query_as("SELECT api_key FROM actito_settings")
            .fetch_one(s.db.db.reader())
            .await
            .unwrap();
        assert!(!stored.contains("actito-secret"));

        let bad = s.http.put(&url).header("X-API-KEY", &key)
            .json(&json!({"entity": "E", "profileTableId": "1", "apiBaseUrl": "ftp://x", "callbackHosts": ["https://bad/"]}))
            .send().await.unwrap();
        let body = problem(bad, 400).await;
        let fields: Vec<&str> = body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        // A new host also needs the key again (see the_stored_actito_key_…).
        assert_eq!(fields, ["apiBaseUrl", "callbackHosts", "apiKey"]);
        let reader = s.key("acme", &[Scope::PassesRead]).await;
        problem(
            s.http
                .get(&url)
                .header("X-API-KEY", &reader)
                .send()
                .await
                .unwrap(),
            403,
        )
        .await;
        s.stop().await;
    }
}

#[tokio::test]
async fn sfmc_keys_are_sealed_and_masked() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let key = s.key("acme", &[Scope::IntegrationsWrite]).await;
        let url = s.url("/api/acme/integrations/sfmc");
        let put = s.http.put(&url).header("X-API-KEY", &key)
            .json(&json!({"signingKeys": [{"id": "k1", "secret": "0x6b65792d6f662d31362d627974657321"}, {"id": "k2", "secret": "raw-signing-salt"}], "customerKey": "ck"}))
            .send().await.unwrap();
        assert_eq!(put.status(), 200);
        let view: Value = s
            .http
            .get(&url)
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(view["customerKey"], "ck");
        let ids: Vec<&str> = view["signingKeys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["k1", "k2"]);
        assert!(
            !view.to_string().contains("raw-signing-salt") && !view.to_string().contains("6b6579")
        );
        let keys = domain::sfmc::settings::signing_keys(s.core().vault(), "acme")
            .await
            .unwrap();
        assert_eq!(keys[0].secret, b"key-of-16-bytes!");
        assert_eq!(keys[1].secret, b"raw-signing-salt");

        let bad = s
            .http
            .put(&url)
            .header("X-API-KEY", &key)
            .json(&json!({"signingKeys": [{"id": "k3", "secret": "0xnothex"}, {"id": "k4"}]}))
            .send()
            .await
            .unwrap();
        let body = problem(bad, 400).await;
        assert_eq!(body["errors"].as_array().unwrap().len(), 2);
        // Retiring a key: leave it out.
        let put = s
            .http
            .put(&url)
            .header("X-API-KEY", &key)
            .json(&json!({"signingKeys": [{"id": "k2"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
        let keys = domain::sfmc::settings::signing_keys(s.core().vault(), "acme")
            .await
            .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].secret, b"raw-signing-salt");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_flood_of_rejections_is_stored_only_up_to_the_budget() {
    let s = TestServer::start(domain::testing::TestDb::sqlite().await).await;
    s.tenant("acme").await;
    let path = s.url("/api/acme/webhooks/listeners/actito/custom-actions/updatePass");
    for _ in 0..REJECTION_BUDGET + 50 {
        let response = s.http.post(&path).body("garbage").send().await.unwrap();
        assert_eq!(response.status(), 401, "every request is still answered");
    }
    let (stored,): (i64,) =
        domain::sqlx::query_as("SELECT COUNT(*) FROM inbound_events WHERE status = 'rejected'")
            .fetch_one(s.db.db.reader())
            .await
            .unwrap();
    assert_eq!(stored, REJECTION_BUDGET);
    // Unknown tenants are not stored at all.
    let response = s
        .http
        .post(s.url("/api/ghost/webhooks/listeners/actito/custom-actions/updatePass"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (ghosts,): (i64,) =
        domain::sqlx::query_as("SELECT COUNT(*) FROM inbound_events WHERE tenant_id = 'ghost'")
            .fetch_one(s.db.db.reader())
            .await
            .unwrap();
    assert_eq!(ghosts, 0);
    s.stop().await;
}

/// The console form as the Actito page sends it.
fn actito_form(base: &str, api_key: &str) -> Value {
    json!({"form": {"api_base_url": base, "entity": "MyEntity", "api_key": api_key, "profile_table_id": "12",
        "identifier_mapping": [["emailAddress", "email"]], "data_mapping": [], "callback_hosts": ["127.0.0.1"]}})
}

/// The write-only Actito key stays with the host it was entered for: changing the host
/// (API or console) needs the key again, "Test connection" sends the stored key only
/// to its own host, errors show a fixed description and never the peer's body, and
/// each test is in the settings history without the key.
#[tokio::test]
async fn the_stored_actito_key_goes_only_to_its_own_host() {
    for db in TestDb::all().await {
        let home = FakeActito::start().await;
        let elsewhere = FakeActito::start().await;
        let s = TestServer::start_with(db, MasterKey::generate(), allow_loopback).await;
        s.tenant("acme").await;
        let key = s.key("acme", &[Scope::IntegrationsWrite]).await;
        let cookie = s.admin_session("acme").await;
        let url = s.url("/api/acme/integrations/actito");
        let put = |body: Value| {
            s.http
                .put(&url)
                .header("X-API-KEY", &key)
                .json(&body)
                .send()
        };
        let r = put(json!({"apiBaseUrl": home.url, "entity": "MyEntity", "apiKey": ACTITO_API_KEY, "profileTableId": "12"}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // API: another host without the key is a field error on apiKey; nothing changes.
        let moved =
            put(json!({"apiBaseUrl": elsewhere.url, "entity": "MyEntity", "profileTableId": "12"}))
                .await
                .unwrap();
        let body = problem(moved, 400).await;
        assert_eq!(body["errors"][0]["field"], "apiKey", "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("API host changed"),
            "{body}"
        );
        let stored = domain::actito::settings::get(s.core().vault(), "acme")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.api_base_url, home.url);
        // The same host (written differently) keeps the key.
        let same = put(json!({"apiBaseUrl": format!("{}/", home.url), "entity": "Other", "profileTableId": "12"}))
            .await
            .unwrap();
        assert_eq!(same.status(), 200);

        // Console: saving another host with an empty key field is refused the same way.
        let (status, text) = s
            .server_fn(&cookie, "save_actito", actito_form(&elsewhere.url, ""))
            .await;
        assert_eq!(status, 200, "{text}");
        let saved: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(saved["Invalid"][0]["field"], "apiKey", "{saved}");

        // Test connection at another host with no typed key: a field error, no call.
        let (status, text) = s
            .server_fn(&cookie, "test_actito", actito_form(&elsewhere.url, ""))
            .await;
        assert_eq!(status, 200, "{text}");
        let tested: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(tested["Invalid"][0]["field"], "apiKey", "{tested}");
        assert!(
            elsewhere.requests().is_empty(),
            "{:?}",
            elsewhere.requests()
        );

        // A typed key goes to the typed host; the refusal is described, not echoed.
        let (_, text) = s
            .server_fn(
                &cookie,
                "test_actito",
                actito_form(&elsewhere.url, "typed-wrong-key"),
            )
            .await;
        let tested: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(tested["Done"]["ok"], false, "{tested}");
        assert_eq!(
            tested["Done"]["message"],
            "Actito answered 401: the key was refused"
        );
        assert!(!text.contains(ACTITO_BODY_MARKER), "{text}");
        // The stored key, with the host it was stored for.
        let (_, text) = s
            .server_fn(&cookie, "test_actito", actito_form(&home.url, ""))
            .await;
        let tested: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(tested["Done"]["ok"], true, "{tested}");

        // The other host only ever saw the key typed for it.
        let seen: Vec<Option<String>> = elsewhere
            .requests()
            .into_iter()
            .map(|r| r.authorization)
            .collect();
        assert_eq!(seen, [Some("typed-wrong-key".to_string())]);

        // Both tests are in the settings history, with their outcome, never a key.
        let entries = history::list(&s.db.db, "acme", Some(Area::Actito), 20)
            .await
            .unwrap();
        let tests: Vec<_> = entries
            .iter()
            .filter(|e| e.summary == "Tested the Actito connection")
            .collect();
        assert_eq!(tests.len(), 2, "{entries:?}");
        let recorded = serde_json::to_string(&entries).unwrap();
        assert!(recorded.contains("Actito answered 401: the key was refused"));
        assert!(recorded.contains("connected"));
        for secret in [ACTITO_API_KEY, "typed-wrong-key", ACTITO_BODY_MARKER] {
            assert!(!recorded.contains(secret), "{secret} in {recorded}");
        }
        s.stop().await;
    }
}

/// Tenants cannot point Actito settings at obviously private places (loopback, link-local
/// metadata, `localhost`): a field error at save time. Only the operator opens them,
/// with `PASSHOOK_ALLOW_PRIVATE_HOSTS`. (The guarded client is the real guard; see
/// actito.rs for calls to names and stored settings.)
#[tokio::test]
async fn private_actito_hosts_need_the_operator() {
    let body = |base: &str, hosts: &[&str]| json!({"apiBaseUrl": base, "entity": "E", "apiKey": "k", "profileTableId": "1", "callbackHosts": hosts});
    let tenant_only = TestServer::start(TestDb::sqlite().await).await;
    tenant_only.tenant("acme").await;
    let key = tenant_only.key("acme", &[Scope::IntegrationsWrite]).await;
    let url = tenant_only.url("/api/acme/integrations/actito");
    for (base, hosts, fields) in [
        (
            "http://127.0.0.1:9",
            vec!["*.actito.com"],
            vec!["apiBaseUrl"],
        ),
        ("http://[::1]:9", vec!["*.actito.com"], vec!["apiBaseUrl"]),
        (
            "http://169.254.169.254",
            vec!["*.actito.com"],
            vec!["apiBaseUrl"],
        ),
        (
            "http://localhost:9",
            vec!["*.actito.com"],
            vec!["apiBaseUrl"],
        ),
        (
            "https://api.actito.com",
            vec!["127.0.0.1"],
            vec!["callbackHosts"],
        ),
        (
            "https://api.actito.com",
            vec!["localhost"],
            vec!["callbackHosts"],
        ),
        (
            "https://api.actito.com",
            vec!["169.254.169.254"],
            vec!["callbackHosts"],
        ),
        (
            "https://api.actito.com",
            vec!["*.localhost", "10.0.0.1"],
            vec!["callbackHosts", "callbackHosts"],
        ),
    ] {
        let answer = tenant_only
            .http
            .put(&url)
            .header("X-API-KEY", &key)
            .json(&body(base, &hosts))
            .send()
            .await
            .unwrap();
        let problem = problem(answer, 400).await;
        let got: Vec<&str> = problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(got, fields, "{base} {hosts:?}: {problem}");
    }
    tenant_only.stop().await;

    let operator = TestServer::start_with(TestDb::sqlite().await, MasterKey::generate(), |c| {
        c.allow_private_hosts =
            server::config::PrivateHosts::parse("127.0.0.0/8, localhost").unwrap();
    })
    .await;
    operator.tenant("acme").await;
    let key = operator.key("acme", &[Scope::IntegrationsWrite]).await;
    let url = operator.url("/api/acme/integrations/actito");
    for (base, hosts) in [
        ("http://127.0.0.1:9", vec!["127.0.0.1"]),
        ("http://localhost:9", vec!["localhost"]),
    ] {
        let answer = operator
            .http
            .put(&url)
            .header("X-API-KEY", &key)
            .json(&body(base, &hosts))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{base} {hosts:?}");
    }
    // What the operator did not open stays closed.
    let answer = operator
        .http
        .put(&url)
        .header("X-API-KEY", &key)
        .json(&body("http://169.254.169.254", &["*.actito.com"]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(answer, 400).await["errors"][0]["field"],
        "apiBaseUrl"
    );
    operator.stop().await;
}
