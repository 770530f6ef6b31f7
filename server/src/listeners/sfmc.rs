//! The Journey Builder "push update" custom activity (CONTRACT §7).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use domain::events::{self, Inbound};
use domain::sfmc::activity::JourneyContext;
use domain::sfmc::{execute, jwt, settings};
use serde_json::{json, Value};
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;

use super::audit::{audit_headers, RejectionContext};
use crate::problem::Problem;
use crate::state::AppState;

const BASE: &str = "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate";

/// A Journey Builder call is one JWT of a few KiB: larger bodies get 413 before
/// being read, well before any key check.
pub const BODY_LIMIT: usize = 256 * 1024;

pub use crate::tenant_rate::UNSIGNED_CALLS_PER_MINUTE;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/execute"), post(execute))
        .route(&format!("{BASE}/{{operation}}"), post(lifecycle))
        .route(&format!("{BASE}/config.json"), get(config_json))
        // Journey Builder loads `{endpoint}/index.html` unless told otherwise.
        .route(&format!("{BASE}/"), get(activity_page))
        .route(&format!("{BASE}/index.html"), get(activity_page))
        .route(BASE, get(to_activity_page))
        .route(&format!("{BASE}/postmonger.js"), get(postmonger_js))
        .route(&format!("{BASE}/activity.js"), get(activity_js))
        .route(&format!("{BASE}/icon.svg"), get(icon_svg))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
}

/// A verified Journey Builder call.
struct Verified {
    tenant_id: String,
    key_id: String,
    claims: Value,
    token: String,
    journey: JourneyContext,
}

/// `Err(404)` for a tenant that does not exist.
async fn known_tenant(state: &AppState, tenant_id: &str) -> Result<(), Response> {
    match state.core.tenants.exists(&state.core.db, tenant_id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Problem::not_found("No such tenant.").into_response()),
        Err(e) => Err(Problem::from(e).into_response()),
    }
}

async fn verify(state: &AppState, tenant_id: &str, body: &Bytes) -> Result<Verified, Response> {
    known_tenant(state, tenant_id).await?;
    let token = String::from_utf8_lossy(body)
        .trim()
        .trim_matches('"')
        .to_string();
    let keys = settings::signing_keys(state.core.vault(), tenant_id)
        .await
        .map_err(|e| Problem::from(e).into_response())?;
    match jwt::verify(&token, &keys) {
        Ok((key_id, claims)) => {
            note_verified(state, tenant_id, &key_id).await;
            let journey = JourneyContext::from_claims(&claims);
            Ok(Verified {
                tenant_id: tenant_id.to_string(),
                key_id,
                claims,
                token,
                journey,
            })
        }
        Err(e) => Err(Problem::new(StatusCode::UNAUTHORIZED, e.code(), e.detail()).into_response()),
    }
}

/// Notes which key verified, at most every 30 s per key (the console shows it).
async fn note_verified(state: &AppState, tenant_id: &str, key_id: &str) {
    let mark = format!("sfmc/{tenant_id}/{key_id}");
    let due = state.marks.due(&mark, Duration::from_secs(30));
    if due {
        if let Err(e) = settings::mark_verified(&state.core.db, tenant_id, key_id).await {
            tracing::warn!(error = %e, "cannot note the verifying key");
        }
    }
}

/// A rejection after verification: the problem, with the claims and journey for the audit.
fn reject(problem: Problem, v: &Verified) -> Response {
    let context = RejectionContext {
        key_id: Some(v.key_id.clone()),
        body: Some(v.claims.to_string()),
        journey: v.journey.clone(),
    };
    (Extension(context), problem).into_response()
}

fn inbound(
    v: &Verified,
    headers: &HeaderMap,
    kind: &str,
    dedupe_key: Option<String>,
    items: i64,
) -> Inbound {
    Inbound {
        replay_of: None,
        tenant_id: v.tenant_id.clone(),
        source: "sfmc",
        kind: kind.into(),
        headers: audit_headers(headers),
        // The claims, not the token: readable, and not a credential to replay.
        body: v.claims.to_string(),
        dedupe_key,
        key_id: Some(v.key_id.clone()),
        journey: v.journey.clone(),
        items,
    }
}

