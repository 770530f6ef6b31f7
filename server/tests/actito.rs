//! Actito listeners against the real server and a loopback fake Actito.

mod support;

use domain::actito::settings::{self, ActitoSettingsInput};
use domain::api_keys::Scope;
use domain::outbound::{Outbound, PrivateHosts};
use domain::passes::{self, Identifiers, NewPass};
use domain::DomainError;
use serde_json::{json, Value};
use support::fakes::{eventually, FakeActito, ACTITO_API_KEY};
use support::{actito_sample, allow_loopback, problem, TestServer};

const LISTENER: &str = "/api/acme/webhooks/listeners/actito/custom-actions/updatePass";

/// The sample with its callbacks pointed at the fake Actito.
fn with_callbacks(mut envelope: Value, actito: &FakeActito) -> Value {
    let items = match &mut envelope["data"] {
        Value::Array(items) => items.iter_mut().collect::<Vec<_>>(),
        item => vec![item],
    };
    for item in items {
        for link in ["notifyOK", "notifyKO"] {
            let href = item["_links"][link]["href"].as_str().unwrap().to_string();
            let code = href.rsplit('/').next().unwrap().to_string();
            item["_links"][link]["href"] = json!(format!("{}/ca/{code}", actito.url));
        }
    }
    envelope
}

