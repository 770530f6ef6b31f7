//! Tenant isolation, as a matrix: every `/api/` endpoint and the console's session
//! endpoints × six callers → exactly the status written below, and never a byte of
//! the other tenant's data in a response body.
//!
//! Tenant `alpha` owns every path and object the matrix touches; `bravo` is the
//! other tenant, with the same set-up. The OpenAPI document is checked against the
//! matrix, so an endpoint added to it without a row here fails this test.

mod support;

use domain::api_keys::{self, Scope};
use domain::crypto::MasterKey;
use domain::testing::TestDb;
use domain::users::{self, Role};
use domain::wallet::{certs, pkpass};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{json, Value};
use support::fakes::eventually;
use support::{allow_loopback, TestServer};

const A: &str = "alpha";
const B: &str = "bravo";
const PASSWORD: &str = "isolation-matrix-password";

/// Who calls. For each kind of authentication the columns mean:
///
/// | caller | API key endpoints | SFMC JWT endpoints | PassKit (ApplePass) | console (session) |
/// |---|---|---|---|---|
/// | `Own` | alpha's key with exactly the scope | a token signed with alpha's key | alpha's pass token | alpha's admin session |
/// | `OtherKey` | bravo's key with every scope | a token signed with bravo's key | bravo's pass token | bravo's key, no session |
/// | `WrongScope` | alpha's key with every other scope | alpha's key, but HS512 | the token of alpha's other pass | alpha's key, no session |
/// | `NoKey` | nothing | no token | nothing | nothing |
/// | `Marketer` | alpha's marketer session only | session only | session only | alpha's marketer session |
/// | `OtherAdmin` | bravo's admin session only | session only | session only | bravo's admin session |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Own,
    OtherKey,
    WrongScope,
    NoKey,
    Marketer,
    OtherAdmin,
}
use Caller::*;

/// The order of the expected statuses in each row.
const COLUMNS: [Caller; 6] = [Own, OtherKey, WrongScope, NoKey, Marketer, OtherAdmin];
/// The order of the calls: the owner last, since its call may change or delete what
/// the others were refused.
const CALL_ORDER: [Caller; 6] = [NoKey, OtherKey, WrongScope, Marketer, OtherAdmin, Own];

impl Caller {
    /// The tenant whose data this caller may legitimately see.
    fn viewer(self) -> Option<&'static str> {
        match self {
            Own | WrongScope | Marketer => Some(A),
            OtherKey | OtherAdmin => Some(B),
            NoKey => None,
        }
    }
}

#[derive(Clone, Copy)]
enum Auth {
    Key(Scope),
    Jwt,
    ApplePass,
    Session,
    Public,
}