#[utoipa::path(
    post, path = "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/execute", tag = "listeners",
    params(("tenantId" = String, Path)),
    request_body(content = String, description = "Compact JWT (HS256) signed with the tenant's SFMC signing key"),
    responses(
        (status = 200, description = "Updates scheduled", body = crate::api::schemas::ExecuteAnswer),
        (status = 400, description = "inArguments cannot be read"),
        (status = 401, description = "Bad signature, wrong algorithm or expired token"),
        (status = 404, description = "No such tenant, or no pass matches (unless the tenant chose to answer 200 with nothing scheduled)"),
        (status = 413, description = "The body is larger than 256 KiB")
    )
)]
pub async fn execute(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v = match verify(&state, &tenant_id, &body).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let call = execute::Call {
        tenant_id: &v.tenant_id,
        key_id: &v.key_id,
        claims: &v.claims,
        token: &v.token,
        journey: &v.journey,
        headers: audit_headers(&headers),
    };
    let refusal = match execute::accept(&state.core, call).await {
        Ok(answer) => return Json(answer).into_response(),
        Err(refusal) => refusal,
    };
    let problem = match refusal {
        execute::Refusal::Unreadable(detail) => Problem::bad_request(detail),
        execute::Refusal::Invalid(errors) => Problem {
            errors,
            ..Problem::new(
                StatusCode::BAD_REQUEST,
                "VALIDATION_FAILED",
                "Some inArguments are invalid; see errors.",
            )
        },
        execute::Refusal::NoPass => {
            Problem::new(StatusCode::NOT_FOUND, "NO_MATCHING_PASS", execute::NO_PASS)
        }
        execute::Refusal::Store(e) => return Problem::from(e).into_response(),
    };
    reject(problem, &v)
}

/// The Journey Builder lifecycle calls besides execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum LifecycleOperation {
    Publish,
    Validate,
    Save,
    Stop,
}

impl LifecycleOperation {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "publish" => LifecycleOperation::Publish,
            "validate" => LifecycleOperation::Validate,
            "save" => LifecycleOperation::Save,
            "stop" => LifecycleOperation::Stop,
            _ => return None,
        })
    }

    /// The event kind it is recorded as.
    fn kind(self) -> &'static str {
        match self {
            LifecycleOperation::Publish => "pushupdate.publish",
            LifecycleOperation::Validate => "pushupdate.validate",
            LifecycleOperation::Save => "pushupdate.save",
            LifecycleOperation::Stop => "pushupdate.stop",
        }
    }
}

