//! Actito's custom-action and profile listeners (CONTRACT §6).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use domain::actito::envelope::EnvelopeError;
use domain::actito::{custom_action, profile};
use domain::events::Ingested;
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
fn reject(problem: Problem, caller: &ApiCaller<ActitoListenerWrite>, body: &[u8]) -> Response {
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

#[utoipa::path(
    post, path = "/api/{tenantId}/webhooks/listeners/actito/custom-actions/updatePass", tag = "listeners",
    params(("tenantId" = String, Path)),
    request_body(content = Object, description = "Actito custom-action trigger envelope, ONE_BY_ONE or BULK"),
    responses(
        (status = 200, description = "Stored; passes are updated and Actito notified asynchronously", body = crate::api::schemas::ListenerAck),
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
    let request = custom_action::Request {
        tenant_id: caller.tenant_id.clone(),
        key_id: caller.key.key_id.clone(),
        headers: audit_headers(&headers),
        body: Vec::from(body),
    };
    match custom_action::accept(&state.core, request).await {
        Ok(accepted) => self::accepted(&accepted.ingested, accepted.items),
        Err(custom_action::Refusal::Envelope { error, body }) => {
            reject(envelope_problem(error), &caller, &body)
        }
        Err(custom_action::Refusal::Store(e)) => Problem::from(e).into_response(),
    }
}

#[utoipa::path(
    post, path = "/api/{tenantId}/webhooks/listeners/actito/profile/{eventType}", tag = "listeners",
    params(("tenantId" = String, Path), ("eventType" = String, Path, description = "CREATE or UPDATE")),
    request_body(content = Object, description = "Actito profile-table data event envelope, ONE_BY_ONE or BULK"),
    responses(
        (status = 200, description = "Stored; profiles are fetched and passes updated asynchronously", body = crate::api::schemas::ListenerAck),
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
    let request = profile::Request {
        tenant_id: caller.tenant_id.clone(),
        key_id: caller.key.key_id.clone(),
        event_type,
        headers: audit_headers(&headers),
        body: Vec::from(body),
    };
    let (problem, body) = match profile::accept(&state.core, request).await {
        Ok(accepted) => return self::accepted(&accepted.ingested, accepted.profiles),
        Err(refusal) => profile_problem(refusal),
    };
    match body {
        Some(body) => reject(problem, &caller, &body),
        None => problem.into_response(),
    }
}

/// The problem of a refused profile event, with the body to keep in the audit (none
/// when the event could not be stored: that is not the caller's fault).
fn profile_problem(refusal: profile::Refusal) -> (Problem, Option<Vec<u8>>) {
    match refusal {
        profile::Refusal::UnsupportedEvent { event_type, body } => (
            Problem::new(
                StatusCode::BAD_REQUEST,
                "UNSUPPORTED_EVENT",
                format!("event type {event_type:?} is not handled here: use CREATE or UPDATE"),
            ),
            Some(body),
        ),
        profile::Refusal::Envelope { error, body } => (envelope_problem(error), Some(body)),
        profile::Refusal::OtherTable {
            table_id,
            configured,
            body,
        } => (
            Problem {
                errors: vec![domain::FieldError::new(
                    "tableId",
                    format!(
                        "is {table_id}, but Passhook reads profile table {configured} (set in the Actito settings)"
                    ),
                )],
                ..Problem::new(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_FAILED",
                    "This event is for a profile table Passhook does not read; see errors.",
                )
            },
            Some(body),
        ),
        profile::Refusal::NotConfigured { body } => (
            Problem::new(
                StatusCode::CONFLICT,
                "NOT_CONFIGURED",
                "Configure the Actito integration (PUT /api/{tenantId}/integrations/actito) before sending profile events.",
            ),
            Some(body),
        ),
        profile::Refusal::Store(e) => (Problem::from(e), None),
    }
}