enum Body {
    Empty,
    Json(Value),
    Form(Vec<(&'static str, String)>),
    /// The JWT claims of an SFMC call (the token depends on the caller).
    Claims(Value),
}

struct Case {
    method: Method,
    /// The route template (as in the OpenAPI document for `/api/` routes).
    route: &'static str,
    path: String,
    auth: Auth,
    body: Body,
    /// Statuses in the order of [`COLUMNS`].
    expect: [u16; 6],
    /// The call ends the caller's session: each session caller signs in anew for it.
    fresh: bool,
}

/// One tenant's set-up, and the strings that identify its data.
struct Tenant {
    id: &'static str,
    full_key: String,
    /// A key per scope with that scope only, and a key per scope with all the others.
    only: Vec<(Scope, String)>,
    all_but: Vec<(Scope, String)>,
    admin_email: String,
    admin_cookie: String,
    marketer_email: String,
    marketer_id: Option<String>,
    marketer_cookie: Option<String>,
    /// Keys that only the matrix's rotate and revoke rows touch.
    spare_keys: [String; 2],
    salt: String,
    passes: Vec<String>,
    events: Vec<String>,
    deliveries: Vec<String>,
    type_id: String,
    /// Ids, names and emails of this tenant: none may reach another tenant's caller.
    markers: Vec<String>,
    /// Secrets: they must reach nobody, not even the tenant.
    secrets: Vec<String>,
}

impl Tenant {
    fn only(&self, scope: Scope) -> &str {
        &self.only.iter().find(|(s, _)| *s == scope).unwrap().1
    }
    fn all_but(&self, scope: Scope) -> &str {
        &self.all_but.iter().find(|(s, _)| *s == scope).unwrap().1
    }
}

async fn sign_in(s: &TestServer, email: &str) -> String {
    s.sign_in(email, PASSWORD).await.expect("a session cookie")
}

async fn set_up(s: &TestServer, id: &'static str, name: &str, marketer: bool) -> Tenant {
    domain::tenants::create(&s.db.db, id, name).await.unwrap();
    let key = |name: String, scopes: Vec<Scope>| {
        let db = s.db.db.clone();
        async move {
            api_keys::create(&db, id, &name, &scopes, None)
                .await
                .unwrap()
                .1
        }
    };
    let full_key = key(format!("{id}-full-key-name"), Scope::ALL.to_vec()).await;
    let (mut only, mut all_but) = (Vec::new(), Vec::new());
    for scope in Scope::ALL {
        only.push((
            scope,
            key(format!("{id}-only-{}", scope.as_str()), vec![scope]).await,
        ));
        let others = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
        all_but.push((
            scope,
            key(format!("{id}-all-but-{}", scope.as_str()), others).await,
        ));
    }
    let admin_email = format!("admin@{id}-staff.test");
    users::upsert(&s.db.db, id, &admin_email, Role::Admin, PASSWORD)
        .await
        .unwrap();
    let admin_cookie = sign_in(s, &admin_email).await;
    let marketer_email = format!("marketer@{id}-staff.test");
    let (marketer_id, marketer_cookie) = if marketer {
        let user = users::upsert(&s.db.db, id, &marketer_email, Role::Marketer, PASSWORD)
            .await
            .unwrap();
        (Some(user.id), Some(sign_in(s, &marketer_email).await))
    } else {
        (None, None)
    };
    let mut spare_keys = Vec::new();
    for n in 1..=2 {
        let (spare, _) = api_keys::create(
            &s.db.db,
            id,
            &format!("{id}-only-spare-{n}"),
            &[Scope::PassesRead],
            None,
        )
        .await
        .unwrap();
        spare_keys.push(spare.id);
    }

    let put = |path: String, body: Value| {
        let request = s
            .http
            .put(s.url(&path))
            .header("X-API-KEY", &full_key)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "PUT {path}");
        }
    };
    let salt = format!("{id}-sfmc-salt-value");
    let actito_secret = format!("{id}-actito-api-secret");
    put(
        format!("/api/{id}/integrations/actito"),
        json!({"apiBaseUrl": "http://127.0.0.1:9", "entity": format!("{id}-actito-entity"),
            "apiKey": actito_secret, "profileTableId": "7",
            // No callback host is allowed: callbacks fail at once, leaving a failed delivery.
            "callbackHosts": ["callbacks.invalid"]}),
    )
    .await;
    put(
        format!("/api/{id}/integrations/sfmc"),
        json!({"signingKeys": [{"id": format!("{id}-signing-kid"), "secret": salt}]}),
    )
    .await;
    let type_id = format!("pass.test.{id}");
    let apple = certs::generate(&type_id);
    put(
        format!("/api/{id}/wallet/credentials/apple"),
        json!({"certificatePem": apple.certificate_pem, "privateKeyPem": apple.private_key_pem, "wwdrPem": apple.ca_pem}),
    )
    .await;
    put(
        format!("/api/{id}/wallet/credentials/google"),
        json!({"serviceAccount": google_account(id)}),
    )
    .await;
    for pass_type in ["loyalty", "disposable"] {
        put(
            format!("/api/{id}/pass-types/{pass_type}"),
            design(id, &type_id),
        )
        .await;
    }