async fn configure(
    s: &TestServer,
    actito: &FakeActito,
    callback_hosts: Vec<String>,
    data_mapping: Value,
) {
    let input = ActitoSettingsInput {
        api_base_url: Some(actito.url.clone()),
        entity: "MyEntity".into(),
        api_key: Some(ACTITO_API_KEY.into()),
        profile_table_id: "123".into(),
        identifier_mapping: None,
        data_mapping: data_mapping.as_object().cloned(),
        callback_hosts: Some(callback_hosts),
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
}

async fn pass(s: &TestServer, email: &str, custom_id: &str) -> String {
    let mut identifiers = Identifiers::new();
    identifiers.insert("email".into(), email.into());
    identifiers.insert("customId".into(), custom_id.into());
    let new = NewPass {
        pass_type: "loyalty".into(),
        identifiers,
        ..Default::default()
    };
    passes::create(&s.db.db, "acme", new).await.unwrap().id
}

/// POSTs `body` to a listener with the tenant's API key, as Actito does.
async fn push(
    s: &TestServer,
    key: &str,
    url: impl reqwest::IntoUrl,
    body: &Value,
) -> reqwest::Response {
    s.http
        .post(url)
        .header("X-API-KEY", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn events(s: &TestServer, key: &str, query: &str) -> Vec<Value> {
    let page: Value = s
        .http
        .get(s.url(&format!("/api/acme/events?{query}")))
        .header("X-API-KEY", key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn custom_actions_update_passes_and_call_back_one_by_one_and_in_bulk() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(&s, &actito, vec!["127.0.0.1".into()], json!({})).await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let john = pass(&s, "John.Smith@actito.com", "CUST-JOHN").await;
        let jane = pass(
            &s,
            "jane@elsewhere.test",
            "4f5427b0-0134-4f4b-971a-98a9f03d0ff5",
        )
        .await;

        let one = with_callbacks(
            actito_sample("custom-action-trigger-one-by-one.json"),
            &actito,
        );
        let answer = push(&s, &key, s.url(LISTENER), &one).await;
        assert_eq!(answer.status(), 200);
        eventually("the OK callback of the ONE_BY_ONE item", || async {
            actito.callbacks().len() == 1
        })
        .await;
        assert!(actito.callbacks()[0].starts_with("OK_"));
        let updated = passes::get(&s.db.db, "acme", &john).await.unwrap();
        assert_eq!(updated.version, 2, "{:?}", s.backend());
        assert_eq!(updated.additional_data["campaignId"], "987654");
        assert_eq!(updated.additional_data["campaignGroup"], "Notifications");

        // BULK: John by email, Jane by businessId (the second mapping), and a stranger.
        let mut bulk = with_callbacks(actito_sample("custom-action-trigger-bulk.json"), &actito);
        bulk["data"][0]["actionParameters.tier"] = json!("gold");
        bulk["data"][1]["actionParameters.tier"] = json!("silver");
        let mut stranger = bulk["data"][1].clone();
        stranger["profileAttributes.emailAddress"] = json!("nobody@nowhere.test");
        stranger["profileAttributes.businessId"] = json!("unknown");
        stranger["_links"]["notifyKO"]["href"] = json!(format!("{}/ca/KO_stranger", actito.url));
        bulk["data"].as_array_mut().unwrap().push(stranger);
        let answer = push(&s, &key, s.url(LISTENER), &bulk).await;
        assert_eq!(answer.status(), 200);
        eventually("three more callbacks", || async {
            actito.callbacks().len() == 4
        })
        .await;
        let mut codes = actito.callbacks();
        codes.sort();
        assert_eq!(codes.iter().filter(|c| c.starts_with("OK_")).count(), 3);
        assert!(codes.contains(&"KO_stranger".to_string()));
        assert_eq!(
            passes::get(&s.db.db, "acme", &john)
                .await
                .unwrap()
                .additional_data["tier"],
            "gold"
        );
        assert_eq!(
            passes::get(&s.db.db, "acme", &jane)
                .await
                .unwrap()
                .additional_data["tier"],
            "silver"
        );

        let audit_key = s.key("acme", &[Scope::AuditRead]).await;
        eventually("both events processed", || async {
            events(&s, &audit_key, "source=actito&status=processed")
                .await
                .len()
                == 2
        })
        .await;
        // Callbacks are deliveries of their own, sent after the event is processed.
        eventually("the four callbacks are delivered", || async {
            let deliveries: Value = s
                .http
                .get(s.url("/api/acme/deliveries"))
                .header("X-API-KEY", &audit_key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let statuses: Vec<String> = deliveries["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["status"].as_str().unwrap().to_string())
                .collect();
            statuses == ["delivered"; 4]
        })
        .await;
        s.stop().await;
    }
}

/// A BULK as large as Actito sends them: 10 000 items shaped like the seed's sample
/// (about 7.8 MB, past the 5 MiB default limit) is accepted, every item is applied in
/// order, and each profile gets its notifyOK.
#[tokio::test]
async fn a_ten_thousand_item_seed_shaped_bulk_is_accepted_and_applied() {
    const ITEMS: usize = 10_000;
    const PASSES: usize = 100;
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(&s, &actito, vec!["127.0.0.1".into()], json!({})).await;
        let key = s
            .key("acme", &[Scope::ActitoListenerWrite, Scope::AuditRead])
            .await;
        let mut ids = Vec::new();
        for n in 0..PASSES {
            ids.push(pass(&s, &format!("p{n}@bulk.test"), &format!("C{n}")).await);
        }
        let shape = with_callbacks(actito_sample("custom-action-trigger-bulk.json"), &actito)
            ["data"][0]
            .clone();
        let items: Vec<Value> = (0..ITEMS)
            .map(|n| {
                let mut item = shape.clone();
                item["actionParameters.campaignId"] = json!(n.to_string());
                item["profileAttributes.emailAddress"] =
                    json!(format!("p{}@bulk.test", n % PASSES));
                for link in ["notifyOK", "notifyKO"] {
                    let href = item["_links"][link]["href"].as_str().unwrap().to_string();
                    item["_links"][link]["href"] = json!(format!("{href}_{n}"));
                }
                item
            })
            .collect();
        let body = serde_json::to_vec(&json!({"id": "bulk-10k", "data": items})).unwrap();
        assert!(body.len() > 7_000_000, "{} bytes", body.len());

        let answer = s
            .http
            .post(s.url(LISTENER))
            .header("X-API-KEY", &key)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["items"], ITEMS, "{answer}");

        // Generous: 10 000 updates and callbacks on a debug build, on a loaded machine.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        while actito.callbacks().len() < ITEMS {
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {ITEMS} callbacks after 300 s",
                actito.callbacks().len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let callbacks = actito.callbacks();
        assert!(callbacks.iter().all(|c| c.starts_with("OK_")));
        let distinct: std::collections::HashSet<_> = callbacks.iter().collect();
        assert_eq!(distinct.len(), ITEMS, "one notifyOK per item");
        // Each pass holds its last item's value: the items applied in order.
        for (n, id) in ids.iter().enumerate() {
            let pass = passes::get(&s.db.db, "acme", id).await.unwrap();
            let last = ITEMS - PASSES + n;
            assert_eq!(
                pass.additional_data["campaignId"],
                json!(last.to_string()),
                "pass {n}"
            );
        }
        let processed = events(&s, &key, "source=actito&status=processed").await;
        assert_eq!(processed.len(), 1, "{processed:?}");
        assert_eq!(processed[0]["items"], ITEMS);
        s.stop().await;
    }
}

#[tokio::test]
async fn the_same_envelope_twice_is_applied_once() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(&s, &actito, vec!["127.0.0.1".into()], json!({})).await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let john = pass(&s, "john.smith@actito.com", "C1").await;
        let mut envelope = with_callbacks(
            actito_sample("custom-action-trigger-one-by-one.json"),
            &actito,
        );
        envelope["data"]["actionParameters.message"] = json!("You earned points");
        let first: Value = push(&s, &key, s.url(LISTENER), &envelope)
            .await
            .json()
            .await
            .unwrap();
        let second: Value = push(&s, &key, s.url(LISTENER), &envelope)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(first["eventId"], second["eventId"]);
        assert_eq!(second["duplicate"], true);
        eventually("the callback", || async { actito.callbacks().len() == 1 }).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(
            actito.callbacks().len(),
            1,
            "the duplicate is not processed"
        );
        let history = passes::versions(&s.db.db, "acme", &john).await.unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].message.as_deref(), Some("You earned points"));
        assert!(history[0].significant);
        assert!(!passes::get(&s.db.db, "acme", &john)
            .await
            .unwrap()
            .additional_data
            .contains_key("message"));
        s.stop().await;
    }
}

