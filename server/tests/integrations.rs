//! Integration settings and the rejection budget.

mod support;

use domain::api_keys::Scope;
use domain::events::REJECTION_BUDGET;
use serde_json::{json, Value};
use support::{problem, TestServer};

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
        let settings = domain::actito::settings::get(&s.core(), "acme")
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
        assert_eq!(fields, ["apiBaseUrl", "callbackHosts"]);
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
            .json(&json!({"signingKeys": [{"id": "k1", "secret": "0x6b6579"}, {"id": "k2", "secret": "raw-salt"}], "customerKey": "ck"}))
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
        assert!(!view.to_string().contains("raw-salt") && !view.to_string().contains("6b6579"));
        let keys = domain::sfmc::settings::signing_keys(&s.core(), "acme")
            .await
            .unwrap();
        assert_eq!(keys[0].secret, b"key");
        assert_eq!(keys[1].secret, b"raw-salt");

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
        let keys = domain::sfmc::settings::signing_keys(&s.core(), "acme")
            .await
            .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].secret, b"raw-salt");
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
