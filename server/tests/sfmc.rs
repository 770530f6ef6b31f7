//! The SFMC Journey Builder activity against the real server.

mod support;

use domain::api_keys::Scope;
use domain::passes::{self, Identifiers, NewPass};
use domain::sfmc::settings::{self, SfmcSettingsInput, SigningKeyInput};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::fakes::eventually;
use support::{problem, TestServer};

const BASE: &str = "/api/acme/webhooks/listeners/sfmc/actions/pushupdate";
/// The salt as SFMC shows it ("0x" + hex of "journey-signing-secret"), and its raw bytes.
const SALT_HEX: &str = "0x6a6f75726e65792d7369676e696e672d736563726574";
const SALT: &[u8] = b"journey-signing-secret";

async fn setup(s: &TestServer) -> (String, String, String) {
    s.tenant("acme").await;
    s.tenant("other").await;
    let keys = |id: &str, secret: &str| SfmcSettingsInput {
        signing_keys: vec![SigningKeyInput {
            id: id.into(),
            secret: Some(secret.into()),
        }],
        customer_key: Some("passhook-activity".into()),
        when_no_pass: None,
    };
    settings::put(s.core().vault(), "acme", keys("current", SALT_HEX), "test")
        .await
        .unwrap();
    settings::put(
        s.core().vault(),
        "other",
        keys("theirs", "other-tenant-secret"),
        "test",
    )
    .await
    .unwrap();
    let pass = |email: &str, custom_id: &str, kind: &str| {
        let mut identifiers = Identifiers::new();
        identifiers.insert("email".into(), email.into());
        identifiers.insert("customId".into(), custom_id.into());
        identifiers.insert("loyaltyId".into(), format!("L-{custom_id}"));
        NewPass {
            pass_type: kind.into(),
            identifiers,
            ..Default::default()
        }
    };
    let a = passes::create(&s.db.db, "acme", pass("ann@example.com", "C-1", "loyalty"))
        .await
        .unwrap()
        .id;
    let b = passes::create(&s.db.db, "acme", pass("ann@example.com", "C-2", "coupon"))
        .await
        .unwrap()
        .id;
    let c = passes::create(&s.db.db, "acme", pass("bob@example.com", "C-3", "loyalty"))
        .await
        .unwrap()
        .id;
    (a, b, c)
}

fn claims(in_arguments: Value) -> Value {
    json!({
        "inArguments": in_arguments,
        "journeyId": "journey-1",
        "activityId": "activity-1",
        "definitionInstanceId": "instance-1",
        "keyValue": "contact-1",
        "jti": ulid_like(),
    })
}

fn ulid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "jti-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn sign(claims: &Value, secret: &[u8]) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

async fn execute(s: &TestServer, token: &str) -> reqwest::Response {
    s.http
        .post(s.url(&format!("{BASE}/execute")))
        .header("content-type", "application/jwt")
        .body(token.to_string())
        .send()
        .await
        .unwrap()
}