#[tokio::test]
async fn callbacks_only_go_to_allowed_hosts() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        // The contract's default hosts: *.actito.com and *.actito.be, not our fake.
        configure(
            &s,
            &actito,
            vec!["*.actito.com".into(), "*.actito.be".into()],
            json!({}),
        )
        .await;
        let key = s
            .key("acme", &[Scope::ActitoListenerWrite, Scope::AuditRead])
            .await;
        pass(&s, "john.smith@actito.com", "C1").await;
        let envelope = with_callbacks(
            actito_sample("custom-action-trigger-one-by-one.json"),
            &actito,
        );
        push(&s, &key, s.url(LISTENER), &envelope).await;
        let url = s.url("/api/acme/deliveries?channel=actito-callback");
        eventually("the delivery is recorded as failed", || async {
            let page: Value = s
                .http
                .get(&url)
                .header("X-API-KEY", &key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["items"][0]["status"] == "failed"
        })
        .await;
        let page: Value = s
            .http
            .get(&url)
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(page["items"][0]["lastError"]
            .as_str()
            .unwrap()
            .contains("not in the tenant's callback hosts"));
        assert!(
            actito.callbacks().is_empty(),
            "a disallowed host is never called"
        );
        s.stop().await;
    }
}

#[tokio::test]
async fn failing_callbacks_are_retried_until_they_succeed() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(&s, &actito, vec!["127.0.0.1".into()], json!({})).await;
        let key = s
            .key("acme", &[Scope::ActitoListenerWrite, Scope::AuditRead])
            .await;
        pass(&s, "john.smith@actito.com", "C1").await;
        actito
            .state
            .callback_status
            .store(503, std::sync::atomic::Ordering::SeqCst);
        let envelope = with_callbacks(
            actito_sample("custom-action-trigger-one-by-one.json"),
            &actito,
        );
        push(&s, &key, s.url(LISTENER), &envelope).await;
        eventually("a first failed attempt", || async {
            !actito.callbacks().is_empty()
        })
        .await;
        actito
            .state
            .callback_status
            .store(200, std::sync::atomic::Ordering::SeqCst);
        // The first retry waits about two seconds (backoff with jitter).
        let url = s.url("/api/acme/deliveries");
        eventually("the retry delivers", || async {
            let page: Value = s
                .http
                .get(&url)
                .header("X-API-KEY", &key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["items"][0]["status"] == "delivered"
        })
        .await;
        let page: Value = s
            .http
            .get(&url)
            .header("X-API-KEY", &key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let attempts = page["items"][0]["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0]["statusCode"], 503);
        assert_eq!(attempts[1]["statusCode"], 200);
        s.stop().await;
    }
}

#[tokio::test]
async fn profile_events_fetch_the_profile_and_update_mapped_passes() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(
            &s,
            &actito,
            vec!["127.0.0.1".into()],
            json!({"loyaltyTier": "tier", "points": "points"}),
        )
        .await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let john = pass(&s, "john.smith@actito.com", "C1").await;
        actito.set_profile("123456", json!({"emailAddress": "john.smith@actito.com", "loyaltyTier": "gold", "points": 120, "firstName": "John"}));
        let path = s.url("/api/acme/webhooks/listeners/actito/profile/CREATE");
        let answer = push(
            &s,
            &key,
            &path,
            &actito_sample("profile-create-one-by-one.json"),
        )
        .await;
        assert_eq!(answer.status(), 200);
        eventually("the pass gets the mapped data", || async {
            passes::get(&s.db.db, "acme", &john).await.unwrap().version == 2
        })
        .await;
        let updated = passes::get(&s.db.db, "acme", &john).await.unwrap();
        assert_eq!(updated.additional_data["tier"], "gold");
        assert_eq!(updated.additional_data["points"], 120);
        assert!(
            !updated.additional_data.contains_key("firstName"),
            "unmapped attributes stay off the pass"
        );
        let customer = domain::customers::get(&s.db.db, "acme", "123456")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(customer["firstName"], "John");

        // An UPDATE that changes only an unmapped attribute updates no pass.
        actito.set_profile("123456", json!({"emailAddress": "john.smith@actito.com", "loyaltyTier": "gold", "points": 120, "firstName": "Johnny"}));
        let mut update = actito_sample("profile-create-one-by-one.json");
        update["operation"] = json!("UPDATE");
        update["id"] = json!("987");
        let path = s.url("/api/acme/webhooks/listeners/actito/profile/UPDATE");
        assert_eq!(push(&s, &key, &path, &update).await.status(), 200);
        eventually("the customer is updated", || async {
            domain::customers::get(&s.db.db, "acme", "123456")
                .await
                .unwrap()
                .unwrap()["firstName"]
                == "Johnny"
        })
        .await;
        assert_eq!(
            passes::get(&s.db.db, "acme", &john).await.unwrap().version,
            2
        );

        // A mapped change updates the pass; the token was fetched once and cached.
        actito.set_profile("123456", json!({"emailAddress": "john.smith@actito.com", "loyaltyTier": "platinum", "points": 120}));
        update["id"] = json!("988");
        assert_eq!(push(&s, &key, &path, &update).await.status(), 200);
        eventually("the new tier reaches the pass", || async {
            passes::get(&s.db.db, "acme", &john)
                .await
                .unwrap()
                .additional_data["tier"]
                == "platinum"
        })
        .await;
        assert_eq!(
            actito.tokens(),
            1,
            "the token is cached between profile reads"
        );
        s.stop().await;
    }
}

