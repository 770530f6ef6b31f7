//! Google Wallet delivery against a loopback fake Google.

mod support;

use base64::Engine;
use domain::api_keys::Scope;
use domain::crypto::MasterKey;
use domain::testing::TestDb;
use domain::wallet::certs;
use serde_json::{json, Value};
use support::fakes::{eventually, eventually_within, FakeGoogle, FlakyPeer};
use support::{actito_sample, problem, TestServer};

const ISSUER: &str = "3388000000012345678";

struct Setup {
    s: TestServer,
    google: FakeGoogle,
    key: String,
    pass_id: String,
}

async fn setup(db: TestDb) -> Setup {
    let google = FakeGoogle::start().await;
    let (api, token) = (
        format!("{}/walletobjects/v1", google.url),
        format!("{}/token", google.url),
    );
    let s = TestServer::start_with(db, MasterKey::generate(), move |c| {
        c.google_api_url = api;
        c.google_token_url = Some(token);
    })
    .await;
    s.tenant("acme").await;
    let key = s
        .key(
            "acme",
            &[
                Scope::IntegrationsWrite,
                Scope::PassesRead,
                Scope::PassesWrite,
                Scope::AuditRead,
            ],
        )
        .await;
    let private_key = certs::generate_rsa_pem();
    google.register("wallet@acme.iam.gserviceaccount.test", &private_key);
    let account = json!({"type": "service_account", "client_email": "wallet@acme.iam.gserviceaccount.test",
        "private_key_id": "k1", "private_key": private_key, "token_uri": "https://oauth2.googleapis.com/token"});
    let put = |path: &str, body: Value| {
        s.http
            .put(s.url(path))
            .header("X-API-KEY", &key)
            .json(&body)
            .send()
    };
    assert_eq!(
        put(
            "/api/acme/wallet/credentials/google",
            json!({"serviceAccount": account})
        )
        .await
        .unwrap()
        .status(),
        200
    );
    let design = json!({"name": "Loyalty", "google": {"issuerId": ISSUER, "classId": format!("{ISSUER}.loyalty"), "objectKind": "loyalty",
        "fields": [{"key": "points", "label": "Points", "valueFrom": "points", "notify": true}, {"key": "name", "label": "Name", "valueFrom": "name"}]}});
    assert_eq!(
        put("/api/acme/pass-types/loyalty", design)
            .await
            .unwrap()
            .status(),
        200
    );
    let pass: Value = s.http.post(s.url("/api/acme/passes")).header("X-API-KEY", &key)
        .json(&json!({"passType": "loyalty", "identifiers": {"email": "ann@example.com"}, "additionalData": {"points": 0, "name": "Ann"}}))
        .send().await.unwrap().json().await.unwrap();
    Setup {
        s,
        google,
        key,
        pass_id: pass["id"].as_str().unwrap().to_string(),
    }
}