/// A page of the tenant's audit (`/api/acme/events?…`), read with an Audit.Read key.
async fn audit_page(s: &TestServer, key: &str, path: &str) -> Value {
    s.http
        .get(s.url(path))
        .header("X-API-KEY", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn scheduled(s: &TestServer, in_arguments: Value) -> Value {
    let response = execute(s, &sign(&claims(in_arguments), SALT)).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn execute_finds_passes_by_every_kind_of_identifier() {
    for s in TestServer::all().await {
        let (a, b, c) = setup(&s).await;
        let by_id = scheduled(
            &s,
            json!([{"passId": c, "additionalData": {"offer": "10%"}, "message": "New offer"}]),
        )
        .await;
        assert_eq!(by_id, json!({"scheduled": 1, "passIds": [c]}));
        eventually("the pass gets the offer", || async {
            passes::get(&s.db.db, "acme", &c)
                .await
                .unwrap()
                .additional_data
                .get("offer")
                == Some(&json!("10%"))
        })
        .await;
        let history = passes::versions(&s.db.db, "acme", &c).await.unwrap();
        assert_eq!(history[0].cause.journey_id.as_deref(), Some("journey-1"));
        assert_eq!(history[0].message.as_deref(), Some("New offer"));

        let mut both = vec![a.clone(), b.clone()];
        both.sort();
        let by_email = scheduled(&s, json!([{"email": " ANN@example.com "}])).await;
        assert_eq!(by_email["passIds"], json!(both));
        let typed = scheduled(
            &s,
            json!([{"email": "ann@example.com", "passType": "coupon"}]),
        )
        .await;
        assert_eq!(typed["passIds"], json!([b]));
        let by_custom = scheduled(&s, json!([{"customId": "C-1"}])).await;
        assert_eq!(by_custom["passIds"], json!([a]));
        let by_json = scheduled(&s, json!([{"identifiers": "{\"loyaltyId\": \"L-C-3\"}"}, {"additionalData": "{\"tier\": \"gold\"}"}])).await;
        assert_eq!(by_json["passIds"], json!([c]));
        let by_key = scheduled(
            &s,
            json!([{"identifiers.loyaltyId": "L-C-2", "additionalData.tier": "silver"}]),
        )
        .await;
        assert_eq!(by_key["passIds"], json!([b]));
        eventually("the tiers are applied", || async {
            passes::get(&s.db.db, "acme", &c)
                .await
                .unwrap()
                .additional_data
                .get("tier")
                == Some(&json!("gold"))
                && passes::get(&s.db.db, "acme", &b)
                    .await
                    .unwrap()
                    .additional_data
                    .get("tier")
                    == Some(&json!("silver"))
        })
        .await;

        let none = execute(
            &s,
            &sign(&claims(json!([{"email": "nobody@example.com"}])), SALT),
        )
        .await;
        assert_eq!(problem(none, 404).await["code"], "NO_MATCHING_PASS");
        let wrong_type = execute(
            &s,
            &sign(&claims(json!([{"passId": a, "passType": "coupon"}])), SALT),
        )
        .await;
        problem(wrong_type, 404).await;
        let audit = s.key("acme", &[Scope::AuditRead]).await;
        let page = audit_page(&s, &audit, "/api/acme/events?source=sfmc&status=rejected").await;
        assert_eq!(page["items"][0]["reason"], "NO_MATCHING_PASS");
        assert_eq!(page["items"][0]["journeyId"], "journey-1");
        assert_eq!(page["items"][0]["activityId"], "activity-1");
        s.stop().await;
    }
}

#[tokio::test]
async fn the_same_token_is_answered_alike_and_applied_once() {
    for s in TestServer::all().await {
        let (a, _, _) = setup(&s).await;
        let mut token_claims =
            claims(json!([{"passId": a, "additionalData": {"visits": 1}, "message": "Hi"}]));
        token_claims.as_object_mut().unwrap().remove("jti");
        let token = sign(&token_claims, SALT);
        let first: Value = execute(&s, &token).await.json().await.unwrap();
        let second: Value = execute(&s, &token).await.json().await.unwrap();
        assert_eq!(first, second);
        eventually("the update is applied", || async {
            passes::get(&s.db.db, "acme", &a).await.unwrap().version == 2
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(
            passes::versions(&s.db.db, "acme", &a).await.unwrap().len(),
            1
        );
        let (events,): (i64,) = domain::sqlx::query_as(
            "SELECT COUNT(*) FROM inbound_events WHERE kind = 'pushupdate.execute'",
        )
        .fetch_one(s.db.db.reader())
        .await
        .unwrap();
        assert_eq!(events, 1);
        s.stop().await;
    }
}

fn unsigned(alg: &str, claims: &Value) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.",
        b64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)),
        b64.encode(claims.to_string())
    )
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    for s in TestServer::all().await {
        let (a, _, _) = setup(&s).await;
        let body = claims(json!([{"passId": a}]));
        let good = sign(&body, SALT);
        let mut expired = body.clone();
        expired["exp"] = json!(1_600_000_000);
        let rs256 = format!("{}sig", unsigned("RS256", &body));
        let attacks = [
            ("alg none", unsigned("none", &body), "WRONG_ALGORITHM"),
            ("RS256", rs256, "WRONG_ALGORITHM"),
            ("wrong key", sign(&body, b"not the salt"), "BAD_SIGNATURE"),
            (
                "other tenant's key",
                sign(&body, b"other-tenant-secret"),
                "BAD_SIGNATURE",
            ),
            ("expired", sign(&expired, SALT), "TOKEN_EXPIRED"),
            (
                "truncated",
                good[..good.len() - 5].to_string(),
                "BAD_SIGNATURE",
            ),
            ("garbage", "not-a-token".to_string(), "MALFORMED_TOKEN"),
        ];
        for (name, token, code) in &attacks {
            let body = problem(execute(&s, token).await, 401).await;
            assert_eq!(body["code"], *code, "{name}");
        }
        assert_eq!(passes::get(&s.db.db, "acme", &a).await.unwrap().version, 1);
        let audit = s.key("acme", &[Scope::AuditRead]).await;
        let page = audit_page(&s, &audit, "/api/acme/events?source=sfmc&status=rejected").await;
        assert_eq!(page["items"].as_array().unwrap().len(), attacks.len());
        s.stop().await;
    }
}

#[tokio::test]
async fn rotated_keys_verify_side_by_side() {
    for s in TestServer::all().await {
        let (a, _, _) = setup(&s).await;
        let input = SfmcSettingsInput {
            signing_keys: vec![
                SigningKeyInput {
                    id: "current".into(),
                    secret: None,
                },
                SigningKeyInput {
                    id: "next".into(),
                    secret: Some("next-signing-secret".into()),
                },
            ],
            customer_key: None,
            when_no_pass: None,
        };
        settings::put(s.core().vault(), "acme", input, "test")
            .await
            .unwrap();
        for secret in [SALT, b"next-signing-secret".as_slice()] {
            let response = execute(&s, &sign(&claims(json!([{"passId": a}])), secret)).await;
            assert_eq!(response.status(), 200);
        }
        let view = settings::view(&s.db.db, "acme").await.unwrap();
        assert!(view
            .signing_keys
            .iter()
            .all(|k| k.last_verified_at.is_some()));
        assert!(view
            .signing_keys
            .iter()
            .all(|k| !k.secret.contains("secret")));
        s.stop().await;
    }
}

#[tokio::test]
async fn lifecycle_calls_are_acknowledged_and_audited() {
    for s in TestServer::all().await {
        setup(&s).await;
        for op in ["publish", "validate", "save", "stop"] {
            let response = s
                .http
                .post(s.url(&format!("{BASE}/{op}")))
                .body(sign(&claims(json!([])), SALT))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{op}");
            assert_eq!(response.json::<Value>().await.unwrap(), json!({}));
        }
        let unsigned_publish = s
            .http
            .post(s.url(&format!("{BASE}/publish")))
            .body(sign(&claims(json!([])), b"wrong"))
            .send()
            .await
            .unwrap();
        problem(unsigned_publish, 401).await;
        let audit = s.key("acme", &[Scope::AuditRead]).await;
        let page = audit_page(&s, &audit, "/api/acme/events?source=sfmc&status=processed").await;
        let kinds: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "pushupdate.stop",
                "pushupdate.save",
                "pushupdate.validate",
                "pushupdate.publish"
            ]
        );
        assert!(page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["journeyId"] == "journey-1" && e["activityId"] == "activity-1"));
        s.stop().await;
    }
}