/// A tenant's Actito host chooses the token's lifetime: one that would overflow the
/// clock must not panic the job (which then stayed running, its tenant's profile
/// events stuck behind it).
#[tokio::test]
async fn a_token_lifetime_past_the_clock_is_held_to_a_day() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        *actito.state.expires_in.lock().unwrap() = Some(json!(u64::MAX));
        s.tenant("acme").await;
        configure(&s, &actito, vec![], json!({"loyaltyTier": "tier"})).await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let john = pass(&s, "john.smith@actito.com", "C1").await;
        actito.set_profile(
            "123456",
            json!({"emailAddress": "john.smith@actito.com", "loyaltyTier": "gold"}),
        );
        let answer = push(
            &s,
            &key,
            s.url("/api/acme/webhooks/listeners/actito/profile/CREATE"),
            &actito_sample("profile-create-one-by-one.json"),
        )
        .await;
        assert_eq!(answer.status(), 200);
        eventually("the pass gets the mapped data", || async {
            passes::get(&s.db.db, "acme", &john).await.unwrap().version == 2
        })
        .await;
        s.stop().await;
    }
}

#[tokio::test]
/// A busy Actito (429) is asked again no sooner than its `Retry-After` says, which is
/// longer here than the queue's first backoff (2 s ± 20 %).
async fn profile_reads_wait_as_long_as_actitos_retry_after_asks() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(
            &s,
            &actito,
            vec!["127.0.0.1".into()],
            json!({"loyaltyTier": "tier"}),
        )
        .await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let john = pass(&s, "john.smith@actito.com", "C1").await;
        actito.set_profile(
            "123456",
            json!({"emailAddress": "john.smith@actito.com", "loyaltyTier": "gold"}),
        );
        actito
            .state
            .profile_failures
            .lock()
            .unwrap()
            .push((429, Some("3")));
        let path = s.url("/api/acme/webhooks/listeners/actito/profile/CREATE");
        push(
            &s,
            &key,
            &path,
            &actito_sample("profile-create-one-by-one.json"),
        )
        .await;
        eventually(
            "the retry after Retry-After applies the profile",
            || async {
                passes::get(&s.db.db, "acme", &john)
                    .await
                    .unwrap()
                    .additional_data
                    .get("tier")
                    == Some(&json!("gold"))
            },
        )
        .await;
        assert_eq!(
            actito
                .state
                .profile_calls
                .load(std::sync::atomic::Ordering::SeqCst),
            2
        );
        let reads: Vec<std::time::Instant> = actito
            .requests()
            .iter()
            .filter(|r| r.path.contains("/profile/"))
            .map(|r| r.at)
            .collect();
        let waited = reads[1].duration_since(reads[0]);
        assert!(
            waited >= std::time::Duration::from_secs(3),
            "asked again after {waited:?}"
        );
        s.stop().await;
    }
}

