//! The rejection audit can't be dodged or drowned: an encoded tenant is recorded as
//! the tenant it names, and anonymous junk can't use up the budget that shows the
//! mistakes of callers holding the tenant's credentials.

mod support;

use domain::api_keys::Scope;
use domain::events::REJECTION_BUDGET;
use support::TestServer;

const LISTENER: &str = "/webhooks/listeners/actito/custom-actions/updatePass";

async fn rejected(s: &TestServer, tenant: &str) -> Vec<(Option<String>, String)> {
    domain::sqlx::query_as(
        "SELECT key_id, reason FROM inbound_events WHERE tenant_id = $1 AND status = 'rejected' \
         ORDER BY received_at",
    )
    .bind(tenant)
    .fetch_all(s.db.db.reader())
    .await
    .unwrap()
}

#[tokio::test]
async fn a_percent_encoded_tenant_is_audited_as_that_tenant() {
    for s in TestServer::all().await {
        s.tenant("demo").await;
        let key = s.key("demo", &[Scope::PassesRead]).await;
        for tenant in ["de%6Do", "%64%65%6D%6F"] {
            let response = s
                .http
                .post(s.url(&format!("/api/{tenant}{LISTENER}")))
                .header("X-API-KEY", &key)
                .json(&serde_json::json!({"id": "e1", "data": {}}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 403, "the key was checked against demo");
        }
        let stored = rejected(&s, "demo").await;
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert!(stored
            .iter()
            .all(|(key, reason)| key.is_some() && reason == "FORBIDDEN_SCOPE"));
        s.stop().await;
    }
}

#[tokio::test]
async fn anonymous_junk_cannot_use_up_the_budget_of_real_callers() {
    let s = TestServer::start(domain::testing::TestDb::sqlite().await).await;
    s.tenant("acme").await;
    let path = s.url(&format!("/api/acme{LISTENER}"));
    for _ in 0..REJECTION_BUDGET + 10 {
        let response = s.http.post(&path).body("garbage").send().await.unwrap();
        assert_eq!(response.status(), 401);
    }
    assert_eq!(rejected(&s, "acme").await.len() as i64, REJECTION_BUDGET);

    // A caller with the tenant's key but the wrong scope: still recorded.
    let key = s.key("acme", &[Scope::PassesRead]).await;
    let response = s
        .http
        .post(&path)
        .header("X-API-KEY", &key)
        .json(&serde_json::json!({"id": "e1", "data": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let stored = rejected(&s, "acme").await;
    assert_eq!(stored.len() as i64, REJECTION_BUDGET + 1);
    assert_eq!(
        stored.last().map(|(_, reason)| reason.as_str()),
        Some("FORBIDDEN_SCOPE")
    );
    s.stop().await;
}
