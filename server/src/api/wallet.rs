//! Pass types and wallet credentials (scope Integrations.Write), and the `.pkpass`
//! download of a pass (scope Passes.Read).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use domain::wallet::credentials::{
    self, AppleCredentialsInput, CredentialsSummary, GoogleCredentialsInput,
};
use domain::wallet::pass_types::{self, PassType, PassTypeInput};
use domain::wallet::pkpass;

use super::auth::{ApiCaller, IntegrationsWrite, PassesRead};
use super::json::ApiJson;
use crate::problem::Problem;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/{tenantId}/pass-types", get(list_pass_types))
        .route(
            "/api/{tenantId}/pass-types/{passTypeId}",
            get(get_pass_type)
                .put(put_pass_type)
                .delete(delete_pass_type),
        )
        .route("/api/{tenantId}/wallet/credentials", get(list_credentials))
        .route("/api/{tenantId}/wallet/credentials/apple", put(put_apple))
        .route("/api/{tenantId}/wallet/credentials/google", put(put_google))
        .route(
            "/api/{tenantId}/passes/{passId}/apple.pkpass",
            get(download_pkpass),
        )
        .route(
            "/api/{tenantId}/passes/{passId}/google-save-url",
            get(google_save_url),
        )
}

#[utoipa::path(
    get, path = "/api/{tenantId}/pass-types", tag = "wallet",
    params(("tenantId" = String, Path)),
    responses((status = 200, body = Vec<PassType>), (status = 401), (status = 403)),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn list_pass_types(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
) -> Result<Json<Vec<PassType>>, Problem> {
    Ok(Json(
        pass_types::list(&state.core.db, &caller.tenant_id).await?,
    ))
}