/// A profile Actito won't give shows why on the event: the status and a short quote of
/// Actito's answer, with the token we sent, credentials and emails masked.
#[tokio::test]
async fn a_failed_profile_read_shows_what_actito_answered() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(&s, &actito, vec!["127.0.0.1".into()], json!({})).await;
        let key = s
            .key("acme", &[Scope::ActitoListenerWrite, Scope::AuditRead])
            .await;
        *actito.state.error_body.lock().unwrap() = Some(json!({
            "status": 404,
            "message": "No profile 123456 in table 123 (asked by john.smith@actito.com)",
            "echo": "Bearer token-1",
            "sessionToken": "s3cr3t-session",
            "padding": "x".repeat(5_000),
        }));
        let path = s.url("/api/acme/webhooks/listeners/actito/profile/CREATE");
        push(
            &s,
            &key,
            &path,
            &actito_sample("profile-create-one-by-one.json"),
        )
        .await;
        eventually("the profile event fails", || async {
            !events(&s, &key, "status=failed").await.is_empty()
        })
        .await;
        let failed = events(&s, &key, "status=failed").await.remove(0);
        let detail = failed["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with(
                "1 job(s) failed after every attempt: Actito answered 404: not found. It said: "
            ),
            "{failed}"
        );
        assert!(
            detail.contains("No profile 123456 in table 123"),
            "{detail}"
        );
        assert!(detail.contains("(asked by [email])"), "{detail}");
        assert!(detail.contains("Bearer [redacted]"), "{detail}");
        for leak in ["john.smith", "token-1", "s3cr3t-session"] {
            assert!(!detail.contains(leak), "{leak} in {detail}");
        }
        assert!(detail.ends_with('…'), "{detail}");
        s.stop().await;
    }
}

#[tokio::test]
async fn other_actito_pushes_and_bad_requests_are_rejected_and_audited() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        s.tenant("other").await;
        let key = s
            .key("acme", &[Scope::ActitoListenerWrite, Scope::AuditRead])
            .await;
        let foreign = s.key("other", &[Scope::ActitoListenerWrite]).await;
        let reader = s.key("acme", &[Scope::PassesRead]).await;
        let post = |path: &str, key: Option<&str>, body: Value| {
            let mut req = s.http.post(s.url(path)).json(&body);
            if let Some(key) = key {
                req = req.header("X-API-KEY", key);
            }
            req.send()
        };
        let etl = actito_sample("etl-finished-one-by-one.json");
        let body = problem(post(LISTENER, Some(&key), etl.clone()).await.unwrap(), 400).await;
        assert_eq!(body["code"], "UNSUPPORTED_EVENT");
        let body = problem(
            post(
                LISTENER,
                Some(&key),
                actito_sample("export-finished-one-by-one.json"),
            )
            .await
            .unwrap(),
            400,
        )
        .await;
        assert_eq!(body["code"], "UNSUPPORTED_EVENT");
        let profile = "/api/acme/webhooks/listeners/actito/profile/";
        let body = problem(
            post(
                &format!("{profile}DELETE"),
                Some(&key),
                actito_sample("profile-create-one-by-one.json"),
            )
            .await
            .unwrap(),
            400,
        )
        .await;
        assert_eq!(body["code"], "UNSUPPORTED_EVENT");
        let body = problem(
            post(
                &format!("{profile}UPDATE"),
                Some(&key),
                actito_sample("custom-table-update-one-by-one.json"),
            )
            .await
            .unwrap(),
            400,
        )
        .await;
        assert_eq!(body["code"], "UNSUPPORTED_EVENT");
        problem(post(LISTENER, None, etl.clone()).await.unwrap(), 401).await;
        problem(
            post(LISTENER, Some(&foreign), etl.clone()).await.unwrap(),
            403,
        )
        .await;
        problem(
            post(LISTENER, Some(&reader), etl.clone()).await.unwrap(),
            403,
        )
        .await;
        let raw = s
            .http
            .post(s.url(LISTENER))
            .header("X-API-KEY", &key)
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(problem(raw, 400).await["code"], "MALFORMED_BODY");
        let big = s
            .http
            .post(s.url(LISTENER))
            .header("X-API-KEY", &key)
            .body(vec![b' '; 33 * 1024 * 1024])
            .send()
            .await
            .unwrap();
        problem(big, 413).await;

        let rejected = events(&s, &key, "status=rejected").await;
        let reasons: Vec<&str> = rejected
            .iter()
            .map(|e| e["reason"].as_str().unwrap())
            .collect();
        assert_eq!(
            reasons,
            [
                "PAYLOAD_TOO_LARGE",
                "MALFORMED_BODY",
                "FORBIDDEN_SCOPE",
                "FORBIDDEN_TENANT",
                "UNAUTHENTICATED",
                "UNSUPPORTED_EVENT",
                "UNSUPPORTED_EVENT",
                "UNSUPPORTED_EVENT",
                "UNSUPPORTED_EVENT"
            ],
            "{:?}",
            s.backend()
        );
        assert!(rejected.iter().all(|e| e["source"] == "actito"));
        // The unauthenticated request's body is never stored.
        let (stored,): (Option<String>,) = domain::sqlx::query_as(
            "SELECT body FROM inbound_events WHERE reason = 'UNAUTHENTICATED'",
        )
        .fetch_one(s.db.db.reader())
        .await
        .unwrap();
        assert!(stored.is_none());
        s.stop().await;
    }
}

