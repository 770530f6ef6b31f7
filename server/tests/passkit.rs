//! Apple Wallet end to end: a device registers as an iPhone does, a pass change is
//! pushed through a loopback HTTP/2 APNs, the device fetches what changed.

mod support;

use std::io::Read;

use domain::api_keys::Scope;
use domain::crypto::MasterKey;
use domain::testing::TestDb;
use domain::wallet::certs;
use serde_json::{json, Value};
use support::fakes::{eventually, FakeApns};
use support::{problem, TestServer};

const TYPE_ID: &str = "pass.com.passhook.test";

struct Setup {
    s: TestServer,
    apns: FakeApns,
    key: String,
    pass_id: String,
    token: String,
}

async fn setup(db: TestDb, token_auth: bool) -> Setup {
    let apns = FakeApns::start().await;
    let url = apns.url.clone();
    let s = TestServer::start_with(db, MasterKey::generate(), move |c| c.apns_url = url).await;
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
    let test = certs::generate(TYPE_ID);
    let mut credentials = json!({"certificatePem": test.certificate_pem, "privateKeyPem": test.private_key_pem, "wwdrPem": test.ca_pem});
    if token_auth {
        credentials["apns"] =
            json!({"keyP8": test.apns_key_p8, "keyId": "KEY1234567", "teamId": "TEAM123456"});
    }
    let put = |path: &str, body: Value| {
        s.http
            .put(s.url(path))
            .header("X-API-KEY", &key)
            .json(&body)
            .send()
    };
    assert_eq!(
        put("/api/acme/wallet/credentials/apple", credentials)
            .await
            .unwrap()
            .status(),
        200
    );
    let design = json!({"name": "Loyalty", "apple": {"passTypeIdentifier": TYPE_ID, "teamIdentifier": "TEAM123456",
        "organizationName": "Test", "description": "Card", "style": "storeCard",
        "fields": {"primary": [{"key": "points", "valueFrom": "points", "changeMessage": "Now %@ points"}]}}});
    assert_eq!(
        put("/api/acme/pass-types/loyalty", design)
            .await
            .unwrap()
            .status(),
        200
    );
    let pass: Value = s.http.post(s.url("/api/acme/passes")).header("X-API-KEY", &key)
        .json(&json!({"passType": "loyalty", "identifiers": {"email": "ann@example.com"}, "additionalData": {"points": 1}}))
        .send().await.unwrap().json().await.unwrap();
    let pass_id = pass["id"].as_str().unwrap().to_string();
    let bundle = s
        .http
        .get(s.url(&format!("/api/acme/passes/{pass_id}/apple.pkpass")))
        .header("X-API-KEY", &key)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bundle)).unwrap();
    let mut text = String::new();
    archive
        .by_name("pass.json")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let token = serde_json::from_str::<Value>(&text).unwrap()["authenticationToken"]
        .as_str()
        .unwrap()
        .to_string();
    Setup {
        s,
        apns,
        key,
        pass_id,
        token,
    }
}

impl Setup {
    fn device_url(&self, device: &str) -> String {
        self.s.url(&format!(
            "/api/acme/wallet/apple/v1/devices/{device}/registrations/{TYPE_ID}/{}",
            self.pass_id
        ))
    }

