//! What the console's audit, journey and dashboard views are built from, against the
//! real server: filters, event detail, replay, journey summaries and counts.

mod support;

use domain::actito::settings::{self as actito_settings, ActitoSettingsInput};
use domain::api_keys::Scope;
use domain::deliveries::{self, DeliveryStatus};
use domain::events::{self, EventFilter};
use domain::passes::{self, Identifiers, NewPass};
use domain::sfmc::settings::{self as sfmc_settings, SfmcSettingsInput, SigningKeyInput};
use domain::{audit, journeys, stats, DomainError};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::fakes::{eventually, FakeActito, ACTITO_API_KEY};
use support::{allow_loopback, TestServer};

const ACTITO: &str = "/api/acme/webhooks/listeners/actito/custom-actions/updatePass";
const EXECUTE: &str = "/api/acme/webhooks/listeners/sfmc/actions/pushupdate/execute";
const SALT: &str = "journey-signing-secret";

async fn setup(s: &TestServer, actito: &FakeActito) -> (String, String) {
    s.tenant("acme").await;
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
    actito_settings::put(
        core.vault(),
        core.outbound.private_hosts(),
        "acme",
        input,
        "test",
    )
    .await
    .unwrap();
    let keys = SfmcSettingsInput {
        signing_keys: vec![SigningKeyInput {
            id: "k".into(),
            secret: Some(SALT.into()),
        }],
        customer_key: None,
        when_no_pass: None,
    };
    sfmc_settings::put(core.vault(), "acme", keys, "test")
        .await
        .unwrap();
    let mut identifiers = Identifiers::new();
    identifiers.insert("email".into(), "ann@example.com".into());
    let new = NewPass {
        pass_type: "loyalty".into(),
        identifiers,
        ..Default::default()
    };
    let pass = passes::create(&s.db.db, "acme", new).await.unwrap().id;
    (pass, s.key("acme", &[Scope::ActitoListenerWrite]).await)
}

fn envelope(actito: &FakeActito, id: &str) -> Value {
    json!({
        "id": id,
        "data": {
            "actionParameters.points": 42,
            "profileAttributes.emailAddress": "ann@example.com",
            "_links": {
                "notifyOK": {"href": format!("{}/ca/OK_1", actito.url)},
                "notifyKO": {"href": format!("{}/ca/KO_1", actito.url)}
            }
        }
    })
}