#[tokio::test]
async fn work_survives_a_crash_and_completes_once() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(&s, &actito, vec!["127.0.0.1".into()], json!({})).await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let mut ids = Vec::new();
        let mut items = Vec::new();
        for i in 0..600 {
            ids.push(pass(&s, &format!("p{i}@example.com"), &format!("C{i}")).await);
            items.push(json!({
                "actionParameters.points": i,
                "profileAttributes.emailAddress": format!("p{i}@example.com"),
                "_links": {"notifyOK": {"href": format!("{}/ca/OK_{i}", actito.url)}, "notifyKO": {"href": format!("{}/ca/KO_{i}", actito.url)}}
            }));
        }
        let envelope = json!({"id": "crash-test", "data": items});
        let answer = push(&s, &key, s.url(LISTENER), &envelope).await;
        assert_eq!(answer.status(), 200);
        // Crash once the first batch is applied, while the rest is still to do.
        eventually("the first batch is applied", || async {
            let (n,): (i64,) =
                domain::sqlx::query_as("SELECT COUNT(*) FROM passes WHERE version = 2")
                    .fetch_one(s.db.db.reader())
                    .await
                    .unwrap();
            n > 0
        })
        .await;
        let (db, master_key) = s.crash().await;

        let s = TestServer::start_with(db, master_key, allow_loopback).await;
        eventually("every pass is updated", || async {
            let (n,): (i64,) =
                domain::sqlx::query_as("SELECT COUNT(*) FROM passes WHERE version = 2")
                    .fetch_one(s.db.db.reader())
                    .await
                    .unwrap();
            n == 600
        })
        .await;
        // Callbacks are at least once: a crash may repeat some, so wait for every
        // item's, not for 600 calls.
        eventually("every item is called back", || async {
            let mut codes = actito.callbacks();
            codes.sort();
            codes.dedup();
            codes.len() >= 600
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (over,): (i64,) =
            domain::sqlx::query_as("SELECT COUNT(*) FROM passes WHERE version > 2")
                .fetch_one(s.db.db.reader())
                .await
                .unwrap();
        assert_eq!(over, 0, "no update applied twice");
        let mut codes = actito.callbacks();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), 600, "one callback per item");
        assert_eq!(
            passes::get(&s.db.db, "acme", &ids[599])
                .await
                .unwrap()
                .additional_data["points"],
            599
        );
        s.stop().await;
    }
}

/// Settings that name a loopback fake, as saved while the operator allowed loopback
/// (or before private destinations were refused): the server below runs without
/// `PASSHOOK_ALLOW_PRIVATE_HOSTS`, so whatever the tenant stored, nothing reaches it.
async fn configure_as_earlier(s: &TestServer, actito: &FakeActito, data_mapping: Value) {
    let mut earlier = s.core();
    earlier.set_outbound(Outbound::new(PrivateHosts::parse("127.0.0.1").unwrap()));
    let input = ActitoSettingsInput {
        api_base_url: Some(actito.url.clone()),
        entity: "MyEntity".into(),
        api_key: Some(ACTITO_API_KEY.into()),
        profile_table_id: "123".into(),
        identifier_mapping: None,
        data_mapping: data_mapping.as_object().cloned(),
        callback_hosts: Some(vec!["127.0.0.1".into()]),
    };
    settings::put(
        earlier.vault(),
        earlier.outbound.private_hosts(),
        "acme",
        input,
        "test",
    )
    .await
    .unwrap();
}