#[utoipa::path(
    post, path = "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/{operation}", tag = "listeners",
    params(("tenantId" = String, Path), ("operation" = LifecycleOperation, Path)),
    request_body(content = String, description = "Compact JWT (HS256), or the plain JSON object Journey Builder often sends instead (`activityObjectID`, `interactionId`, `originalDefinitionId`, `interactionKey`, `interactionVersion`)"),
    responses(
        (status = 200, description = "Acknowledged (a plain JSON call is recorded as unsigned and changes nothing)", body = crate::api::schemas::LifecycleAnswer),
        (status = 400, description = "Neither a JWT nor a JSON object"),
        (status = 401, description = "Bad signature, wrong algorithm or expired token"),
        (status = 404, description = "No such tenant, or another operation"),
        (status = 413, description = "The body is larger than 256 KiB"),
        (status = 429, description = "Too many unsigned calls for this tenant; see Retry-After")
    )
)]
pub async fn lifecycle(
    State(state): State<AppState>,
    Path((tenant_id, operation)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(operation) = LifecycleOperation::parse(&operation) else {
        return Problem::not_found(
            "Journey Builder calls execute, publish, validate, save or stop.",
        )
        .into_response();
    };
    // Journey Builder often sends these as plain JSON even with `useJwt` set, and a
    // refused validate or publish blocks the journey's activation.
    if body.trim_ascii_start().starts_with(b"{") {
        return unsigned_lifecycle(&state, &tenant_id, operation, &headers, &body).await;
    }
    let v = match verify(&state, &tenant_id, &body).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let record = inbound(&v, &headers, operation.kind(), None, 0);
    match state
        .core
        .ingestor
        .ingest(record, Some(json!({})), vec![])
        .await
    {
        Ok(ingested) => {
            if let Err(e) = events::settle(&state.core.db, ingested.event_id(), None).await {
                tracing::warn!(error = %e, "cannot settle a handshake event");
            }
            Json(json!({})).into_response()
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

/// A lifecycle call without a JWT: answered 200 and recorded as unsigned (within
/// the tenant's budget); it changes nothing, so nobody gains anything by forging one.
async fn unsigned_lifecycle(
    state: &AppState,
    tenant_id: &str,
    operation: LifecycleOperation,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    if let Err(response) = known_tenant(state, tenant_id).await {
        return response;
    }
    let Ok(call) = serde_json::from_slice::<serde_json::Map<String, Value>>(body) else {
        return Problem::bad_request("The body must be a JWT or a JSON object.").into_response();
    };
    if let Err(wait) = state.unsigned_calls.check(tenant_id) {
        let problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "Too many unsigned Journey Builder calls for this tenant; retry later.",
        );
        return problem.with_retry_after(wait);
    }
    let call = Value::Object(call);
    let record = Inbound {
        tenant_id: tenant_id.to_string(),
        source: "sfmc",
        kind: operation.kind().into(),
        headers: audit_headers(headers),
        body: call.to_string(),
        journey: JourneyContext::from_claims(&call),
        ..Default::default()
    };
    if let Err(e) = events::record_unsigned(&state.core.db, &record).await {
        return Problem::from(e).into_response();
    }
    Json(json!({})).into_response()
}

/// The bare activity path: Journey Builder and browsers resolve the page's relative
/// links (`activity.js`, `icon.svg`) against a path that ends in `/`. The target is
/// relative (`pushupdate/` from `…/actions/pushupdate`), so nothing the caller sent
/// reaches the header.
async fn to_activity_page() -> Response {
    axum::response::Redirect::permanent("pushupdate/").into_response()
}

/// The activity's config.json, with every URL from the public URL.
#[utoipa::path(
    get, path = "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/config.json", tag = "listeners",
    params(("tenantId" = String, Path)),
    responses(
        (status = 200, description = "Journey Builder's config.json for the activity", body = Object),
        (status = 404, description = "No such tenant")
    )
)]
pub async fn config_json(State(state): State<AppState>, Path(tenant_id): Path<String>) -> Response {
    if let Err(response) = known_tenant(&state, &tenant_id).await {
        return response;
    }
    let customer_key = match settings::customer_key(&state.core.db, &tenant_id).await {
        Ok(key) => key,
        Err(e) => return Problem::from(e).into_response(),
    };
    let base = format!(
        "{}{}",
        state.config.public_url,
        BASE.replace("{tenantId}", &tenant_id)
    );
    Json(activity_config(&base, customer_key.as_deref())).into_response()
}

pub fn activity_config(base: &str, customer_key: Option<&str>) -> Value {
    let endpoint = |op: &str| {
        let mut e = json!({ "url": format!("{base}/{op}"), "verb": "POST", "useJwt": true });
        if let Some(key) = customer_key {
            e["customerKey"] = json!(key);
        }
        e
    };
    let mut execute = endpoint("execute");
    execute["inArguments"] = json!([]);
    execute["outArguments"] = json!([]);
    execute["timeout"] = json!(10000);
    execute["retryCount"] = json!(3);
    execute["retryDelay"] = json!(1000);
    json!({
        "workflowApiVersion": "1.1",
        "metaData": { "icon": "icon.svg", "category": "message", "isConfigured": false },
        "type": "REST",
        "lang": { "en-US": { "name": "Passhook push update", "description": "Updates the contact's wallet passes and notifies them." } },
        "arguments": { "execute": execute },
        "configurationArguments": {
            "save": endpoint("save"),
            "publish": endpoint("publish"),
            "validate": endpoint("validate"),
            "stop": endpoint("stop"),
        },
        "wizardSteps": [{ "label": "Configure the update", "key": "configure" }],
        "userInterfaces": { "configModal": { "height": 560, "width": 720, "fullscreen": false } },
        "schema": { "arguments": { "execute": { "inArguments": [], "outArguments": [] } } }
    })
}

/// Postmonger (vendored from npm), for the activity page.
#[utoipa::path(
    get, path = "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/postmonger.js", tag = "listeners",
    params(("tenantId" = String, Path)),
    responses((status = 200, description = "Postmonger", content_type = "text/javascript", body = String))
)]
pub async fn postmonger_js() -> Response {
    asset(
        "text/javascript",
        include_str!("../../assets/postmonger.js"),
    )
    .await
}

/// The activity page's script.
#[utoipa::path(
    get, path = "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/activity.js", tag = "listeners",
    params(("tenantId" = String, Path)),
    responses((status = 200, description = "The page's script", content_type = "text/javascript", body = String))
)]
pub async fn activity_js() -> Response {
    asset(
        "text/javascript",
        include_str!("../../assets/sfmc-activity.js"),
    )
    .await
}

/// The activity's icon in Journey Builder.
#[utoipa::path(
    get, path = "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/icon.svg", tag = "listeners",
    params(("tenantId" = String, Path)),
    responses((status = 200, description = "The icon", content_type = "image/svg+xml", body = String))
)]
pub async fn icon_svg() -> Response {
    asset("image/svg+xml", include_str!("../../assets/icon.svg")).await
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The configuration page Journey Builder frames for a marketer.
#[utoipa::path(
    get, path = "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/", tag = "listeners",
    params(("tenantId" = String, Path)),
    description = "Also served at `…/pushupdate/index.html`, where Journey Builder looks by default; the bare `…/pushupdate` redirects here.",
    responses(
        (status = 200, description = "The activity's configuration page", content_type = "text/html", body = String),
        (status = 404, description = "No such tenant")
    )
)]
pub async fn activity_page(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> Response {
    if let Err(response) = known_tenant(&state, &tenant_id).await {
        return response;
    }
    (
        [(header::CACHE_CONTROL, "no-store")],
        Html(include_str!("../../assets/sfmc-activity.html")),
    )
        .into_response()
}