impl Setup {
    async fn patch(&self, data: Value) {
        let r = self
            .s
            .http
            .patch(self.s.url(&format!("/api/acme/passes/{}", self.pass_id)))
            .header("X-API-KEY", &self.key)
            .json(&json!({"additionalData": data}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    fn object_id(&self) -> String {
        format!("{ISSUER}.{}", self.pass_id)
    }

    async fn deliveries(&self) -> Vec<Value> {
        self.deliveries_where(&format!("passId={}&channel=google", self.pass_id))
            .await
    }

    /// The deliveries the API lists for this query string.
    async fn deliveries_where(&self, query: &str) -> Vec<Value> {
        let page: Value = self
            .s
            .http
            .get(self.s.url(&format!("/api/acme/deliveries?{query}")))
            .header("X-API-KEY", &self.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn objects_are_created_patched_and_notified_within_googles_limit() {
    for db in TestDb::all().await {
        let t = setup(db).await;
        t.patch(json!({"points": 10})).await;
        eventually("the object is inserted with the new points", || async {
            t.google
                .object(&t.object_id())
                .is_some_and(|o| o["textModulesData"][0]["body"] == "10")
        })
        .await;
        eventually("a notifying message", || async {
            t.google.messages().len() == 1
        })
        .await;
        assert_eq!(t.google.messages()[0].1, "TEXT_AND_NOTIFY");

        // A change of a field without `notify` patches the object and adds no message.
        t.patch(json!({"name": "Annie"})).await;
        eventually("the name reaches Google", || async {
            t.google
                .object(&t.object_id())
                .is_some_and(|o| o["textModulesData"][1]["body"] == "Annie")
        })
        .await;
        assert_eq!(t.google.messages().len(), 1);

        for (i, points) in [20, 30, 40].into_iter().enumerate() {
            t.patch(json!({"points": points})).await;
            eventually("the next message", || async {
                t.google.messages().len() == 2 + i
            })
            .await;
        }
        let types: Vec<String> = t.google.messages().into_iter().map(|m| m.1).collect();
        assert_eq!(
            types,
            [
                "TEXT_AND_NOTIFY",
                "TEXT_AND_NOTIFY",
                "TEXT_AND_NOTIFY",
                "TEXT"
            ],
            "the fourth in 24 h does not notify"
        );
        // The delivery attempt is recorded with the job's outcome, just after the call.
        eventually("the fourth delivery's note", || async {
            t.deliveries().await.iter().any(|d| {
                d["attempts"][0]["error"]
                    .as_str()
                    .is_some_and(|n| n.contains("3 notifications in 24 h"))
            })
        })
        .await;
        assert_eq!(
            t.google
                .state
                .token_calls
                .load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the token is cached"
        );
        t.s.stop().await;
    }
}

/// The token endpoint chooses the token's lifetime: one that would overflow the clock
/// must not panic the delivery job; the token is held (to a day) and reused.
#[tokio::test]
async fn a_token_lifetime_past_the_clock_is_held_to_a_day() {
    for db in TestDb::all().await {
        let t = setup(db).await;
        *t.google.state.expires_in.lock().unwrap() = Some(json!(u64::MAX));
        for points in [10, 20] {
            let shown = points.to_string();
            t.patch(json!({"points": points})).await;
            eventually("the object gets the new points", || async {
                t.google
                    .object(&t.object_id())
                    .is_some_and(|o| o["textModulesData"][0]["body"] == shown.as_str())
            })
            .await;
        }
        let calls = t
            .google
            .state
            .token_calls
            .load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(calls, 1, "the token is cached");
        t.s.stop().await;
    }
}

#[tokio::test]
async fn google_outages_are_retried_and_save_links_are_signed() {
    for db in TestDb::all().await {
        let t = setup(db).await;
        t.google.state.patch_failures.lock().unwrap().push(503);
        t.patch(json!({"name": "Retry"})).await;
        eventually("the retry delivers", || async {
            t.deliveries()
                .await
                .first()
                .is_some_and(|d| d["status"] == "delivered")
        })
        .await;
        let codes: Vec<Value> = t.deliveries().await[0]["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["statusCode"].clone())
            .collect();
        assert_eq!(codes, [json!(503), json!(200)]);

        let link: Value =
            t.s.http
                .get(t.s.url(&format!("/api/acme/passes/{}/google-save-url", t.pass_id)))
                .header("X-API-KEY", &t.key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let url = link["saveUrl"].as_str().unwrap_or_else(|| panic!("{link}"));
        let jwt = url
            .strip_prefix("https://pay.google.com/gp/v/save/")
            .expect("a save link");
        let payload = jwt.split('.').nth(1).unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["typ"], "savetowallet");
        assert_eq!(claims["payload"]["loyaltyObjects"][0]["id"], t.object_id());
        let header = jwt.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(header)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "RS256");

        let no_design =
            t.s.http
                .get(t.s.url("/api/acme/passes/pass_missing/google-save-url"))
                .header("X-API-KEY", &t.key)
                .send()
                .await
                .unwrap();
        problem(no_design, 404).await;
        t.s.stop().await;
    }
}

/// Sets up `tenant` on `s` with a service account naming `client_email` and signed
/// with `private_key`, a design with Google's ids, and a pass with `pass_id`; returns
/// an API key of the tenant.
async fn set_up_tenant(
    s: &TestServer,
    tenant: &str,
    account: Value,
    pass_id: &str,
    data: Value,
) -> String {
    s.tenant(tenant).await;
    let key = s
        .key(
            tenant,
            &[
                Scope::IntegrationsWrite,
                Scope::PassesRead,
                Scope::PassesWrite,
                Scope::AuditRead,
            ],
        )
        .await;
    let put = |path: String, body: Value| {
        s.http
            .put(s.url(&path))
            .header("X-API-KEY", &key)
            .json(&body)
            .send()
    };
    let r = put(
        format!("/api/{tenant}/wallet/credentials/google"),
        json!({ "serviceAccount": account }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let design = json!({"name": "Loyalty", "google": {"issuerId": ISSUER, "classId": format!("{ISSUER}.loyalty"), "objectKind": "loyalty",
        "fields": [{"key": "name", "label": "Name", "valueFrom": "name"}]}});
    let r = put(format!("/api/{tenant}/pass-types/loyalty"), design)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s.http.post(s.url(&format!("/api/{tenant}/passes"))).header("X-API-KEY", &key)
        .json(&json!({"id": pass_id, "passType": "loyalty", "identifiers": {"email": "ann@example.com"}, "additionalData": data}))
        .send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    key
}

async fn patch_pass(s: &TestServer, tenant: &str, key: &str, pass_id: &str, data: Value) {
    let r = s
        .http
        .patch(s.url(&format!("/api/{tenant}/passes/{pass_id}")))
        .header("X-API-KEY", key)
        .json(&json!({ "additionalData": data }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn google_deliveries(s: &TestServer, tenant: &str, key: &str, pass_id: &str) -> Vec<Value> {
    let page: Value = s
        .http
        .get(s.url(&format!(
            "/api/{tenant}/deliveries?passId={pass_id}&channel=google"
        )))
        .header("X-API-KEY", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().cloned().unwrap_or_default()
}

/// Tenant B uploads a service account naming tenant A's `client_email` (with B's own
/// key), copies A's issuer, class and pass id: B's update must not ride on A's
/// cached token, and A's channel keeps working.
#[tokio::test]
async fn a_tenant_naming_anothers_service_account_does_not_get_its_token() {
    const EMAIL: &str = "wallet@alpha.iam.gserviceaccount.test";
    const PASS: &str = "shared-pass-id";
    for db in TestDb::all().await {
        let google = FakeGoogle::start().await;
        let (api, token) = (
            format!("{}/walletobjects/v1", google.url),
            format!("{}/token", google.url),
        );
        let s = TestServer::start_with(db, MasterKey::generate(), move |c| {
            c.google_api_url = api;
            c.google_token_url = Some(token);
        })
        .await;
        let alpha_key = certs::generate_rsa_pem();
        google.register(EMAIL, &alpha_key);
        let account = |private_key: &str| {
            json!({"type": "service_account", "client_email": EMAIL, "private_key_id": "k1",
                "private_key": private_key, "token_uri": "https://oauth2.googleapis.com/token"})
        };
        let a = set_up_tenant(
            &s,
            "alpha",
            account(&alpha_key),
            PASS,
            json!({"name": "Alpha"}),
        )
        .await;
        let object_id = format!("{ISSUER}.{PASS}");
        patch_pass(&s, "alpha", &a, PASS, json!({"name": "Alpha one"})).await;
        eventually("alpha's object reaches Google", || async {
            google
                .object(&object_id)
                .is_some_and(|o| o["textModulesData"][0]["body"] == "Alpha one")
        })
        .await;
        assert!(
            google.token_refusals().is_empty(),
            "{:?}",
            google.token_refusals()
        );

        // Bravo: the same client_email and ids, its own private key.
        let b = set_up_tenant(
            &s,
            "bravo",
            account(&certs::generate_rsa_pem()),
            PASS,
            json!({"name": "Bravo"}),
        )
        .await;
        patch_pass(&s, "bravo", &b, PASS, json!({"name": "Bravo was here"})).await;
        let bravo_wrote = || {
            google
                .writes()
                .iter()
                .any(|(_, _, body)| body.to_string().contains("Bravo"))
        };
        eventually(
            "bravo's update reaches Google or its token is refused",
            || async { bravo_wrote() || !google.token_refusals().is_empty() },
        )
        .await;
        let writes = google.writes();
        assert!(
            !writes
                .iter()
                .any(|(_, _, body)| body.to_string().contains("Bravo")),
            "bravo's text reached Google with a token it was not issued: {writes:?}"
        );
        assert!(
            google
                .token_refusals()
                .iter()
                .any(|why| why.contains(EMAIL) && why.contains("refused")),
            "bravo's own assertion was sent and refused: {:?}",
            google.token_refusals()
        );
        eventually("bravo's delivery fails", || async {
            google_deliveries(&s, "bravo", &b, PASS)
                .await
                .iter()
                .any(|d| d["status"] == "failed")
        })
        .await;
        assert!(!bravo_wrote());

        // Alpha's channel still works, with alpha's token.
        patch_pass(&s, "alpha", &a, PASS, json!({"name": "Alpha two"})).await;
        eventually("alpha's next update reaches Google", || async {
            google
                .object(&object_id)
                .is_some_and(|o| o["textModulesData"][0]["body"] == "Alpha two")
        })
        .await;
        s.stop().await;
    }
}

/// A service account's `token_uri` names where its tokens come from, but the server
/// only ever asks Google's endpoint (or the operator's replacement): a key file
/// cannot point the server, and the signed assertion, at another host.
#[tokio::test]
async fn a_service_accounts_token_uri_is_never_called() {
    for db in TestDb::all().await {
        let google = FakeGoogle::start().await;
        let trap = FlakyPeer::start().await;
        let api = format!("{}/walletobjects/v1", google.url);
        // No PASSHOOK_GOOGLE_TOKEN_URL: Google's own endpoint is the only one allowed
        // (unreachable in a sandbox, refusing this made-up account otherwise).
        let s = TestServer::start_with(db, MasterKey::generate(), move |c| {
            c.google_api_url = api;
            c.google_token_url = None;
        })
        .await;
        let account = json!({"type": "service_account", "client_email": "wallet@trap.iam.gserviceaccount.test",
            "private_key_id": "k1", "private_key": certs::generate_rsa_pem(), "token_uri": format!("{}/token", trap.url)});
        let key = set_up_tenant(&s, "acme", account, "p1", json!({"name": "Ann"})).await;
        patch_pass(&s, "acme", &key, "p1", json!({"name": "Annie"})).await;
        eventually_within(
            "the delivery's first attempt is recorded",
            std::time::Duration::from_secs(40),
            || async {
                google_deliveries(&s, "acme", &key, "p1")
                    .await
                    .iter()
                    .any(|d| d["attempts"].as_array().is_some_and(|a| !a.is_empty()))
            },
        )
        .await;
        assert!(
            trap.requests().is_empty(),
            "the key file's token_uri was called: {:?}",
            trap.requests()
        );
        assert!(google.writes().is_empty());
        s.stop().await;
    }
}

/// A wallet push made for an Actito custom action counts for it on the Journeys page,
/// and the push history's "wallet" filter finds it: wallet deliveries are stored as
/// `apple` or `google`, and both views once looked for a channel named `wallet`.
#[tokio::test]
async fn a_custom_actions_wallet_push_is_counted_and_found_by_the_wallet_filter() {
    for db in TestDb::all().await {
        let t = setup(db).await;
        let listener = t.s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let mut envelope = actito_sample("custom-action-trigger-one-by-one.json");
        envelope["data"]["actionParameters.passId"] = json!(t.pass_id);
        envelope["data"]["actionParameters.points"] = json!("50");
        // Callbacks to a host the tenant never allowed: refused here, no call leaves.
        for link in ["notifyOK", "notifyKO"] {
            envelope["data"]["_links"][link]["href"] =
                json!(format!("https://callbacks.invalid/ca/{link}"));
        }
        let sent =
            t.s.http
                .post(t.s.url("/api/acme/webhooks/listeners/actito/custom-actions/updatePass"))
                .header("X-API-KEY", &listener)
                .json(&envelope)
                .send()
                .await
                .unwrap();
        assert_eq!(sent.status(), 200);
        eventually(
            "the push reaches Google and is recorded as delivered",
            || async {
                t.deliveries()
                    .await
                    .iter()
                    .any(|d| d["status"] == "delivered")
            },
        )
        .await;

        let wallet = t.deliveries_where("channel=wallet").await;
        let channels: Vec<&str> = wallet
            .iter()
            .map(|d| d["channel"].as_str().unwrap())
            .collect();
        assert!(
            !channels.is_empty(),
            "the wallet filter finds the Google push"
        );
        assert!(
            channels.iter().all(|c| *c == "google"),
            "only wallet pushes: {channels:?}"
        );

        let cookie = t.s.admin_session("acme").await;
        // The console's server function takes a form, as the page sends it.
        let answer =
            t.s.http
                .post(t.s.url("/console/fn/list_journeys"))
                .header("cookie", &cookie)
                .form(&[("range", "Day")])
                .send()
                .await
                .unwrap();
        let (status, body) = (answer.status().as_u16(), answer.text().await.unwrap());
        assert_eq!(status, 200, "{body}");
        let rows: Value = serde_json::from_str(&body).unwrap();
        let action = rows
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["journey_id"] == "custom-action.updatePass")
            .unwrap_or_else(|| panic!("the custom action is listed: {body}"));
        assert_eq!(action["pushes_sent"], 1, "{action}");

        // A channel the vocabulary lacks is refused, not answered with nothing.
        let unknown =
            t.s.http
                .get(t.s.url("/api/acme/deliveries?channel=carrier-pigeon"))
                .header("X-API-KEY", &t.key)
                .send()
                .await
                .unwrap();
        problem(unknown, 400).await;
        t.s.stop().await;
    }
}
