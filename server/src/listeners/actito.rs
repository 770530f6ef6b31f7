//! Actito's custom-action and profile listeners (CONTRACT §6).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use domain::actito::envelope::{self, EnvelopeError};
use domain::crypto::sha256_hex;
use domain::events::{Inbound, Ingested};
use domain::jobs::NewJob;
use domain::processing::{tenant_order, ACTITO_CUSTOM_ACTION, ACTITO_PROFILE};
use serde_json::json;
use tower_http::limit::RequestBodyLimitLayer;

use super::audit::{audit_headers, RejectionContext};
use crate::api::auth::{ActitoListenerWrite, ApiCaller};
use crate::problem::Problem;
use crate::state::AppState;

/// CONTRACT §2: the Actito listeners take bodies up to 32 MiB (BULK pushes). The
/// body is read only once the API key is checked.
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The listeners, with their own body limit (merged outside the 5 MiB default).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/{tenantId}/webhooks/listeners/actito/custom-actions/updatePass",
            post(update_pass),
        )
        .route(
            "/api/{tenantId}/webhooks/listeners/actito/profile/{eventType}",
            post(profile_event),
        )
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
}

/// A rejection of an authenticated request: the problem, with the body for the audit.
fn reject(problem: Problem, caller: &ApiCaller<ActitoListenerWrite>, body: &Bytes) -> Response {
    let context = RejectionContext {
        key_id: Some(caller.key.key_id.clone()),
        body: Some(String::from_utf8_lossy(body).into_owned()),
        ..Default::default()
    };
    (Extension(context), problem).into_response()
}

fn envelope_problem(err: EnvelopeError) -> Problem {
    match err {
        EnvelopeError::Malformed(detail) => Problem::bad_request(detail),
        EnvelopeError::Unsupported(detail) => {
            Problem::new(StatusCode::BAD_REQUEST, "UNSUPPORTED_EVENT", detail)
        }
        EnvelopeError::Invalid(errors) => Problem {
            errors,
            ..Problem::new(
                StatusCode::BAD_REQUEST,
                "VALIDATION_FAILED",
                "Some values cannot go onto a pass; see errors.",
            )
        },
    }
}

fn accepted(ingested: &Ingested, items: usize) -> Response {
    let duplicate = matches!(ingested, Ingested::Duplicate { .. });
    Json(json!({ "eventId": ingested.event_id(), "items": items, "duplicate": duplicate }))
        .into_response()
}

/// The items of an envelope refused for what they hold still get their notifyKO.
async fn notify_refused(state: &AppState, tenant_id: &str, links: &[String]) {
    if links.is_empty() {
        return;
    }
    match domain::processing::notify_refused(&state.core.db, tenant_id, links).await {
        Ok(0) => {}
        Ok(_) => state.core.jobs_ready.notify_one(),
        Err(e) => tracing::warn!(error = %e, "cannot queue the notifyKO of a refused envelope"),
    }
}

