//! Integration settings (CONTRACT §5): Actito and SFMC, secrets masked on read.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use domain::actito::settings::{self as actito, ActitoSettingsInput, ActitoSettingsView};
use domain::sfmc::settings::{self as sfmc, SfmcSettingsInput, SfmcSettingsView};

use super::auth::{ApiCaller, IntegrationsWrite};
use super::json::ApiJson;
use crate::problem::Problem;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/{tenantId}/integrations/actito",
            get(get_actito).put(put_actito),
        )
        .route(
            "/api/{tenantId}/integrations/sfmc",
            get(get_sfmc).put(put_sfmc),
        )
}

#[utoipa::path(
    put, path = "/api/{tenantId}/integrations/actito", tag = "integrations",
    params(("tenantId" = String, Path)), request_body = ActitoSettingsInput,
    responses((status = 200, body = ActitoSettingsView), (status = 400), (status = 401), (status = 403), (status = 415, description = "The body is not sent as application/json")),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn put_actito(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<ActitoSettingsInput>,
) -> Result<Json<ActitoSettingsView>, Problem> {
    Ok(Json(
        actito::put(
            state.core.vault(),
            state.core.outbound.private_hosts(),
            &caller.tenant_id,
            input,
            &caller.actor(),
        )
        .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/{tenantId}/integrations/actito", tag = "integrations",
    params(("tenantId" = String, Path)),
    responses((status = 200, body = ActitoSettingsView), (status = 401), (status = 403), (status = 404)),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn get_actito(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
) -> Result<Json<ActitoSettingsView>, Problem> {
    actito::view(state.core.vault(), &caller.tenant_id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found("Actito is not configured for this tenant."))
}

#[utoipa::path(
    put, path = "/api/{tenantId}/integrations/sfmc", tag = "integrations",
    params(("tenantId" = String, Path)), request_body = SfmcSettingsInput,
    responses((status = 200, body = SfmcSettingsView), (status = 400), (status = 401), (status = 403), (status = 415, description = "The body is not sent as application/json")),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn put_sfmc(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<SfmcSettingsInput>,
) -> Result<Json<SfmcSettingsView>, Problem> {
    Ok(Json(
        sfmc::put(
            state.core.vault(),
            &caller.tenant_id,
            input,
            &caller.actor(),
        )
        .await?,
    ))
}

#[utoipa::path(
    get, path = "/api/{tenantId}/integrations/sfmc", tag = "integrations",
    params(("tenantId" = String, Path)),
    responses((status = 200, body = SfmcSettingsView), (status = 401), (status = 403)),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn get_sfmc(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
) -> Result<Json<SfmcSettingsView>, Problem> {
    Ok(Json(sfmc::view(&state.core.db, &caller.tenant_id).await?))
}
