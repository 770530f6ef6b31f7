//! The audit API: inbound events and deliveries (CONTRACT §4).

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use domain::deliveries::{self, ChannelFilter, DeliveryFilter, DeliveryPage};
use domain::events::{self, EventFilter, EventPage};
use serde::Deserialize;

use super::auth::{ApiCaller, AuditRead};
use super::page::Limit;
use crate::problem::Problem;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/{tenantId}/events", get(list_events))
        .route("/api/{tenantId}/deliveries", get(list_deliveries))
        .route(
            "/api/{tenantId}/deliveries/{deliveryId}/retry",
            axum::routing::post(retry_delivery),
        )
}

#[derive(Deserialize, utoipa::IntoParams)]
// The handler takes `Result<Query<…>>`, from which utoipa can't tell where these go.
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventQuery {
    /// `actito` or `sfmc`
    source: Option<String>,
    /// `accepted`, `rejected`, `processed` or `failed`
    status: Option<String>,
    kind: Option<String>,
    /// A cause code, e.g. `UNAUTHENTICATED` or `NO_MATCHING_PASS`
    reason: Option<String>,
    cursor: Option<String>,
    #[param(inline)]
    limit: Option<Limit>,
}

#[utoipa::path(
    get, path = "/api/{tenantId}/events", tag = "audit",
    params(("tenantId" = String, Path), EventQuery),
    responses((status = 200, body = EventPage), (status = 400), (status = 401), (status = 403)),
    security(("api_key" = ["Audit.Read"]))
)]
pub async fn list_events(
    caller: ApiCaller<AuditRead>,
    State(state): State<AppState>,
    query: Result<Query<EventQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<EventPage>, Problem> {
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let filter = EventFilter {
        source: q.source,
        status: q.status,
        kind: q.kind,
        reason: q.reason,
        ..Default::default()
    };
    let page = events::list(
        &state.core.db,
        &caller.tenant_id,
        &filter,
        q.cursor.as_deref(),
        q.limit.unwrap_or_default().get(),
    )
    .await?;
    Ok(Json(page))
}

#[derive(Deserialize, utoipa::IntoParams)]
// The handler takes `Result<Query<…>>`, from which utoipa can't tell where these go.
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryQuery {
    pass_id: Option<String>,
    event_id: Option<String>,
    /// `wallet` (Apple and Google), `apple`, `google` or `actito-callback`
    #[param(inline)]
    channel: Option<ChannelFilter>,
    /// `pending`, `retrying`, `delivered` or `failed`
    status: Option<String>,
    cursor: Option<String>,
    #[param(inline)]
    limit: Option<Limit>,
}

#[utoipa::path(
    get, path = "/api/{tenantId}/deliveries", tag = "audit",
    params(("tenantId" = String, Path), DeliveryQuery),
    responses((status = 200, body = DeliveryPage), (status = 400), (status = 401), (status = 403)),
    security(("api_key" = ["Audit.Read"]))
)]
pub async fn list_deliveries(
    caller: ApiCaller<AuditRead>,
    State(state): State<AppState>,
    query: Result<Query<DeliveryQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<DeliveryPage>, Problem> {
    let Query(q) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let filter = DeliveryFilter {
        pass_id: q.pass_id,
        event_id: q.event_id,
        channel: q.channel,
        status: q.status,
        ..Default::default()
    };
    let page = deliveries::list(
        &state.core.db,
        &caller.tenant_id,
        &filter,
        q.cursor.as_deref(),
        q.limit.unwrap_or_default().get(),
    )
    .await?;
    Ok(Json(page))
}

#[utoipa::path(
    post, path = "/api/{tenantId}/deliveries/{deliveryId}/retry", tag = "audit",
    params(("tenantId" = String, Path), ("deliveryId" = String, Path)),
    responses(
        (status = 202, description = "Queued again"),
        (status = 401), (status = 403), (status = 404),
        (status = 409, description = "The delivery has not failed")
    ),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn retry_delivery(
    caller: ApiCaller<super::auth::IntegrationsWrite>,
    State(state): State<AppState>,
    axum::extract::Path((_, delivery_id)): axum::extract::Path<(String, String)>,
) -> Result<axum::http::StatusCode, Problem> {
    domain::redeliver::retry(&state.core, &caller.tenant_id, &delivery_id).await?;
    Ok(axum::http::StatusCode::ACCEPTED)
}