    async fn register(&self, device: &str, push_token: &str) -> u16 {
        self.s
            .http
            .post(self.device_url(device))
            .header("Authorization", format!("ApplePass {}", self.token))
            .json(&json!({"pushToken": push_token}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn set_points(&self, points: i64) {
        let r = self
            .s
            .http
            .patch(self.s.url(&format!("/api/acme/passes/{}", self.pass_id)))
            .header("X-API-KEY", &self.key)
            .json(&json!({"additionalData": {"points": points}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn an_iphone_registers_is_pushed_and_fetches_the_new_pass() {
    for db in TestDb::all().await {
        let t = setup(db, true).await;
        let s = &t.s;
        assert_eq!(t.register("device-1", "0a1b2c3d").await, 201);
        assert_eq!(
            t.register("device-1", "0a1b2c3d").await,
            200,
            "a known registration"
        );
        let forged = s
            .http
            .post(t.device_url("device-2"))
            .header("Authorization", "ApplePass not-the-token")
            .json(&json!({"pushToken": "x"}))
            .send()
            .await
            .unwrap();
        problem(forged, 401).await;

        let serials_url = s.url(&format!(
            "/api/acme/wallet/apple/v1/devices/device-1/registrations/{TYPE_ID}"
        ));
        let first: Value = s
            .http
            .get(&serials_url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(first["serialNumbers"], json!([t.pass_id]));
        let tag = first["lastUpdated"].as_str().unwrap().to_string();
        let unchanged = s
            .http
            .get(format!("{serials_url}?passesUpdatedSince={tag}"))
            .send()
            .await
            .unwrap();
        assert_eq!(unchanged.status(), 204);

        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        t.set_points(50).await;
        eventually("APNs receives the push", || async {
            !t.apns.pushes().is_empty()
        })
        .await;
        let push = &t.apns.pushes()[0];
        assert_eq!(
            (push.token.as_str(), push.topic.as_str()),
            ("0a1b2c3d", TYPE_ID)
        );
        assert!(push.http2, "APNs is spoken over HTTP/2");
        assert!(
            push.authorization
                .as_deref()
                .unwrap()
                .starts_with("bearer "),
            "token authentication"
        );

        let changed: Value = s
            .http
            .get(format!("{serials_url}?passesUpdatedSince={tag}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(changed["serialNumbers"], json!([t.pass_id]));
        assert!(
            changed["lastUpdated"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > tag.parse::<i64>().unwrap()
        );

        let pass_url = s.url(&format!(
            "/api/acme/wallet/apple/v1/passes/{TYPE_ID}/{}",
            t.pass_id
        ));
        let auth = format!("ApplePass {}", t.token);
        let latest = s
            .http
            .get(&pass_url)
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(latest.status(), 200);
        assert_eq!(
            latest.headers()["content-type"],
            "application/vnd.apple.pkpass"
        );
        let modified = latest.headers()["last-modified"]
            .to_str()
            .unwrap()
            .to_string();
        let again = s
            .http
            .get(&pass_url)
            .header("Authorization", &auth)
            .header("If-Modified-Since", &modified)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        problem(s.http.get(&pass_url).send().await.unwrap(), 401).await;

        // The push's outcome is recorded with the worker's next batch of outcomes,
        // which may come just after the device's fetch.
        let apple_deliveries = || async {
            let answer = s
                .http
                .get(s.url(&format!(
                    "/api/acme/deliveries?passId={}&channel=apple",
                    t.pass_id
                )))
                .header("X-API-KEY", &t.key)
                .send()
                .await
                .unwrap();
            answer.json::<Value>().await.unwrap()
        };
        eventually("the push is recorded as delivered", || async {
            apple_deliveries().await["items"][0]["status"] == "delivered"
        })
        .await;
        let deliveries = apple_deliveries().await;
        assert_eq!(deliveries["items"][0]["attempts"][0]["statusCode"], 200);

        let gone = s
            .http
            .delete(t.device_url("device-1"))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 200);
        assert_eq!(s.http.get(&serials_url).send().await.unwrap().status(), 204);
        t.s.stop().await;
    }
}

#[tokio::test]
async fn push_tokens_must_be_hexadecimal() {
    for db in TestDb::all().await {
        let t = setup(db, true).await;
        for bad in ["not-hex", "ab/../cd", "ab%2Fcd", "", &"a".repeat(201)] {
            let response =
                t.s.http
                    .post(t.device_url("device-1"))
                    .header("Authorization", format!("ApplePass {}", t.token))
                    .json(&json!({"pushToken": bad}))
                    .send()
                    .await
                    .unwrap();
            let body = problem(response, 400).await;
            assert_eq!(body["code"], "VALIDATION_FAILED", "{bad:?}");
            assert_eq!(body["errors"][0]["field"], "pushToken", "{bad:?}");
        }
        assert_eq!(t.register("device-1", &"aB09".repeat(16)).await, 201);
        let (stored,): (i64,) = domain::sqlx::query_as("SELECT COUNT(*) FROM apple_registrations")
            .fetch_one(t.s.db.db.reader())
            .await
            .unwrap();
        assert_eq!(stored, 1, "only the hexadecimal token is registered");
        t.s.stop().await;
    }
}

#[tokio::test]
async fn bursts_coalesce_and_dead_tokens_are_forgotten() {
    for db in TestDb::all().await {
        let t = setup(db, false).await;
        assert_eq!(t.register("device-1", "aaaa0001").await, 201);
        assert_eq!(t.register("device-2", "dead0002").await, 201);
        t.apns.script("dead0002", &[410]);
        for points in 2..=6 {
            t.set_points(points).await;
        }
        eventually("both devices are pushed", || async {
            t.apns.pushes().len() >= 2
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        let pushes = t.apns.pushes();
        assert_eq!(
            pushes.len(),
            2,
            "five quick updates, one push per device: {pushes:?}"
        );
        assert!(
            pushes.iter().all(|p| p.authorization.is_none()),
            "certificate authentication sends no bearer token"
        );
        let (left,): (i64,) = domain::sqlx::query_as("SELECT COUNT(*) FROM apple_registrations")
            .fetch_one(t.s.db.db.reader())
            .await
            .unwrap();
        assert_eq!(left, 1, "APNs 410 removes the registration");
        t.s.stop().await;
    }
}

#[tokio::test]
async fn unavailable_apns_is_retried_without_pushing_twice() {
    for db in TestDb::all().await {
        let t = setup(db, true).await;
        assert_eq!(t.register("device-1", "0000000a").await, 201);
        assert_eq!(t.register("device-2", "0000000b").await, 201);
        t.apns.script("0000000b", &[503]);
        t.set_points(9).await;
        eventually("token-b gets through on a retry", || async {
            t.apns
                .pushes()
                .iter()
                .filter(|p| p.token == "0000000b")
                .count()
                == 2
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let to_a = t
            .apns
            .pushes()
            .iter()
            .filter(|p| p.token == "0000000a")
            .count();
        assert_eq!(to_a, 1, "the device already pushed is not pushed again");
        let deliveries: Value =
            t.s.http
                .get(t.s.url(&format!(
                    "/api/acme/deliveries?passId={}&channel=apple",
                    t.pass_id
                )))
                .header("X-API-KEY", &t.key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        let b = deliveries["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["target"] == "device device-2")
            .unwrap();
        assert_eq!(b["status"], "delivered");
        let codes: Vec<i64> = b["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["statusCode"].as_i64().unwrap())
            .collect();
        assert_eq!(codes, [503, 200]);
        t.s.stop().await;
    }
}

#[tokio::test]
async fn apns_asking_to_slow_down_is_retried_after_retry_after() {
    for db in TestDb::all().await {
        let t = setup(db, true).await;
        assert_eq!(t.register("device-1", "0000000a").await, 201);
        t.apns.script("0000000a", &[429]);
        *t.apns.state.retry_after.lock().unwrap() = Some("3");
        t.set_points(11).await;
        eventually("the push gets through on a retry", || async {
            t.apns.pushes().len() == 2
        })
        .await;
        let pushes = t.apns.pushes();
        let waited = pushes[1].at.duration_since(pushes[0].at);
        assert!(
            waited >= std::time::Duration::from_secs(3),
            "retried after {waited:?}"
        );
        let delivery = || async {
            let page: Value =
                t.s.http
                    .get(t.s.url(&format!(
                        "/api/acme/deliveries?passId={}&channel=apple",
                        t.pass_id
                    )))
                    .header("X-API-KEY", &t.key)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
            page["items"][0].clone()
        };
        eventually("the delivery is recorded as delivered", || async {
            delivery().await["status"] == "delivered"
        })
        .await;
        let delivery = delivery().await;
        assert_eq!(delivery["attempts"][0]["statusCode"], 429);
        assert!(delivery["attempts"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("TooManyRequests")));
        t.s.stop().await;
    }
}

/// Sets up `tenant` with its own APNs token key under `key_id` (the same for every
/// tenant here), a pass and a registered device; changes the pass and returns the
/// push APNs received for it, with the public half of the tenant's key.
async fn push_for_tenant(
    s: &TestServer,
    apns: &FakeApns,
    tenant: &str,
    key_id: &str,
) -> (String, String) {
    s.tenant(tenant).await;
    let key = s
        .key(
            tenant,
            &[
                Scope::IntegrationsWrite,
                Scope::PassesRead,
                Scope::PassesWrite,
            ],
        )
        .await;
    let test = certs::generate(TYPE_ID);
    let credentials = json!({"certificatePem": test.certificate_pem, "privateKeyPem": test.private_key_pem, "wwdrPem": test.ca_pem,
        "apns": {"keyP8": test.apns_key_p8, "keyId": key_id, "teamId": "TEAM123456"}});
    let put = |path: String, body: Value| {
        s.http
            .put(s.url(&path))
            .header("X-API-KEY", &key)
            .json(&body)
            .send()
    };
    let r = put(
        format!("/api/{tenant}/wallet/credentials/apple"),
        credentials,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let design = json!({"name": "Loyalty", "apple": {"passTypeIdentifier": TYPE_ID, "teamIdentifier": "TEAM123456",
        "organizationName": "Test", "description": "Card", "style": "storeCard",
        "fields": {"primary": [{"key": "points", "valueFrom": "points"}]}}});
    let r = put(format!("/api/{tenant}/pass-types/loyalty"), design)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pass: Value = s.http.post(s.url(&format!("/api/{tenant}/passes"))).header("X-API-KEY", &key)
        .json(&json!({"passType": "loyalty", "identifiers": {"email": "ann@example.com"}, "additionalData": {"points": 1}}))
        .send().await.unwrap().json().await.unwrap();
    let pass_id = pass["id"].as_str().unwrap().to_string();
    let token = domain::wallet::pkpass::authentication_token(&s.core(), tenant, &pass_id);
    // Hex, as APNs device tokens are, and different per tenant.
    let push_token = domain::crypto::sha256_hex(tenant);
    let r = s
        .http
        .post(s.url(&format!(
            "/api/{tenant}/wallet/apple/v1/devices/{tenant}-device/registrations/{TYPE_ID}/{pass_id}"
        )))
        .header("Authorization", format!("ApplePass {token}"))
        .json(&json!({ "pushToken": push_token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = s
        .http
        .patch(s.url(&format!("/api/{tenant}/passes/{pass_id}")))
        .header("X-API-KEY", &key)
        .json(&json!({"additionalData": {"points": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    eventually("APNs receives the tenant's push", || async {
        apns.pushes().iter().any(|p| p.token == push_token)
    })
    .await;
    let push = apns
        .pushes()
        .into_iter()
        .find(|p| p.token == push_token)
        .unwrap();
    let bearer = push
        .authorization
        .unwrap()
        .strip_prefix("bearer ")
        .unwrap()
        .to_string();
    (bearer, certs::public_pem_of(&test.apns_key_p8))
}

/// Two tenants whose APNs token keys share a key id (and team): each push carries a
/// token signed with the pushing tenant's own key, not one cached for the other.
#[tokio::test]
async fn apns_tokens_are_not_shared_between_tenants_with_the_same_key_id() {
    for db in TestDb::all().await {
        let apns = FakeApns::start().await;
        let url = apns.url.clone();
        let s = TestServer::start_with(db, MasterKey::generate(), move |c| c.apns_url = url).await;
        for tenant in ["alpha", "bravo"] {
            let (bearer, public) = push_for_tenant(&s, &apns, tenant, "KEY1234567").await;
            let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            let verified = jsonwebtoken::decode::<Value>(
                &bearer,
                &jsonwebtoken::DecodingKey::from_ec_pem(public.as_bytes()).unwrap(),
                &validation,
            );
            assert!(
                verified.is_ok(),
                "{tenant}'s push carries a token its own key did not sign: {verified:?}"
            );
        }
        s.stop().await;
    }
}