async fn post_actito(s: &TestServer, key: Option<&str>, body: &Value) -> u16 {
    let mut request = s.http.post(s.url(ACTITO)).json(body);
    if let Some(key) = key {
        request = request.header("X-API-KEY", key);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn execute(s: &TestServer, contact: &str, email: &str) -> u16 {
    let claims = json!({
        "inArguments": [{"email": email, "additionalData": {"tier": "gold"}}],
        "journeyId": "journey-7",
        "activityId": "activity-1",
        "keyValue": contact,
        "jti": format!("jti-{contact}"),
    });
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SALT.as_bytes()),
    )
    .unwrap();
    s.http
        .post(s.url(EXECUTE))
        .header("content-type", "application/jwt")
        .body(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Processed, with every job it caused finished and every callback it caused sent
/// (the callback is a job of its own that can still be running after the event's
/// status flips).
async fn settled(s: &TestServer, event_id: &str) {
    eventually("the event and its callbacks are done", || async {
        let detail = audit::detail(&s.db.db, "acme", event_id).await.unwrap();
        detail.event.status == events::EventStatus::Processed.as_str()
            && detail.jobs.iter().all(|j| j.status == "done")
            && detail.deliveries.iter().all(|d| {
                d.status == DeliveryStatus::Delivered.as_str()
                    || d.status == DeliveryStatus::Failed.as_str()
            })
    })
    .await;
}

async fn only(s: &TestServer, filter: EventFilter) -> Vec<events::Event> {
    events::list(&s.db.db, "acme", &filter, None, 50)
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn events_filter_show_their_detail_and_replay_as_linked_events() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        let (pass, key) = setup(&s, &actito).await;
        assert_eq!(
            post_actito(&s, Some(&key), &envelope(&actito, "env-1")).await,
            200
        );
        assert_eq!(
            post_actito(&s, None, &envelope(&actito, "env-2")).await,
            401
        );
        let all = only(&s, EventFilter::default()).await;
        let original = all
            .iter()
            .find(|e| e.status != "rejected")
            .unwrap()
            .id
            .clone();
        settled(&s, &original).await;

        // Filters: cause code, free text in the body, time range.
        let refused = EventFilter {
            reason: Some("UNAUTHENTICATED".into()),
            ..Default::default()
        };
        let refused = only(&s, refused).await;
        assert_eq!(refused.len(), 1, "{:?}", s.backend());
        assert_eq!(refused[0].status, "rejected");
        let by_text = EventFilter {
            text: Some("ANN@example".into()),
            ..Default::default()
        };
        assert_eq!(
            only(&s, by_text)
                .await
                .iter()
                .map(|e| &e.id)
                .collect::<Vec<_>>(),
            vec![&original],
            "the unauthenticated body is not stored, so only the accepted event matches"
        );
        let future = EventFilter {
            from_ms: Some(domain::clock::now_ms() + 60_000),
            ..Default::default()
        };
        assert!(only(&s, future).await.is_empty());

        // Detail: redacted headers, the pass version it made, the callback it sent.
        let detail = audit::detail(&s.db.db, "acme", &original).await.unwrap();
        assert_eq!(detail.headers["x-api-key"], "[redacted]");
        assert!(detail.body.as_deref().unwrap().contains("env-1"));
        assert_eq!(detail.pass_updates.len(), 1);
        assert_eq!(detail.pass_updates[0].pass_id, pass);
        assert_eq!(detail.pass_updates[0].version, 2);
        assert_eq!(detail.deliveries.len(), 1);
        assert_eq!(detail.deliveries[0].status, "delivered");
        assert!(detail.jobs.iter().all(|j| j.status == "done"));
        let rejected = audit::detail(&s.db.db, "acme", &refused[0].id)
            .await
            .unwrap();
        assert!(
            rejected.body.is_none(),
            "never the body of an unauthenticated request"
        );

        // Replay: a new event linked both ways; the pass already has this content, so
        // no new version; Actito is told again.
        let replay = audit::replay(&s.core(), "acme", &original).await.unwrap();
        assert_ne!(replay, original);
        settled(&s, &replay).await;
        let again = audit::detail(&s.db.db, "acme", &replay).await.unwrap();
        assert_eq!(again.replay_of.as_deref(), Some(original.as_str()));
        assert!(again.pass_updates.is_empty());
        assert_eq!(
            audit::detail(&s.db.db, "acme", &original)
                .await
                .unwrap()
                .replays,
            vec![replay.clone()]
        );
        assert_eq!(
            passes::get(&s.db.db, "acme", &pass).await.unwrap().version,
            2
        );
        eventually("the replay's callback", || async {
            actito.callbacks().len() == 2
        })
        .await;
        assert!(matches!(
            audit::replay(&s.core(), "acme", &refused[0].id).await,
            Err(DomainError::Conflict(_))
        ));
        assert!(matches!(
            audit::replay(&s.core(), "other", &original).await,
            Err(DomainError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn journeys_and_the_dashboard_count_what_happened() {
    for s in TestServer::all_with(allow_loopback).await {
        let actito = FakeActito::start().await;
        let (pass, key) = setup(&s, &actito).await;
        assert_eq!(execute(&s, "contact-ann", "ann@example.com").await, 200);
        assert_eq!(
            execute(&s, "contact-nobody", "nobody@example.com").await,
            404
        );
        assert_eq!(
            post_actito(&s, Some(&key), &envelope(&actito, "env-1")).await,
            200
        );
        assert_eq!(
            post_actito(&s, None, &envelope(&actito, "env-2")).await,
            401
        );
        eventually("both updates applied", || async {
            passes::get(&s.db.db, "acme", &pass).await.unwrap().version == 3
        })
        .await;
        eventually("the callback delivered", || async {
            actito.callbacks().len() == 1
        })
        .await;

        let list = journeys::list(&s.db.db, "acme", 0).await.unwrap();
        let journey = list.iter().find(|j| j.journey_id == "journey-7").unwrap();
        assert_eq!(
            (
                journey.executions,
                journey.matched,
                journey.unmatched,
                journey.refused
            ),
            (2, 1, 1, 0),
            "{:?}",
            s.backend()
        );
        assert_eq!(journey.passes_updated, 1);
        assert_eq!((journey.pushes_sent, journey.pushes_failed), (0, 0));
        let actito_group = list
            .iter()
            .find(|j| j.journey_id == "custom-action.updatePass")
            .unwrap();
        assert_eq!((actito_group.executions, actito_group.refused), (2, 1));
        let contacts = journeys::contacts(&s.db.db, "acme", "journey-7", 0)
            .await
            .unwrap();
        let ann = contacts
            .iter()
            .find(|c| c.key_value == "contact-ann")
            .unwrap();
        assert_eq!(ann.pass_ids, vec![pass.clone()]);
        let nobody = contacts
            .iter()
            .find(|c| c.key_value == "contact-nobody")
            .unwrap();
        assert_eq!((nobody.unmatched, nobody.pass_ids.len()), (1, 0));

        let now = domain::clock::now_ms();
        let timeline = journeys::timeline(&s.db.db, "acme", "journey-7", now - 3_600_000, now, 12)
            .await
            .unwrap();
        assert_eq!(timeline.len(), 12);
        let totals = timeline
            .iter()
            .fold((0, 0), |(m, u), b| (m + b.matched, u + b.unmatched));
        assert_eq!(
            totals,
            (1, 1),
            "both executions over time, split by outcome"
        );
        let last = timeline.last().unwrap();
        assert_eq!(
            last.matched + last.unmatched,
            2,
            "the executions just sent are in the newest interval"
        );
        let before = journeys::timeline(&s.db.db, "acme", "journey-7", 0, now - 3_600_000, 4)
            .await
            .unwrap();
        assert!(before.iter().all(|b| b.matched + b.unmatched == 0));
        let hour = stats::overview(&s.db.db, "acme", now, 3_600_000, 12)
            .await
            .unwrap();
        let count = |source: &str| {
            let c = hour.inbound.iter().find(|c| c.source == source).unwrap();
            (c.accepted, c.rejected)
        };
        assert_eq!(count("sfmc"), (1, 1));
        assert_eq!(count("actito"), (1, 1));
        assert_eq!((hour.accepted(), hour.rejected()), (2, 2));
        assert_eq!(hour.pass_updates, 2);
        assert_eq!(hour.pushes_delivered, 1);
        assert!(hour.p95_processing_ms.is_some());
        assert_eq!(hour.buckets.len(), 12);
        let charted: i64 = hour.buckets.iter().map(|b| b.accepted + b.rejected).sum();
        assert_eq!(charted, 4, "every request lands in a bucket");
        let later = stats::overview(&s.db.db, "acme", now + 7_200_000, 3_600_000, 12)
            .await
            .unwrap();
        assert_eq!((later.accepted(), later.pass_updates), (0, 0));

        // Wallet pushes to the changed pass after its change count for the journey.
        for status in [DeliveryStatus::Delivered, DeliveryStatus::Failed] {
            let mut conn = s.db.db.writer().acquire().await.unwrap();
            let id = deliveries::create(
                &mut conn,
                "acme",
                deliveries::Channel::Apple,
                Some(&pass),
                None,
                "apple",
            )
            .await
            .unwrap();
            drop(conn);
            deliveries::set_status(&s.db.db, &id, status, None)
                .await
                .unwrap();
        }
        let list = journeys::list(&s.db.db, "acme", 0).await.unwrap();
        let journey = list.iter().find(|j| j.journey_id == "journey-7").unwrap();
        assert_eq!((journey.pushes_sent, journey.pushes_failed), (1, 1));
    }
}

/// Page sizes are 1 to 500, as the OpenAPI document says: anything else is a 400
/// naming the bounds, on every list, rather than a page of another size.
#[tokio::test]
async fn page_sizes_outside_their_bounds_are_refused() {
    for s in TestServer::all().await {
        s.tenant("acme").await;
        let key = s.key("acme", &[Scope::AuditRead, Scope::PassesRead]).await;
        for list in ["events", "deliveries", "passes"] {
            for (limit, status) in [
                ("1", 200),
                ("500", 200),
                ("0", 400),
                ("501", 400),
                ("2147483648", 400),
            ] {
                let answer = s
                    .http
                    .get(s.url(&format!("/api/acme/{list}?limit={limit}")))
                    .header("X-API-KEY", &key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), status, "{list}?limit={limit}");
                if status == 400 {
                    let problem: Value = answer.json().await.unwrap();
                    let detail = problem["detail"].as_str().unwrap_or_default();
                    assert!(
                        detail.contains("limit must be a number from 1 to 500"),
                        "{problem}"
                    );
                }
            }
        }
        s.stop().await;
    }
}