#[tokio::test]
async fn the_activity_is_described_for_journey_builder() {
    for s in TestServer::all().await {
        setup(&s).await;
        let config: Value = s
            .http
            .get(s.url(&format!("{BASE}/config.json")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let base = s.url(BASE);
        assert_eq!(
            config["arguments"]["execute"]["url"],
            format!("{base}/execute")
        );
        assert_eq!(config["arguments"]["execute"]["useJwt"], true);
        assert_eq!(
            config["arguments"]["execute"]["customerKey"],
            "passhook-activity"
        );
        for op in ["publish", "validate", "save", "stop"] {
            assert_eq!(
                config["configurationArguments"][op]["url"],
                format!("{base}/{op}")
            );
            assert_eq!(config["configurationArguments"][op]["useJwt"], true);
        }
        let page = s.http.get(s.url(&format!("{BASE}/"))).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        assert!(html.contains("postmonger.js") && html.contains("Find the contact's passes by"));
        let script = s.get_text(&format!("{BASE}/postmonger.js")).await;
        assert!(script.contains("Postmonger"));
        problem(
            s.http
                .get(s.url("/api/nobody/webhooks/listeners/sfmc/actions/pushupdate/config.json"))
                .send()
                .await
                .unwrap(),
            404,
        )
        .await;
        s.stop().await;
    }
}

/// A signing key shorter than 16 bytes once decoded (`0x` is an empty HMAC key, with
/// which anyone can sign) is refused with a field error that says why, over the API
/// and in the console.
#[tokio::test]
async fn short_signing_keys_are_refused() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let key = s.key("acme", &[Scope::IntegrationsWrite]).await;
        for short in [
            "0x",
            "0x41",
            "0x000102030405060708090a0b0c0d0e",
            "fifteen-bytes!!",
        ] {
            let response = s
                .http
                .put(s.url("/api/acme/integrations/sfmc"))
                .header("X-API-KEY", &key)
                .json(&json!({"signingKeys": [{"id": "k1", "secret": short}]}))
                .send()
                .await
                .unwrap();
            let body = problem(response, 400).await;
            assert_eq!(
                body["errors"][0]["field"], "signingKeys[0].secret",
                "{short}"
            );
            assert!(
                body["errors"][0]["message"]
                    .as_str()
                    .unwrap()
                    .contains("at least 16 bytes"),
                "{short}: {body}"
            );
        }
        let cookie = s.admin_session("acme").await;
        let response = s
            .http
            .post(s.url("/console/fn/add_signing_key"))
            .header("cookie", &cookie)
            .form(&[("id", "k1"), ("secret", "0x")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let saved: Value = response.json().await.unwrap();
        assert_eq!(saved["Invalid"][0]["field"], "secret", "{saved}");
        assert!(
            saved["Invalid"][0]["message"]
                .as_str()
                .unwrap()
                .contains("at least 16 bytes"),
            "{saved}"
        );
        assert!(settings::signing_keys(s.core().vault(), "acme")
            .await
            .unwrap()
            .is_empty());
        // Sixteen bytes are enough.
        let response = s
            .http
            .put(s.url("/api/acme/integrations/sfmc"))
            .header("X-API-KEY", &key)
            .json(&json!({"signingKeys": [{"id": "k1", "secret": "0x000102030405060708090a0b0c0d0e0f"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        s.stop().await;
    }
}

/// A short key stored before the minimum was enforced verifies nothing: a token
/// signed with an empty key is refused at execute.
#[tokio::test]
async fn short_keys_already_stored_verify_nothing() {
    for s in TestServer::all().await {
        let (a, _, _) = setup(&s).await;
        for (id, salt) in [("legacy-empty", "0x"), ("legacy-one-byte", "0x41")] {
            domain::sqlx::query(
                "INSERT INTO sfmc_keys (tenant_id, key_id, secret, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind("acme")
            .bind(id)
            .bind(s.key.encrypt(salt, &format!("acme/sfmc.signingKey/{id}")))
            .bind(1_i64)
            .execute(s.db.db.writer())
            .await
            .unwrap();
        }
        assert_eq!(
            settings::signing_keys(s.core().vault(), "acme")
                .await
                .unwrap()
                .len(),
            3
        );
        for secret in [b"".as_slice(), b"A"] {
            let forged = sign(&claims(json!([{"passId": a}])), secret);
            let body = problem(execute(&s, &forged).await, 401).await;
            assert_eq!(body["code"], "BAD_SIGNATURE");
        }
        assert_eq!(passes::get(&s.db.db, "acme", &a).await.unwrap().version, 1);
        // The tenant's real key still works.
        let response = execute(&s, &sign(&claims(json!([{"passId": a}])), SALT)).await;
        assert_eq!(response.status(), 200);
        s.stop().await;
    }
}

/// What Journey Builder sends to a lifecycle endpoint when it skips the JWT.
fn plain_lifecycle(version: &str, journey: &str, number: u32) -> Value {
    json!({
        "activityObjectID": "activity-1",
        "interactionId": version,
        "originalDefinitionId": journey,
        "interactionKey": "passhook-journey",
        "interactionVersion": number.to_string(),
    })
}

async fn lifecycle_call(s: &TestServer, tenant: &str, op: &str, body: &Value) -> reqwest::Response {
    s.http
        .post(s.url(&format!(
            "/api/{tenant}/webhooks/listeners/sfmc/actions/pushupdate/{op}"
        )))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn execute_version(s: &TestServer, version: &str) -> reqwest::Response {
    let mut claims = claims(json!([{"email": "ann@example.com", "passType": "loyalty"}]));
    claims["journeyId"] = json!(version);
    claims["mode"] = json!(0);
    claims["activityInstanceId"] = json!("activity-instance-1");
    execute(s, &sign(&claims, SALT)).await
}

#[tokio::test]
async fn a_journey_is_activated_and_run_as_journey_builder_does() {
    for s in TestServer::all().await {
        setup(&s).await;
        // Version 1: saved, validated and published with plain JSON, then run.
        for op in ["save", "validate", "publish"] {
            let answer =
                lifecycle_call(&s, "acme", op, &plain_lifecycle("ver-1", "journey-A", 1)).await;
            assert_eq!(answer.status(), 200, "{op}");
            assert_eq!(answer.json::<Value>().await.unwrap(), json!({}));
        }
        assert_eq!(execute_version(&s, "ver-1").await.status(), 200);
        assert_eq!(execute_version(&s, "ver-1").await.status(), 200);
        // Version 2 of the same journey; then version 1 is stopped.
        let answer = lifecycle_call(
            &s,
            "acme",
            "publish",
            &plain_lifecycle("ver-2", "journey-A", 2),
        )
        .await;
        assert_eq!(answer.status(), 200);
        assert_eq!(execute_version(&s, "ver-2").await.status(), 200);
        let answer = lifecycle_call(
            &s,
            "acme",
            "stop",
            &plain_lifecycle("ver-1", "journey-A", 1),
        )
        .await;
        assert_eq!(answer.status(), 200);
        // A version no lifecycle call named still shows, as a journey of its own.
        assert_eq!(execute_version(&s, "ver-unseen").await.status(), 200);

        let journeys = domain::journeys::list(&s.db.db, "acme", 0).await.unwrap();
        let ids: Vec<&str> = journeys.iter().map(|j| j.journey_id.as_str()).collect();
        assert_eq!(ids, ["ver-unseen", "journey-A"], "{journeys:#?}");
        let journey = &journeys[1];
        assert_eq!(journey.executions, 3);
        assert_eq!(journey.matched, 3);
        let versions: Vec<(&str, i64, i64, Option<&str>)> = journey
            .versions
            .iter()
            .map(|v| {
                (
                    v.version_id.as_str(),
                    v.executions,
                    v.lifecycle_calls,
                    v.last_call.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            versions,
            [
                ("ver-1", 2, 4, Some("stop")),
                ("ver-2", 1, 1, Some("publish"))
            ]
        );
        let contacts = domain::journeys::contacts(&s.db.db, "acme", "journey-A", 0)
            .await
            .unwrap();
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].executions, 3);

        // The unsigned calls are in the audit as such, with the journey they name;
        // executes keep their mode and activity instance.
        let audit = s.key("acme", &[Scope::AuditRead]).await;
        let page = audit_page(
            &s,
            &audit,
            "/api/acme/events?source=sfmc&status=processed&reason=UNSIGNED",
        )
        .await;
        let unsigned = page["items"].as_array().unwrap();
        assert_eq!(unsigned.len(), 5, "{page:#}");
        assert!(unsigned.iter().all(|e| e["definitionId"] == "journey-A"));
        assert_eq!(unsigned[0]["kind"], "pushupdate.stop");
        assert_eq!(unsigned[0]["journeyId"], "ver-1");
        let page = audit_page(
            &s,
            &audit,
            "/api/acme/events?source=sfmc&kind=pushupdate.execute",
        )
        .await;
        let execution = &page["items"][0];
        assert_eq!(execution["mode"], "0", "{execution:#}");
        assert_eq!(execution["activityInstanceId"], "activity-instance-1");
        s.stop().await;
    }
}

#[tokio::test]
async fn plain_lifecycle_calls_change_nothing_and_are_bounded() {
    for s in TestServer::all().await {
        setup(&s).await;
        // execute stays JWT-only.
        let answer = s
            .http
            .post(s.url(&format!("{BASE}/execute")))
            .json(&json!({"inArguments": [{"email": "ann@example.com"}], "journeyId": "ver-1"}))
            .send()
            .await
            .unwrap();
        problem(answer, 401).await;
        // A JWT with a bad signature is still refused; so is a body that is neither.
        let answer = s
            .http
            .post(s.url(&format!("{BASE}/publish")))
            .body(sign(&claims(json!([])), b"wrong"))
            .send()
            .await
            .unwrap();
        problem(answer, 401).await;
        let answer = s
            .http
            .post(s.url(&format!("{BASE}/publish")))
            .body("{not json")
            .send()
            .await
            .unwrap();
        problem(answer, 400).await;
        let answer = lifecycle_call(&s, "nobody", "publish", &plain_lifecycle("v", "j", 1)).await;
        problem(answer, 404).await;
        // A tenant takes a bounded number of them per minute.
        let mut statuses = Vec::new();
        for n in 0..sfmc_unsigned_per_minute() + 1 {
            let call = plain_lifecycle(&format!("v{n}"), "j", 1);
            statuses.push(
                lifecycle_call(&s, "other", "validate", &call)
                    .await
                    .status()
                    .as_u16(),
            );
        }
        assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == 200));
        assert_eq!(statuses.last(), Some(&429));
        s.stop().await;
    }
}

fn sfmc_unsigned_per_minute() -> u32 {
    server::listeners::sfmc::UNSIGNED_CALLS_PER_MINUTE
}

#[tokio::test]
async fn the_activity_page_is_where_journey_builder_looks() {
    for s in TestServer::all().await {
        setup(&s).await;
        let page = s
            .http
            .get(s.url(&format!("{BASE}/index.html")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("postmonger.js"));
        let bare = s.http.get(s.url(BASE)).send().await.unwrap();
        assert_eq!(bare.status(), 308);
        assert_eq!(bare.headers()["location"], "pushupdate/");
        // Static files asked for and missing are 404s, not listener rejections.
        // (405: the path is one the lifecycle calls POST to.)
        let missing = s
            .http
            .get(s.url(&format!("{BASE}/icon.png")))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 405);
        let missing = s
            .http
            .get(
                s.url(&format!("{BASE}/index.html"))
                    .replace("/acme/", "/nobody/"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let rejected: i64 = domain::sqlx::query_scalar(
            "SELECT COUNT(*) FROM inbound_events WHERE status = 'rejected'",
        )
        .fetch_one(s.db.db.reader())
        .await
        .unwrap();
        assert_eq!(rejected, 0);
        s.stop().await;
    }
}

#[tokio::test]
async fn an_execute_that_names_no_pass_is_a_setup_mistake() {
    for s in TestServer::all().await {
        setup(&s).await;
        let answer = execute(&s, &sign(&claims(json!([{"passType": "loyalty"}])), SALT)).await;
        let body = problem(answer, 400).await;
        assert_eq!(body["code"], "VALIDATION_FAILED");
        assert_eq!(body["errors"][0]["field"], "passId", "{body:#}");
        s.stop().await;
    }
}

#[tokio::test]
async fn a_tenant_chooses_how_contacts_without_a_pass_are_answered() {
    for s in TestServer::all().await {
        setup(&s).await;
        let nobody = json!([{"email": "nobody@example.com"}]);
        // The default, as the reference: 404, the contact leaves the journey.
        let answer = execute(&s, &sign(&claims(nobody.clone()), SALT)).await;
        assert_eq!(problem(answer, 404).await["code"], "NO_MATCHING_PASS");

        let view = settings::view(&s.db.db, "acme").await.unwrap();
        assert_eq!(view.when_no_pass, settings::WhenNoPass::Leave);
        let input = SfmcSettingsInput {
            signing_keys: vec![SigningKeyInput {
                id: "current".into(),
                secret: None,
            }],
            customer_key: view.customer_key,
            when_no_pass: Some(settings::WhenNoPass::Continue),
        };
        settings::put(s.core().vault(), "acme", input, "test")
            .await
            .unwrap();
        let answer = execute(&s, &sign(&claims(nobody), SALT)).await;
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer.json::<Value>().await.unwrap(),
            json!({"scheduled": 0, "passIds": []})
        );

        // The audit and the journey show the outcome either way.
        let audit = s.key("acme", &[Scope::AuditRead]).await;
        let page = audit_page(
            &s,
            &audit,
            "/api/acme/events?source=sfmc&reason=NO_MATCHING_PASS",
        )
        .await;
        let statuses: Vec<&str> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["processed", "rejected"]);
        let journeys = domain::journeys::list(&s.db.db, "acme", 0).await.unwrap();
        assert_eq!(journeys[0].unmatched, 2, "{journeys:#?}");
        assert_eq!(journeys[0].matched, 0);
        s.stop().await;
    }
}