#[utoipa::path(
    get, path = "/api/{tenantId}/pass-types/{passTypeId}", tag = "wallet",
    params(("tenantId" = String, Path), ("passTypeId" = String, Path)),
    responses((status = 200, body = PassType), (status = 401), (status = 403), (status = 404)),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn get_pass_type(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<PassType>, Problem> {
    pass_types::get(&state.core.db, &caller.tenant_id, &id)
        .await?
        .map(Json)
        .ok_or_else(|| Problem::not_found("No such pass type."))
}

#[utoipa::path(
    put, path = "/api/{tenantId}/pass-types/{passTypeId}", tag = "wallet",
    params(("tenantId" = String, Path), ("passTypeId" = String, Path, description = "The `passType` of the passes it describes")),
    request_body = PassTypeInput,
    responses((status = 200, body = PassType), (status = 400), (status = 401), (status = 403), (status = 415, description = "The body is not sent as application/json")),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn put_pass_type(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
    ApiJson(input): ApiJson<PassTypeInput>,
) -> Result<Json<PassType>, Problem> {
    Ok(Json(
        pass_types::put(&state.core.db, &caller.tenant_id, &id, input).await?,
    ))
}

#[utoipa::path(
    delete, path = "/api/{tenantId}/pass-types/{passTypeId}", tag = "wallet",
    params(("tenantId" = String, Path), ("passTypeId" = String, Path)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn delete_pass_type(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    pass_types::delete(&state.core.db, &caller.tenant_id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get, path = "/api/{tenantId}/wallet/credentials", tag = "wallet",
    params(("tenantId" = String, Path)),
    responses((status = 200, description = "What is stored, never the secrets", body = Vec<CredentialsSummary>), (status = 401), (status = 403)),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn list_credentials(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
) -> Result<Json<Vec<CredentialsSummary>>, Problem> {
    Ok(Json(
        credentials::summaries(&state.core.db, &caller.tenant_id).await?,
    ))
}

#[utoipa::path(
    put, path = "/api/{tenantId}/wallet/credentials/apple", tag = "wallet",
    params(("tenantId" = String, Path)), request_body = AppleCredentialsInput,
    responses((status = 200, body = CredentialsSummary), (status = 400), (status = 401), (status = 403), (status = 415, description = "The body is not sent as application/json")),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn put_apple(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<AppleCredentialsInput>,
) -> Result<Json<CredentialsSummary>, Problem> {
    Ok(Json(
        credentials::put_apple(state.core.vault(), &caller.tenant_id, input).await?,
    ))
}

#[utoipa::path(
    put, path = "/api/{tenantId}/wallet/credentials/google", tag = "wallet",
    params(("tenantId" = String, Path)), request_body = GoogleCredentialsInput,
    responses((status = 200, body = CredentialsSummary), (status = 400), (status = 401), (status = 403), (status = 415, description = "The body is not sent as application/json")),
    security(("api_key" = ["Integrations.Write"]))
)]
pub async fn put_google(
    caller: ApiCaller<IntegrationsWrite>,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<GoogleCredentialsInput>,
) -> Result<Json<CredentialsSummary>, Problem> {
    Ok(Json(
        credentials::put_google(state.core.vault(), &caller.tenant_id, input).await?,
    ))
}

#[utoipa::path(
    get, path = "/api/{tenantId}/passes/{passId}/apple.pkpass", tag = "wallet",
    params(("tenantId" = String, Path), ("passId" = String, Path)),
    responses(
        (status = 200, description = "The signed pass", content_type = "application/vnd.apple.pkpass"),
        (status = 401), (status = 403), (status = 404),
        (status = 409, description = "No Apple design for the pass type, or no certificate")
    ),
    security(("api_key" = ["Passes.Read"]))
)]
pub async fn download_pkpass(
    caller: ApiCaller<PassesRead>,
    State(state): State<AppState>,
    Path((_, pass_id)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let (bytes, pass) = pkpass::for_pass(
        &state.core,
        &caller.tenant_id,
        &pass_id,
        &state.config.public_url,
    )
    .await?;
    let disposition = format!("attachment; filename=\"{}.pkpass\"", pass.id);
    Ok((
        [
            (header::CONTENT_TYPE, pkpass::CONTENT_TYPE.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::LAST_MODIFIED, http_date(&pass.updated_at)),
        ],
        bytes,
    )
        .into_response())
}

/// RFC 3339 → an HTTP date (`Last-Modified`).
pub fn http_date(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%a, %d %b %Y %H:%M:%S GMT")
                .to_string()
        })
        .unwrap_or_default()
}

#[utoipa::path(
    get, path = "/api/{tenantId}/passes/{passId}/google-save-url", tag = "wallet",
    params(("tenantId" = String, Path), ("passId" = String, Path)),
    responses(
        (status = 200, description = "The link", body = super::schemas::SaveUrl),
        (status = 401), (status = 403), (status = 404),
        (status = 409, description = "No Google design for the pass type, or no service account")
    ),
    security(("api_key" = ["Passes.Read"]))
)]
pub async fn google_save_url(
    caller: ApiCaller<PassesRead>,
    State(state): State<AppState>,
    Path((_, pass_id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, Problem> {
    let pass = domain::passes::get(&state.core.db, &caller.tenant_id, &pass_id).await?;
    let design = pass_types::get(&state.core.db, &caller.tenant_id, &pass.pass_type)
        .await?
        .and_then(|t| t.google)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "NOT_CONFIGURED",
                "The pass type has no Google design.",
            )
        })?;
    let account = credentials::google(state.core.vault(), &caller.tenant_id)
        .await?
        .ok_or_else(|| {
            Problem::new(
                StatusCode::CONFLICT,
                "NOT_CONFIGURED",
                "Upload the Google service account first.",
            )
        })?;
    let url = domain::wallet::google::save_url(&account, &design, &pass).map_err(|e| {
        Problem::new(
            StatusCode::CONFLICT,
            "NOT_CONFIGURED",
            e.message().to_string(),
        )
    })?;
    Ok(Json(serde_json::json!({ "saveUrl": url })))
}