    let mut passes = Vec::new();
    for n in 1..=2 {
        let created: Value = s
            .http
            .post(s.url(&format!("/api/{id}/passes")))
            .header("X-API-KEY", &full_key)
            .json(&json!({"passType": "loyalty",
                "identifiers": {"email": format!("member{n}@{id}-mail.test"), "customId": format!("{id}-CUSTOMER-{n}")},
                "additionalData": {"points": n, "nickname": format!("{id}-nickname-{n}")}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        passes.push(created["id"].as_str().unwrap().to_string());
    }
    // One listener call: an event, a pass update and a (failed) callback delivery.
    let sent = s
        .http
        .post(s.url(&actito_path(id)))
        .header("X-API-KEY", &full_key)
        .json(&custom_action(id, &format!("{id}-setup-envelope")))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let db = s.db.db.clone();
    eventually("the set-up callback failed", || {
        let db = db.clone();
        async move {
            let filter = domain::deliveries::DeliveryFilter {
                status: Some("failed".into()),
                ..Default::default()
            };
            domain::deliveries::list(&db, id, &filter, None, 10)
                .await
                .is_ok_and(|p| !p.items.is_empty())
        }
    })
    .await;
    let events: Vec<String> = domain::events::list(&db, id, &Default::default(), None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.id)
        .collect();
    let deliveries: Vec<String> = domain::deliveries::list(&db, id, &Default::default(), None, 100)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| d.id)
        .collect();

    let mut markers = vec![
        name.to_string(),
        admin_email.clone(),
        format!("{id}-mail.test"),
        format!("{id}-CUSTOMER-"),
        format!("{id}-nickname-"),
        format!("{id}-actito-entity"),
        format!("{id}-signing-kid"),
        format!("{id}-full-key-name"),
        format!("{id}-only-"),
        format!("{id}-all-but-"),
        format!("{id}-setup-envelope"),
        type_id.clone(),
    ];
    if marketer {
        markers.push(marketer_email.clone());
    }
    markers.extend(passes.iter().cloned());
    markers.extend(events.iter().cloned());
    markers.extend(deliveries.iter().cloned());
    let mut secrets = vec![salt.clone(), actito_secret, full_key.clone()];
    secrets.extend(only.iter().chain(&all_but).map(|(_, k)| k.clone()));
    Tenant {
        id,
        full_key,
        only,
        all_but,
        admin_email,
        admin_cookie,
        marketer_email,
        marketer_id,
        marketer_cookie,
        spare_keys: spare_keys.try_into().unwrap(),
        salt,
        passes,
        events,
        deliveries,
        type_id,
        markers,
        secrets,
    }
}

fn google_account(id: &str) -> Value {
    json!({"type": "service_account", "client_email": format!("wallet@{id}.iam.gserviceaccount.test"),
        "private_key_id": "k1", "private_key": certs::generate_rsa_pem(),
        "token_uri": "https://oauth2.googleapis.com/token"})
}

fn design(id: &str, type_id: &str) -> Value {
    json!({"name": "Loyalty",
        "apple": {"passTypeIdentifier": type_id, "teamIdentifier": "TEAM123456",
            "organizationName": "Test", "description": "Card", "style": "storeCard",
            "fields": {"primary": [{"key": "points", "valueFrom": "points"}]}},
        "google": {"issuerId": "3388000000012345678", "classId": format!("3388000000012345678.{id}"), "objectKind": "loyalty",
            "fields": [{"key": "points", "label": "Points", "valueFrom": "points"}]}})
}

fn actito_path(tenant: &str) -> String {
    format!("/api/{tenant}/webhooks/listeners/actito/custom-actions/updatePass")
}

fn custom_action(tenant: &str, envelope_id: &str) -> Value {
    json!({"id": envelope_id, "data": {
        "actionParameters.points": "7",
        "profileAttributes.emailAddress": format!("member1@{tenant}-mail.test"),
        "_links": {
            "notifyOK": {"href": "https://www.actito.com/ca/OK_1"},
            "notifyKO": {"href": "https://www.actito.com/ca/KO_1"}
        }
    }})
}

fn token(claims: &Value, salt: &str, alg: Algorithm) -> String {
    let mut claims = claims.clone();
    claims["jti"] = json!(format!("jti-{}", domain::ids::new_id("t")));
    encode(
        &Header::new(alg),
        &claims,
        &EncodingKey::from_secret(salt.as_bytes()),
    )
    .unwrap()
}

/// The expected table. Columns: own, other tenant's key, wrong scope, no key,
/// marketer session, other tenant's admin session (see [`Caller`]).
fn matrix(a: &Tenant) -> Vec<Case> {
    use Auth::*;
    use Body::*;
    let (p1, p2) = (&a.passes[0], &a.passes[1]);
    let marketer = a.marketer_id.clone().unwrap();
    let event = &a.events[0];
    let delivery = &a.deliveries[0];
    let type_id = &a.type_id;
    let api = |rest: &str| format!("/api/{A}{rest}");
    let sfmc = |rest: &str| {
        api(&format!(
            "/webhooks/listeners/sfmc/actions/pushupdate{rest}"
        ))
    };
    let passkit = |rest: &str| api(&format!("/wallet/apple/v1{rest}"));
    let case = |method: Method,
                route: &'static str,
                path: String,
                auth: Auth,
                body: Body,
                expect: [u16; 6]| Case {
        method,
        route,
        path,
        auth,
        body,
        expect,
        fresh: false,
    };
    let claims = json!({"inArguments": [{"email": format!("member1@{A}-mail.test")}, {"additionalData": {"tier": "gold"}}],
        "journeyId": "journey-1", "activityId": "activity-1", "definitionInstanceId": "instance-1", "keyValue": "contact-1"});
    let lifecycle = json!({"journeyId": "journey-1", "activityId": "activity-1"});
    let fn_ = |name: &str| format!("/console/fn/{name}");
    let all_events = json!({"query": app::model::EventQuery::default()});
    let all_deliveries = json!({"query": app::model::DeliveryQuery::default()});
    let (get, post, put, patch, delete) = (
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    );
    //                                                                   own  other wrong none  mkt  other
    //                                                                        key   scope key        admin
    vec![
        // Passes (CONTRACT §4).
        case(post.clone(), "/api/{tenantId}/passes", api("/passes"), Key(Scope::PassesWrite),
            Json(json!({"passType": "loyalty", "identifiers": {"email": format!("new@{A}-mail.test")}})),
            [201, 403, 403, 401, 401, 401]),
        case(get.clone(), "/api/{tenantId}/passes", api(&format!("/passes?identifier.email=member1@{A}-mail.test")), Key(Scope::PassesRead), Empty,
            [200, 403, 403, 401, 401, 401]),
        case(get.clone(), "/api/{tenantId}/passes/{passId}", api(&format!("/passes/{p1}")), Key(Scope::PassesRead), Empty,
            [200, 403, 403, 401, 401, 401]),
        case(patch.clone(), "/api/{tenantId}/passes/{passId}", api(&format!("/passes/{p1}")), Key(Scope::PassesWrite),
            Json(json!({"additionalData": {"points": 99}})),
            [200, 403, 403, 401, 401, 401]),
        case(get.clone(), "/api/{tenantId}/passes/{passId}/apple.pkpass", api(&format!("/passes/{p1}/apple.pkpass")), Key(Scope::PassesRead), Empty,
            [200, 403, 403, 401, 401, 401]),
        case(get.clone(), "/api/{tenantId}/passes/{passId}/google-save-url", api(&format!("/passes/{p1}/google-save-url")), Key(Scope::PassesRead), Empty,
            [200, 403, 403, 401, 401, 401]),
        // Integration settings (§5).
        case(put.clone(), "/api/{tenantId}/integrations/actito", api("/integrations/actito"), Key(Scope::IntegrationsWrite),
            Json(json!({"apiBaseUrl": "http://127.0.0.1:9", "entity": format!("{A}-actito-entity"), "profileTableId": "7", "callbackHosts": ["callbacks.invalid"]})),
            [200, 403, 403, 401, 401, 401]),
        case(get.clone(), "/api/{tenantId}/integrations/actito", api("/integrations/actito"), Key(Scope::IntegrationsWrite), Empty,
            [200, 403, 403, 401, 401, 401]),
        case(put.clone(), "/api/{tenantId}/integrations/sfmc", api("/integrations/sfmc"), Key(Scope::IntegrationsWrite),
            Json(json!({"signingKeys": [{"id": format!("{A}-signing-kid"), "secret": a.salt}]})),
            [200, 403, 403, 401, 401, 401]),
        case(get.clone(), "/api/{tenantId}/integrations/sfmc", api("/integrations/sfmc"), Key(Scope::IntegrationsWrite), Empty,
            [200, 403, 403, 401, 401, 401]),
        // Audit.
        case(get.clone(), "/api/{tenantId}/events", api("/events"), Key(Scope::AuditRead), Empty,
            [200, 403, 403, 401, 401, 401]),
        case(get.clone(), "/api/{tenantId}/deliveries", api("/deliveries"), Key(Scope::AuditRead), Empty,
            [200, 403, 403, 401, 401, 401]),
        case(post.clone(), "/api/{tenantId}/deliveries/{deliveryId}/retry", api(&format!("/deliveries/{delivery}/retry")), Key(Scope::IntegrationsWrite), Empty,
            [202, 403, 403, 401, 401, 401]),
        // Wallet set-up.
        case(get.clone(), "/api/{tenantId}/pass-types", api("/pass-types"), Key(Scope::IntegrationsWrite), Empty,
            [200, 403, 403, 401, 401, 401]),
        case(get.clone(), "/api/{tenantId}/pass-types/{passTypeId}", api("/pass-types/loyalty"), Key(Scope::IntegrationsWrite), Empty,
            [200, 403, 403, 401, 401, 401]),
        case(put.clone(), "/api/{tenantId}/pass-types/{passTypeId}", api("/pass-types/coupon"), Key(Scope::IntegrationsWrite),
            Json(design(A, type_id)),
            [200, 403, 403, 401, 401, 401]),
        case(delete.clone(), "/api/{tenantId}/pass-types/{passTypeId}", api("/pass-types/disposable"), Key(Scope::IntegrationsWrite), Empty,
            [204, 403, 403, 401, 401, 401]),
        case(get.clone(), "/api/{tenantId}/wallet/credentials", api("/wallet/credentials"), Key(Scope::IntegrationsWrite), Empty,
            [200, 403, 403, 401, 401, 401]),
        case(put.clone(), "/api/{tenantId}/wallet/credentials/apple", api("/wallet/credentials/apple"), Key(Scope::IntegrationsWrite),
            Json({
                let c = certs::generate(type_id);
                json!({"certificatePem": c.certificate_pem, "privateKeyPem": c.private_key_pem, "wwdrPem": c.ca_pem})
            }),
            [200, 403, 403, 401, 401, 401]),
        case(put.clone(), "/api/{tenantId}/wallet/credentials/google", api("/wallet/credentials/google"), Key(Scope::IntegrationsWrite),
            Json(json!({"serviceAccount": google_account(A)})),
            [200, 403, 403, 401, 401, 401]),
        // Actito listeners (§6).
        case(post.clone(), "/api/{tenantId}/webhooks/listeners/actito/custom-actions/updatePass", actito_path(A), Key(Scope::ActitoListenerWrite),
            Json(custom_action(A, "matrix-envelope")),
            [200, 403, 403, 401, 401, 401]),
        case(post.clone(), "/api/{tenantId}/webhooks/listeners/actito/profile/{eventType}", api("/webhooks/listeners/actito/profile/UPDATE"), Key(Scope::ActitoListenerWrite),
            Json(json!({"id": "matrix-profile", "tableType": "PROFILE_TABLE", "tableId": "7", "fields": ["emailAddress"],
                "eventType": "DATA", "operation": "UPDATE", "data": {"profileId": 42, "emailAddress": format!("member1@{A}-mail.test")}})),
            [200, 403, 403, 401, 401, 401]),
        // SFMC listeners (§7): a JWT in the body, API keys and sessions count for nothing.
        case(post.clone(), "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/execute", sfmc("/execute"), Jwt, Claims(claims),
            [200, 401, 401, 401, 401, 401]),
        case(post.clone(), "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/{operation}", sfmc("/publish"), Jwt, Claims(lifecycle),
            [200, 401, 401, 401, 401, 401]),
        case(get.clone(), "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/config.json", sfmc("/config.json"), Public, Empty,
            [200, 200, 200, 200, 200, 200]),
        case(get.clone(), "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/", sfmc("/"), Public, Empty,
            [200, 200, 200, 200, 200, 200]),
        case(get.clone(), "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/postmonger.js", sfmc("/postmonger.js"), Public, Empty,
            [200, 200, 200, 200, 200, 200]),
        case(get.clone(), "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/activity.js", sfmc("/activity.js"), Public, Empty,
            [200, 200, 200, 200, 200, 200]),
        case(get.clone(), "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/icon.svg", sfmc("/icon.svg"), Public, Empty,
            [200, 200, 200, 200, 200, 200]),
        // Apple's PassKit web service: the pass's own token, nothing else.
        case(post.clone(), "/api/{tenantId}/wallet/apple/v1/devices/{deviceId}/registrations/{passTypeIdentifier}/{serial}",
            passkit(&format!("/devices/device-1/registrations/{type_id}/{p1}")), ApplePass,
            Json(json!({"pushToken": "0123abcd"})),
            [201, 401, 401, 401, 401, 401]),
        // Apple's protocol: the device library id is the credential here. An unknown
        // device learns nothing.
        case(get.clone(), "/api/{tenantId}/wallet/apple/v1/devices/{deviceId}/registrations/{passTypeIdentifier}",
            passkit(&format!("/devices/unknown-device/registrations/{type_id}")), Public, Empty,
            [204, 204, 204, 204, 204, 204]),
        case(get.clone(), "/api/{tenantId}/wallet/apple/v1/passes/{passTypeIdentifier}/{serial}",
            passkit(&format!("/passes/{type_id}/{p1}")), ApplePass, Empty,
            [200, 401, 401, 401, 401, 401]),
        case(delete.clone(), "/api/{tenantId}/wallet/apple/v1/devices/{deviceId}/registrations/{passTypeIdentifier}/{serial}",
            passkit(&format!("/devices/device-1/registrations/{type_id}/{p1}")), ApplePass, Empty,
            [200, 401, 401, 401, 401, 401]),
        case(post.clone(), "/api/{tenantId}/wallet/apple/v1/log", passkit("/log"), Public,
            Json(json!({"logs": ["a line"]})),
            [200, 200, 200, 200, 200, 200]),
        case(get.clone(), "/api/openapi.json", "/api/openapi.json".into(), Public, Empty,
            [200, 200, 200, 200, 200, 200]),
        // The console: the session decides the tenant; API keys count for nothing.
        case(get.clone(), "/console/live", "/console/live".into(), Session, Empty,
            [200, 401, 401, 401, 200, 200]),
        case(get.clone(), "/console/export/deliveries.csv", "/console/export/deliveries.csv".into(), Session, Empty,
            [200, 401, 401, 401, 200, 200]),
        // Server functions, asked for alpha's objects by id: bravo's admin gets nothing.
        case(post.clone(), "/console/fn/get_pass", fn_("get_pass"), Session, Form(vec![("id", p2.clone())]),
            [200, 401, 401, 401, 200, 200]),
        case(post.clone(), "/console/fn/get_event", fn_("get_event"), Session, Form(vec![("id", event.clone())]),
            [200, 401, 401, 401, 200, 200]),
        case(post.clone(), "/console/fn/list_events", fn_("list_events"), Session, Json(all_events),
            [200, 401, 401, 401, 200, 200]),
        case(post.clone(), "/console/fn/list_deliveries", fn_("list_deliveries"), Session, Json(all_deliveries),
            [200, 401, 401, 401, 200, 200]),
        case(post.clone(), "/console/fn/filter_options", fn_("filter_options"), Session, Empty,
            [200, 401, 401, 401, 200, 200]),
        case(post.clone(), "/console/fn/key_page", fn_("key_page"), Session, Empty,
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/actito_page", fn_("actito_page"), Session, Empty,
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/sfmc_page", fn_("sfmc_page"), Session, Empty,
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/wallet_page", fn_("wallet_page"), Session, Empty,
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/people_page", fn_("people_page"), Session, Empty,
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/get_retention", fn_("get_retention"), Session, Empty,
            [200, 401, 401, 401, 403, 200]),
        // Bravo's admin replaying alpha's event: 404, no such event (for bravo).
        case(post.clone(), "/console/fn/replay_event", fn_("replay_event"), Session, Form(vec![("id", event.clone())]),
            [200, 401, 401, 401, 403, 404]),
        // Every other server function (the test enumerates the registered ones).
        // Anyone: signing in, and what the sign-in and set-up pages ask.
        case(post.clone(), "/console/fn/login", fn_("login"), Public,
            Form(vec![("email", format!("nobody@{A}-nowhere.test")), ("password", "not a password".into())]),
            [200, 200, 200, 200, 200, 200]),
        case(post.clone(), "/console/fn/sso_available", fn_("sso_available"), Public, Empty,
            [200, 200, 200, 200, 200, 200]),
        case(post.clone(), "/console/fn/get_session_info", fn_("get_session_info"), Public, Empty,
            [200, 200, 200, 200, 200, 200]),
        case(post.clone(), "/console/fn/setup_link_email", fn_("setup_link_email"), Public,
            Form(vec![("token", "not-a-set-up-token".into())]),
            [200, 200, 200, 200, 200, 200]),
        case(post.clone(), "/console/fn/set_up_password", fn_("set_up_password"), Public,
            Form(vec![("token", "not-a-set-up-token".into()), ("password", "a long enough password".into())]),
            [200, 200, 200, 200, 200, 200]),
        // Reading: marketers too.
        case(post.clone(), "/console/fn/list_passes", fn_("list_passes"), Session,
            Form(vec![("query", String::new()), ("page", "0".into())]),
            [200, 401, 401, 401, 200, 200]),
        case(post.clone(), "/console/fn/get_dashboard", fn_("get_dashboard"), Session, Empty,
            [200, 401, 401, 401, 200, 200]),
        case(post.clone(), "/console/fn/list_journeys", fn_("list_journeys"), Session,
            Form(vec![("range", "All".into())]),
            [200, 401, 401, 401, 200, 200]),
        // Alpha's journey, by its id: bravo's admin sees an empty journey of bravo's.
        case(post.clone(), "/console/fn/get_journey", fn_("get_journey"), Session,
            Form(vec![("id", "journey-1".into()), ("range", "All".into())]),
            [200, 401, 401, 401, 200, 200]),
        case(post.clone(), "/console/fn/get_activity", fn_("get_activity"), Session,
            Form(vec![("day", "true".into())]),
            [200, 401, 401, 401, 200, 200]),
        // Switching into alpha: only its members.
        case(post.clone(), "/console/fn/switch_tenant", fn_("switch_tenant"), Session,
            Form(vec![("tenant_id", A.into())]),
            [200, 401, 401, 401, 200, 403]),
        // Admins only; bravo's admin acts on bravo, or finds none of alpha's objects.
        case(post.clone(), "/console/fn/retry_deliveries", fn_("retry_deliveries"), Session, Json(json!({"query": app::model::DeliveryQuery::default()})),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/send_test_event", fn_("send_test_event"), Session,
            Json(json!({"input": {"source": "actito", "email": format!("member1@{A}-mail.test"), "data": "points=5", "message": ""}})),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/set_retention", fn_("set_retention"), Session, Form(vec![("days", "30".into())]),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/save_actito", fn_("save_actito"), Session,
            Json(json!({"form": {"api_base_url": "http://127.0.0.1:9", "entity": "matrix-entity", "api_key": "",
                "profile_table_id": "7", "identifier_mapping": [], "data_mapping": [], "callback_hosts": ["callbacks.invalid"]}})),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/test_actito", fn_("test_actito"), Session,
            Json(json!({"form": {"api_base_url": "http://127.0.0.1:9", "entity": "matrix-entity", "api_key": "",
                "profile_table_id": "7", "identifier_mapping": [], "data_mapping": [], "callback_hosts": []}})),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/actito_subscriptions", fn_("actito_subscriptions"), Session, Empty,
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/create_subscription", fn_("create_subscription"), Session,
            Form(vec![("kind", "profile".into()), ("fields", "emailAddress".into()), ("custom_action", "".into())]),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/change_subscription", fn_("change_subscription"), Session,
            Form(vec![("id", "matrix-subscription".into()), ("action", "deactivate".into())]),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/add_signing_key", fn_("add_signing_key"), Session,
            Form(vec![("id", "matrix-kid".into()), ("secret", "a-matrix-signing-secret-long-enough".into())]),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/retire_signing_key", fn_("retire_signing_key"), Session,
            Form(vec![("id", "matrix-kid".into())]),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/save_customer_key", fn_("save_customer_key"), Session,
            Form(vec![("customer_key", "matrix-customer-key".into())]),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/save_when_no_pass", fn_("save_when_no_pass"), Session,
            Form(vec![("continue_journey", "true".into())]),
            [200, 401, 401, 401, 403, 200]),
        // Alpha's signing key and pass, named by bravo's admin: refused, nothing shown.
        case(post.clone(), "/console/fn/test_execute", fn_("test_execute"), Session,
            Json(json!({"call": {"key_id": format!("{A}-signing-kid"), "pass_id": p1, "email": "", "additional_data": [["tier", "matrix"]], "message": ""}})),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/save_pass_type", fn_("save_pass_type"), Session,
            Json(json!({"form": {"id": "loyalty", "name": "", "has_apple": false, "has_google": false, "style": "storeCard",
                "background_color": "", "foreground_color": "", "label_color": "", "logo_text": "", "fields": [], "sample": []}})),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/save_apple_credentials", fn_("save_apple_credentials"), Session,
            Form(vec![("certificate_pem", "not a certificate".into()), ("private_key_pem", "not a key".into()),
                ("private_key_password", String::new()), ("wwdr_pem", "not a certificate".into())]),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/save_google_credentials", fn_("save_google_credentials"), Session,
            Form(vec![("service_account", "{}".into())]),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/create_key", fn_("create_key"), Session,
            Json(json!({"name": "matrix-key", "scopes": ["Passes.Read"]})),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/rotate_key", fn_("rotate_key"), Session,
            Form(vec![("id", a.spare_keys[0].clone()), ("grace_hours", "0".into())]),
            [200, 401, 401, 401, 403, 404]),
        case(post.clone(), "/console/fn/revoke_key", fn_("revoke_key"), Session,
            Form(vec![("id", a.spare_keys[1].clone())]),
            [200, 401, 401, 401, 403, 404]),
        // Bravo's admin adds the person first (a new account), then alpha's admin
        // (the account exists: it joins alpha and nothing else of it changes).
        case(post.clone(), "/console/fn/add_person", fn_("add_person"), Session,
            Form(vec![("email", "matrix-person@elsewhere.test".into()), ("role", "admin".into())]),
            [200, 401, 401, 401, 403, 200]),
        case(post.clone(), "/console/fn/set_person_role", fn_("set_person_role"), Session,
            Form(vec![("user_id", marketer.clone()), ("role", "marketer".into())]),
            [200, 401, 401, 401, 403, 404]),
        case(post.clone(), "/console/fn/set_person_disabled", fn_("set_person_disabled"), Session,
            Form(vec![("user_id", marketer.clone()), ("disabled", "false".into())]),
            [200, 401, 401, 401, 403, 404]),
        // Console pages: signed-out visitors are sent to the sign-in page.
        case(get.clone(), "/", "/".into(), Session, Empty,
            [200, 303, 303, 303, 200, 200]),
        case(get.clone(), "/passes/{id}", format!("/passes/{p2}"), Session, Empty,
            [200, 303, 303, 303, 200, 200]),
        case(get, "/audit/{id}", format!("/audit/{event}"), Session, Empty,
            [200, 303, 303, 303, 200, 200]),
        // Last: calls that end the caller's session (each caller signs in anew).
        Case { fresh: true, ..case(post.clone(), "/console/fn/change_password", fn_("change_password"), Session,
            Form(vec![("current", PASSWORD.into()), ("new", PASSWORD.into())]),
            [200, 401, 401, 401, 200, 200]) },
        Case { fresh: true, ..case(post.clone(), "/console/fn/sign_out_everywhere", fn_("sign_out_everywhere"), Session, Empty,
            [200, 401, 401, 401, 200, 200]) },
        Case { fresh: true, ..case(post.clone(), "/console/fn/logout", fn_("logout"), Public, Empty,
            [200, 200, 200, 200, 200, 200]) },
        // Admin-only pages (`/api-keys`…) have no row: a marketer's render shows the
        // refusal, but its status is 200 or 403 depending on whether the refusing
        // server function finishes before the streamed headers go out. The server
        // functions behind them (`key_page`… above) are refused with a steady 403.
    ]
}

/// Sends one cell's request; returns the request's text (for echo allowance), the
/// status, the content type and the body.
async fn call(
    s: &TestServer,
    case: &Case,
    caller: Caller,
    a: &Tenant,
    b: &Tenant,
) -> (String, u16, String, String) {
    let mut request = s.http.request(case.method.clone(), s.url(&case.path));
    let mut sent = case.path.clone();
    let cookie = match (caller, case.fresh) {
        (Marketer, false) => a.marketer_cookie.clone(),
        (Marketer, true) => Some(sign_in(s, &a.marketer_email).await),
        (OtherAdmin, false) => Some(b.admin_cookie.clone()),
        (OtherAdmin, true) => Some(sign_in(s, &b.admin_email).await),
        (Own, false) if matches!(case.auth, Auth::Session) => Some(a.admin_cookie.clone()),
        (Own, true) => Some(sign_in(s, &a.admin_email).await),
        _ => None,
    };
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    match (case.auth, caller) {
        (Auth::Key(scope), Own) => request = request.header("X-API-KEY", a.only(scope)),
        (Auth::Key(scope), WrongScope) => {
            request = request.header("X-API-KEY", a.all_but(scope));
        }
        (Auth::Key(_) | Auth::Session | Auth::Public | Auth::Jwt, OtherKey) => {
            request = request.header("X-API-KEY", &b.full_key);
        }
        (Auth::Session | Auth::Public | Auth::Jwt, WrongScope) => {
            request = request.header("X-API-KEY", &a.full_key);
        }
        (Auth::ApplePass, Own | OtherKey | WrongScope) => {
            let core = s.core();
            let token = match caller {
                Own => pkpass::authentication_token(&core, A, &a.passes[0]),
                OtherKey => pkpass::authentication_token(&core, B, &b.passes[0]),
                _ => pkpass::authentication_token(&core, A, &a.passes[1]),
            };
            request = request.header("authorization", format!("ApplePass {token}"));
        }
        _ => {}
    }
    match &case.body {
        Body::Empty => {}
        Body::Json(value) => {
            sent.push_str(&value.to_string());
            request = request.json(value);
        }
        Body::Form(pairs) => {
            for (_, v) in pairs {
                sent.push_str(v);
            }
            request = request.form(pairs);
        }
        Body::Claims(claims) => {
            let jwt = match caller {
                Own => Some(token(claims, &a.salt, Algorithm::HS256)),
                OtherKey => Some(token(claims, &b.salt, Algorithm::HS256)),
                WrongScope => Some(token(claims, &a.salt, Algorithm::HS512)),
                _ => None,
            };
            if let Some(jwt) = jwt {
                sent.push_str(&claims.to_string());
                request = request.header("content-type", "application/jwt").body(jwt);
            }
        }
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = if content_type.starts_with("text/event-stream") {
        // An endless stream: its first chunk is enough.
        let mut response = response;
        tokio::time::timeout(std::time::Duration::from_millis(300), response.chunk())
            .await
            .ok()
            .and_then(|c| c.ok().flatten())
            .map(|c| String::from_utf8_lossy(&c).into_owned())
            .unwrap_or_default()
    } else {
        let bytes = response.bytes().await.unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    (sent, status, content_type, body)
}

#[tokio::test]
async fn every_endpoint_keeps_tenants_apart() {
    for db in TestDb::all().await {
        // Outside services on a closed loopback port: nothing leaves the machine. The
        // tenants' Actito host is there too, which only the operator can open.
        let s = TestServer::start_with(db, MasterKey::generate(), |c| {
            allow_loopback(c);
            c.apns_url = "http://127.0.0.1:9".into();
            c.google_api_url = "http://127.0.0.1:9".into();
            c.google_token_url = Some("http://127.0.0.1:9/token".into());
        })
        .await;
        let a = set_up(&s, A, "Alpha Widgets Limited", true).await;
        let b = set_up(&s, B, "Bravo Gadgets Incorporated", false).await;
        let cases = matrix(&a);
        let bravo_before = domain::passes::get(&s.db.db, B, &b.passes[0])
            .await
            .unwrap();

        // Every path and method of the OpenAPI document has a row.
        let doc: Value = s
            .http
            .get(s.url("/api/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut uncovered = Vec::new();
        for (path, operations) in doc["paths"].as_object().unwrap() {
            for method in operations.as_object().unwrap().keys() {
                let covered = cases
                    .iter()
                    .any(|c| c.route == path && c.method.as_str().eq_ignore_ascii_case(method));
                if !covered {
                    uncovered.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        assert!(
            uncovered.is_empty(),
            "endpoints without a row in the isolation matrix: {uncovered:?}"
        );

        // Every registered server function has a row too.
        let mut functions: Vec<_> = leptos::server_fn::axum::server_fn_paths()
            .map(|(path, _)| path)
            .filter(|path| !cases.iter().any(|c| c.route == *path))
            .collect();
        functions.sort();
        assert!(
            functions.is_empty(),
            "server functions without a row in the isolation matrix: {functions:?}"
        );
        assert!(leptos::server_fn::axum::server_fn_paths().count() >= 46);

        let mut failures = Vec::new();
        // The markers are found where they belong (so their absence elsewhere means
        // something): cells that showed the caller its own tenant's data.
        let (mut alpha_saw_alpha, mut bravo_saw_bravo) = (0, 0);
        for case in &cases {
            for caller in CALL_ORDER {
                let column = COLUMNS.iter().position(|c| *c == caller).unwrap();
                let expected = case.expect[column];
                let (sent, status, content_type, body) = call(&s, case, caller, &a, &b).await;
                let cell = format!("{} {} as {caller:?}", case.method, case.path);
                if status != expected {
                    failures.push(format!(
                        "{cell}: {status}, expected {expected}: {}",
                        body.chars().take(300).collect::<String>()
                    ));
                }
                if case.path.starts_with("/api/")
                    && status >= 400
                    && content_type != "application/problem+json"
                {
                    failures.push(format!("{cell}: {status} as {content_type:?}"));
                }
                let shows = |t: &Tenant| t.markers.iter().any(|m| body.contains(m.as_str()));
                if caller == Own && shows(&a) {
                    alpha_saw_alpha += 1;
                }
                if caller == OtherAdmin && shows(&b) {
                    bravo_saw_bravo += 1;
                }
                for tenant in [&a, &b] {
                    for secret in &tenant.secrets {
                        if body.contains(secret.as_str()) {
                            failures.push(format!("{cell}: a secret of {} in the body", tenant.id));
                        }
                    }
                    if caller.viewer() == Some(tenant.id) {
                        continue;
                    }
                    for marker in &tenant.markers {
                        // Echoing what the caller itself sent is no leak.
                        if body.contains(marker.as_str()) && !sent.contains(marker.as_str()) {
                            failures.push(format!(
                                "{cell}: {}'s {marker:?} in the body: {}",
                                tenant.id,
                                body.chars().take(300).collect::<String>()
                            ));
                        }
                    }
                }
            }
        }
        assert!(
            alpha_saw_alpha >= 20 && bravo_saw_bravo >= 8,
            "markers found: alpha {alpha_saw_alpha}, bravo {bravo_saw_bravo}"
        );
        assert!(
            failures.is_empty(),
            "{:?}: {} failing cells:\n{}",
            s.backend(),
            failures.len(),
            failures.join("\n")
        );

        // Bravo's data is as bravo left it: nothing alpha's callers did reached it.
        let bravo_after = domain::passes::get(&s.db.db, B, &b.passes[0])
            .await
            .unwrap();
        assert_eq!(bravo_after.version, bravo_before.version);
        assert_eq!(bravo_after.additional_data, bravo_before.additional_data);
        s.stop().await;
    }
}