/// The body as text without copying it: it was just read as JSON, so it is UTF-8.
fn into_text(body: Bytes) -> String {
    String::from_utf8(Vec::from(body))
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[utoipa::path(
    post, path = "/api/{tenantId}/webhooks/listeners/actito/custom-actions/updatePass", tag = "listeners",
    params(("tenantId" = String, Path)),
    request_body(content = Object, description = "Actito custom-action trigger envelope, ONE_BY_ONE or BULK"),
    responses(
        (status = 200, description = "Stored; passes are updated and Actito notified asynchronously", body = crate::api::openapi::ListenerAck),
        (status = 400, description = "Malformed body or another kind of Actito push"),
        (status = 401), (status = 403), (status = 413, description = "The body is larger than 32 MiB")
    ),
    security(("api_key" = ["ActitoListener.Write"]))
)]
pub async fn update_pass(
    caller: ApiCaller<ActitoListenerWrite>,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (envelope_id, items) = match envelope::custom_actions(&body) {
        Ok(read) => (read.id, read.items.len()),
        Err(refused) => {
            notify_refused(&state, &caller.tenant_id, &refused.notify_ko).await;
            return reject(envelope_problem(refused.error), &caller, &body);
        }
    };
    let inbound = Inbound {
        tenant_id: caller.tenant_id.clone(),
        source: "actito",
        kind: "custom-action.updatePass".into(),
        headers: audit_headers(&headers),
        body: into_text(body),
        dedupe_key: Some(format!("custom-action:{envelope_id}")),
        key_id: Some(caller.key.key_id.clone()),
        items: items as i64,
        ..Default::default()
    };
    let job = NewJob::new(&caller.tenant_id, ACTITO_CUSTOM_ACTION, json!({}))
        .ordered_by(tenant_order(&caller.tenant_id));
    match state.core.ingestor.ingest(inbound, None, vec![job]).await {
        Ok(ingested) => {
            state.core.jobs_ready.notify_one();
            accepted(&ingested, items)
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

#[utoipa::path(
    post, path = "/api/{tenantId}/webhooks/listeners/actito/profile/{eventType}", tag = "listeners",
    params(("tenantId" = String, Path), ("eventType" = String, Path, description = "CREATE or UPDATE")),
    request_body(content = Object, description = "Actito profile-table data event envelope, ONE_BY_ONE or BULK"),
    responses(
        (status = 200, description = "Stored; profiles are fetched and passes updated asynchronously", body = crate::api::openapi::ListenerAck),
        (status = 400, description = "Unknown event type, malformed body, another kind of push, or a profile table other than the configured one"),
        (status = 401), (status = 403), (status = 409, description = "Actito is not configured"), (status = 413, description = "The body is larger than 32 MiB")
    ),
    security(("api_key" = ["ActitoListener.Write"]))
)]
pub async fn profile_event(
    caller: ApiCaller<ActitoListenerWrite>,
    State(state): State<AppState>,
    Path((_, event_type)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !matches!(event_type.as_str(), "CREATE" | "UPDATE") {
        let problem = Problem::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_EVENT",
            format!("event type {event_type:?} is not handled here: use CREATE or UPDATE"),
        );
        return reject(problem, &caller, &body);
    }
    let (envelope_id, event) = match envelope::parse(&body)
        .and_then(|e| Ok((e.id.clone(), envelope::profile_event(&e, &event_type)?)))
    {
        Ok(parsed) => parsed,
        Err(err) => return reject(envelope_problem(err), &caller, &body),
    };
    match domain::actito::settings::get(state.core.vault(), &caller.tenant_id).await {
        Ok(Some(settings))
            if !event.table_id.is_empty() && event.table_id != settings.profile_table_id =>
        {
            // Reading the configured table instead would update passes from
            // another table's profiles.
            let problem = Problem {
                errors: vec![domain::FieldError::new(
                    "tableId",
                    format!(
                        "is {}, but Passhook reads profile table {} (set in the Actito settings)",
                        event.table_id, settings.profile_table_id
                    ),
                )],
                ..Problem::new(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_FAILED",
                    "This event is for a profile table Passhook does not read; see errors.",
                )
            };
            return reject(problem, &caller, &body);
        }
        Ok(Some(_)) => {}
        Ok(None) => {
            let problem = Problem::new(
                StatusCode::CONFLICT,
                "NOT_CONFIGURED",
                "Configure the Actito integration (PUT /api/{tenantId}/integrations/actito) before sending profile events.",
            );
            return reject(problem, &caller, &body);
        }
        Err(e) => return Problem::from(e).into_response(),
    }
    let jobs = event
        .profile_ids
        .iter()
        .map(|id| {
            NewJob::new(
                &caller.tenant_id,
                ACTITO_PROFILE,
                json!({ "profileId": id }),
            )
            .ordered_by(format!("profile:{}:{id}", caller.tenant_id))
        })
        .collect();
    let inbound = Inbound {
        tenant_id: caller.tenant_id.clone(),
        source: "actito",
        kind: format!("profile.{event_type}"),
        headers: audit_headers(&headers),
        body: into_text(body),
        // Actito's ONE_BY_ONE and BULK pushes may share an envelope id (the seed's
        // samples do): the profiles are part of what makes a push the same.
        dedupe_key: Some(format!(
            "profile.{event_type}:{envelope_id}:{}",
            sha256_hex(&event.profile_ids.join(","))
        )),
        key_id: Some(caller.key.key_id.clone()),
        items: event.profile_ids.len() as i64,
        ..Default::default()
    };
    match state.core.ingestor.ingest(inbound, None, jobs).await {
        Ok(ingested) => {
            state.core.jobs_ready.notify_one();
            accepted(&ingested, event.profile_ids.len())
        }
        Err(e) => Problem::from(e).into_response(),
    }
}
