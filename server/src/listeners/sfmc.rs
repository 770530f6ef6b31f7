//! The Journey Builder "push update" custom activity (CONTRACT §7).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use domain::crypto::sha256_hex;
use domain::events::{self, Inbound, Ingested};
use domain::jobs::NewJob;
use domain::processing::{tenant_order, SFMC_EXECUTE};
use domain::sfmc::activity::{self, JourneyContext, PushUpdate};
use domain::sfmc::{jwt, settings};
use domain::{passes, tenants};
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

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/execute"), post(execute))
        .route(&format!("{BASE}/{{operation}}"), post(lifecycle))
        .route(&format!("{BASE}/config.json"), get(config_json))
        .route(&format!("{BASE}/"), get(activity_page))
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

async fn verify(state: &AppState, tenant_id: &str, body: &Bytes) -> Result<Verified, Response> {
    if !tenants::exists(&state.core.db, tenant_id)
        .await
        .map_err(|e| Problem::from(e).into_response())?
    {
        return Err(Problem::not_found("No such tenant.").into_response());
    }
    let token = String::from_utf8_lossy(body)
        .trim()
        .trim_matches('"')
        .to_string();
    let keys = settings::signing_keys(&state.core, tenant_id)
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
        if let Err(e) = settings::mark_verified(&state.core, tenant_id, key_id).await {
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
        (status = 200, description = "Updates scheduled", body = crate::api::openapi::ExecuteAnswer),
        (status = 400, description = "inArguments cannot be read"),
        (status = 401, description = "Bad signature, wrong algorithm or expired token"),
        (status = 404, description = "No such tenant, or no pass matches"),
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
    let update = match activity::merged_arguments(&v.claims)
        .map_err(Problem::bad_request)
        .and_then(|args| {
            activity::push_update(&args).map_err(|errors| Problem {
                errors,
                ..Problem::new(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_FAILED",
                    "Some inArguments are invalid; see errors.",
                )
            })
        }) {
        Ok(update) => update,
        Err(problem) => return reject(problem, &v),
    };
    let dedupe_key = v
        .claims
        .get("jti")
        .and_then(Value::as_str)
        .map_or_else(|| sha256_hex(&v.token), |jti| format!("jti:{jti}"));
    match events::find_duplicate(&state.core.db, &v.tenant_id, "sfmc", &dedupe_key).await {
        Ok(Some((_, Some(first)))) => return Json(first).into_response(),
        Ok(_) => {}
        Err(e) => return Problem::from(e).into_response(),
    }
    let targets = match targets(&state, &v.tenant_id, &update).await {
        Ok(t) if t.is_empty() => {
            return reject(
                Problem::new(
                    StatusCode::NOT_FOUND,
                    "NO_MATCHING_PASS",
                    "No pass matches the given pass id or identifiers.",
                ),
                &v,
            )
        }
        Ok(t) => t,
        Err(problem) => return problem.into_response(),
    };
    let answer = json!({ "scheduled": targets.len(), "passIds": targets });
    let job = NewJob::new(
        &v.tenant_id,
        SFMC_EXECUTE,
        json!({
            "passIds": targets,
            "additionalData": update.additional_data,
            "message": update.message,
            "journeyId": v.journey.journey_id,
            "activityId": v.journey.activity_id,
            "definitionInstanceId": v.journey.definition_instance_id,
            "keyValue": v.journey.key_value,
        }),
    )
    .ordered_by(tenant_order(&v.tenant_id));
    let inbound = inbound(
        &v,
        &headers,
        "pushupdate.execute",
        Some(dedupe_key),
        targets.len() as i64,
    );
    match state
        .core
        .ingestor
        .ingest(inbound, Some(answer.clone()), vec![job])
        .await
    {
        Ok(Ingested::New { .. }) => {
            state.core.jobs_ready.notify_one();
            Json(answer).into_response()
        }
        Ok(Ingested::Duplicate { response, .. }) => {
            Json(response.unwrap_or(answer)).into_response()
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

/// The pass `passId`, else every pass matching any identifier; `passType` restricts.
async fn targets(
    state: &AppState,
    tenant_id: &str,
    update: &PushUpdate,
) -> Result<Vec<String>, Problem> {
    let mut conn = state
        .core
        .db
        .reader()
        .acquire()
        .await
        .map_err(|e| Problem::from(domain::DomainError::from(e)))?;
    let pass_type = update.pass_type.as_deref();
    let found = match &update.pass_id {
        Some(id) => passes::find_by_id(&mut conn, tenant_id, id, pass_type)
            .await?
            .into_iter()
            .collect(),
        None => passes::find_any(&mut conn, tenant_id, &update.identifiers, pass_type).await?,
    };
    Ok(found)
}

/// The Journey Builder lifecycle calls besides execute.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // the path's documented values; the handler matches the text
pub enum LifecycleOperation {
    Publish,
    Validate,
    Save,
    Stop,
}

#[utoipa::path(
    post, path = "/api/{tenantId}/webhooks/listeners/sfmc/actions/pushupdate/{operation}", tag = "listeners",
    params(("tenantId" = String, Path), ("operation" = LifecycleOperation, Path)),
    request_body(content = String, description = "Compact JWT (HS256)"),
    responses(
        (status = 200, description = "Acknowledged", body = crate::api::openapi::LifecycleAnswer),
        (status = 401, description = "Bad signature, wrong algorithm or expired token"),
        (status = 404, description = "No such tenant, or another operation"),
        (status = 413, description = "The body is larger than 256 KiB")
    )
)]
pub async fn lifecycle(
    State(state): State<AppState>,
    Path((tenant_id, operation)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !matches!(operation.as_str(), "publish" | "validate" | "save" | "stop") {
        return Problem::not_found(
            "Journey Builder calls execute, publish, validate, save or stop.",
        )
        .into_response();
    }
    let v = match verify(&state, &tenant_id, &body).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let record = inbound(&v, &headers, &format!("pushupdate.{operation}"), None, 0);
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
    match tenants::exists(&state.core.db, &tenant_id).await {
        Ok(true) => {}
        Ok(false) => return Problem::not_found("No such tenant.").into_response(),
        Err(e) => return Problem::from(e).into_response(),
    }
    let customer_key = match settings::customer_key(&state.core, &tenant_id).await {
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
    responses(
        (status = 200, description = "The activity's configuration page", content_type = "text/html", body = String),
        (status = 404, description = "No such tenant")
    )
)]
pub async fn activity_page(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
) -> Response {
    match tenants::exists(&state.core.db, &tenant_id).await {
        Ok(true) => (
            [(header::CACHE_CONTROL, "no-store")],
            Html(include_str!("../../assets/sfmc-activity.html")),
        )
            .into_response(),
        Ok(false) => Problem::not_found("No such tenant.").into_response(),
        Err(e) => Problem::from(e).into_response(),
    }
}