/// Issue 17's reproduction: a tenant lists `127.0.0.1` as a callback host and a custom
/// action's callback points at a loopback service. Without the operator's allow-list
/// the callback is refused for good and the service gets nothing.
#[tokio::test]
async fn callbacks_to_loopback_are_refused_without_the_operator() {
    for s in TestServer::all().await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure_as_earlier(&s, &actito, json!({})).await;
        let key = s
            .key("acme", &[Scope::ActitoListenerWrite, Scope::AuditRead])
            .await;
        let john = pass(&s, "John.Smith@actito.com", "CUST-JOHN").await;
        let envelope = with_callbacks(
            actito_sample("custom-action-trigger-one-by-one.json"),
            &actito,
        );
        let answer = push(&s, &key, s.url(LISTENER), &envelope).await;
        assert_eq!(answer.status(), 200);
        let url = s.url("/api/acme/deliveries?channel=actito-callback");
        let delivery = || async {
            let page: Value = s
                .http
                .get(&url)
                .header("X-API-KEY", &key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            page["items"][0].clone()
        };
        eventually("the callback delivery fails", || async {
            delivery().await["status"] == "failed"
        })
        .await;
        let delivery = delivery().await;
        assert!(
            delivery["lastError"]
                .as_str()
                .unwrap()
                .contains("not a public address"),
            "{delivery}"
        );
        // The pass itself is updated: only the call to loopback is refused.
        assert_eq!(
            passes::get(&s.db.db, "acme", &john).await.unwrap().version,
            2
        );
        assert!(actito.callbacks().is_empty(), "{:?}", actito.callbacks());
        assert!(actito.requests().is_empty(), "{:?}", actito.requests());
        s.stop().await;
    }
}

/// The same for Actito's API: a profile event's profile read is refused before any
/// call (no token exchange, no profile read), and saving such settings now is refused.
#[tokio::test]
async fn the_actito_api_on_loopback_is_refused_without_the_operator() {
    for s in TestServer::all().await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure_as_earlier(&s, &actito, json!({"loyaltyTier": "tier"})).await;
        let key = s
            .key("acme", &[Scope::ActitoListenerWrite, Scope::AuditRead])
            .await;
        let john = pass(&s, "john.smith@actito.com", "C1").await;
        actito.set_profile(
            "123456",
            json!({"emailAddress": "john.smith@actito.com", "loyaltyTier": "gold"}),
        );
        let answer = push(
            &s,
            &key,
            s.url("/api/acme/webhooks/listeners/actito/profile/CREATE"),
            &actito_sample("profile-create-one-by-one.json"),
        )
        .await;
        assert_eq!(answer.status(), 200);
        eventually("the profile event fails", || async {
            events(&s, &key, "source=actito")
                .await
                .first()
                .is_some_and(|e| e["status"] == "failed")
        })
        .await;
        assert_eq!(
            passes::get(&s.db.db, "acme", &john).await.unwrap().version,
            1
        );
        assert_eq!(actito.tokens(), 0);
        assert!(actito.requests().is_empty(), "{:?}", actito.requests());

        // Saving it again now is a field error on both hosts.
        let input = ActitoSettingsInput {
            api_base_url: Some(actito.url.clone()),
            entity: "MyEntity".into(),
            api_key: Some(ACTITO_API_KEY.into()),
            profile_table_id: "123".into(),
            identifier_mapping: None,
            data_mapping: None,
            callback_hosts: Some(vec!["127.0.0.1".into()]),
        };
        let core = s.core();
        match settings::put(
            core.vault(),
            core.outbound.private_hosts(),
            "acme",
            input,
            "test",
        )
        .await
        {
            Err(DomainError::Invalid(errors)) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, ["apiBaseUrl", "callbackHosts"], "{errors:?}");
            }
            other => panic!("{other:?}"),
        }
        s.stop().await;
    }
}

/// The seed's ONE_BY_ONE and BULK profile samples, sent as they are, one after the
/// other: they share envelope id 123456789, and both are applied.
#[tokio::test]
async fn the_seed_profile_samples_sent_in_sequence_are_both_applied() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(&s, &actito, vec![], json!({"loyaltyTier": "tier"})).await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let john = pass(&s, "john.smith@actito.com", "C1").await;
        let jane = pass(&s, "jane.smith@actito.com", "C2").await;
        actito.set_profile(
            "123456",
            json!({"emailAddress": "john.smith@actito.com", "loyaltyTier": "gold"}),
        );
        actito.set_profile(
            "123457",
            json!({"emailAddress": "jane.smith@actito.com", "loyaltyTier": "silver"}),
        );
        let path = s.url("/api/acme/webhooks/listeners/actito/profile/CREATE");
        for name in ["profile-create-one-by-one.json", "profile-create-bulk.json"] {
            let answer: Value = push(&s, &key, &path, &actito_sample(name))
                .await
                .json()
                .await
                .unwrap();
            assert_eq!(answer["duplicate"], false, "{name}: {answer}");
        }
        // Each profile's jobs run in order, but john's and jane's independently.
        let db = &s.db.db;
        let tier = move |id: &str| {
            let id = id.to_string();
            async move {
                passes::get(db, "acme", &id)
                    .await
                    .unwrap()
                    .additional_data
                    .get("tier")
                    .cloned()
            }
        };
        eventually("both profiles are read and applied", || async {
            tier(&jane).await == Some(json!("silver")) && tier(&john).await == Some(json!("gold"))
        })
        .await;
        // The same push again is a duplicate.
        let again: Value = push(&s, &key, &path, &actito_sample("profile-create-bulk.json"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(again["duplicate"], true);
        s.stop().await;
    }
}

#[tokio::test]
async fn a_profile_event_names_the_table_it_is_for() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(&s, &actito, vec![], json!({"loyaltyTier": "tier"})).await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let path = s.url("/api/acme/webhooks/listeners/actito/profile/CREATE");
        let mut other_table = actito_sample("profile-create-one-by-one.json");
        other_table["tableId"] = json!("999");
        let answer = push(&s, &key, &path, &other_table).await;
        let body = problem(answer, 400).await;
        assert_eq!(body["errors"][0]["field"], "tableId", "{body:#}");
        assert!(body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("123"));
        assert_eq!(
            actito
                .state
                .profile_calls
                .load(std::sync::atomic::Ordering::SeqCst),
            0
        );

        // The seed's schema lists only eventType and operation: tableType may be absent.
        let mut untyped = actito_sample("profile-create-one-by-one.json");
        untyped.as_object_mut().unwrap().remove("tableType");
        let answer = push(&s, &key, &path, &untyped).await;
        assert_eq!(answer.status(), 200);
        s.stop().await;
    }
}

/// An envelope refused for what an item holds (a parameter that is an object, an
/// item without parameters): every readable item still gets its notifyKO, so its
/// profile doesn't wait in the Actito scenario forever.
#[tokio::test]
async fn refused_envelopes_still_notify_actito_of_each_item() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(&s, &actito, vec!["127.0.0.1".into()], json!({})).await;
        let key = s.key("acme", &[Scope::ActitoListenerWrite]).await;
        let mut bulk = with_callbacks(actito_sample("custom-action-trigger-bulk.json"), &actito);
        bulk["data"][0]["actionParameters.tier"] = json!({"nested": "object"});
        let items = bulk["data"].as_array().unwrap().len();
        let answer = push(&s, &key, s.url(LISTENER), &bulk).await;
        assert_eq!(problem(answer, 400).await["code"], "VALIDATION_FAILED");
        eventually("every item's notifyKO", || async {
            actito.callbacks().len() == items
        })
        .await;
        assert!(
            actito.callbacks().iter().all(|c| c.starts_with("KO_")),
            "{:?}",
            actito.callbacks()
        );

        // An item without parameters: the whole envelope is refused, the items told.
        let mut one = with_callbacks(
            actito_sample("custom-action-trigger-one-by-one.json"),
            &actito,
        );
        let item = one["data"].as_object_mut().unwrap();
        item.retain(|k, _| {
            !k.starts_with("actionParameters.") && !k.starts_with("profileAttributes.")
        });
        let answer = push(&s, &key, s.url(LISTENER), &one).await;
        problem(answer, 400).await;
        eventually("the lone item's notifyKO", || async {
            actito.callbacks().len() == items + 1
        })
        .await;
        s.stop().await;
    }
}

/// A subscription Actito refuses takes back the API key made for it: nothing points
/// at that key, and a live key nobody holds is one more way in. (The fake Actito
/// has no subscription endpoint, so it answers 404 to the creation.)
#[tokio::test]
async fn the_key_made_for_a_subscription_actito_refuses_is_revoked() {
    use domain::actito::subscriptions::{self, Wanted};
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        s.tenant("acme").await;
        configure(&s, &actito, vec!["127.0.0.1".into()], json!({})).await;
        let wanted = Wanted {
            kind: "custom-action",
            fields: "",
            custom_action: "4512",
        };
        let refused =
            subscriptions::subscribe(&s.core(), "acme", "ann@acme.test", &s.url(""), wanted).await;
        assert!(
            matches!(&refused, Err(DomainError::Invalid(e)) if e[0].message.contains("404")),
            "{refused:?}"
        );
        let keys = domain::api_keys::list(&s.db.db, "acme").await.unwrap();
        let made = keys
            .iter()
            .find(|k| k.name == "Actito webhook: custom action 4512")
            .expect("the key was made before Actito was asked");
        assert!(made.revoked_at.is_some(), "{made:?}");
        let posted = actito
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/webhookSubscription"));
        assert!(posted, "Actito was asked");
        s.stop().await;
    }
}
