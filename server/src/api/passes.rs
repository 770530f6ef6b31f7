//! The passes management API (CONTRACT §4).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use domain::passes::apply::apply;
use domain::passes::{self, Cause, Data, NewPass, Pass, PassFilter, PassPage, Update};
use serde::Deserialize;

use super::auth::{ApiCaller, PassesRead, PassesWrite};
use super::json::ApiJson;
use crate::problem::Problem;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/{tenantId}/passes",
            get(search_passes).post(create_pass),
        )
        .route(
            "/api/{tenantId}/passes/{passId}",
            get(get_pass).patch(patch_pass),
        )
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PassPatch {
    /// Keys to set; `null` removes a key.
    #[schema(value_type = Object)]
    pub additional_data: Data,
}

#[utoipa::path(
    post, path = "/api/{tenantId}/passes", tag = "passes",
    params(("tenantId" = String, Path, description = "Tenant id")),
    request_body = NewPass,
    responses(
        (status = 201, description = "The new pass", body = Pass),
        (status = 400, description = "Invalid body"), (status = 401), (status = 403),
        (status = 409, description = "A pass with this id exists"),
        (status = 415, description = "The body is not sent as application/json")
    ),
    security(("api_key" = ["Passes.Write"]))
)]
pub async fn create_pass(
    caller: ApiCaller<PassesWrite>,
    State(state): State<AppState>,
    ApiJson(new): ApiJson<NewPass>,
) -> Result<(StatusCode, Json<Pass>), Problem> {
    let pass = passes::create(&state.core.db, &caller.tenant_id, new).await?;
    Ok((StatusCode::CREATED, Json(pass)))
}

#[utoipa::path(
    get, path = "/api/{tenantId}/passes/{passId}", tag = "passes",
    params(("tenantId" = String, Path), ("passId" = String, Path)),
    responses((status = 200, body = Pass), (status = 401), (status = 403), (status = 404)),
    security(("api_key" = ["Passes.Read"]))
)]
pub async fn get_pass(
    caller: ApiCaller<PassesRead>,
    State(state): State<AppState>,
    Path((_, pass_id)): Path<(String, String)>,
) -> Result<Json<Pass>, Problem> {
    Ok(Json(
        passes::get(&state.core.db, &caller.tenant_id, &pass_id).await?,
    ))
}

#[utoipa::path(
    get, path = "/api/{tenantId}/passes", tag = "passes",
    params(
        ("tenantId" = String, Path),
        ("identifier.email" = Option<String>, Query, description = "Any `identifier.<name>=<value>`; all given must match. `email` ignores case and surrounding spaces."),
        ("passType" = Option<String>, Query),
        ("cursor" = Option<String>, Query, description = "`next` of the previous page"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "1 to 500, default 100")
    ),
    responses((status = 200, body = PassPage), (status = 400), (status = 401), (status = 403)),
    security(("api_key" = ["Passes.Read"]))
)]
pub async fn search_passes(
    caller: ApiCaller<PassesRead>,
    State(state): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<PassPage>, Problem> {
    let mut filter = PassFilter::default();
    let (mut cursor, mut limit) = (None, super::page::Limit::DEFAULT);
    for (name, value) in params {
        match name.as_str() {
            "passType" => filter.pass_type = Some(value),
            "cursor" => cursor = Some(value),
            "limit" => {
                limit = value.parse().map_err(Problem::bad_request)?
            }
            _ => match name.strip_prefix("identifier.") {
                Some(id_name) if !id_name.is_empty() => {
                    filter.identifiers.push((id_name.to_string(), value))
                }
                _ => {
                    return Err(Problem::bad_request(format!(
                        "unknown query parameter {name:?}; use identifier.<name>, passType, cursor or limit"
                    )))
                }
            },
        }
    }
    let page = passes::search(
        &state.core.db,
        &caller.tenant_id,
        &filter,
        cursor.as_deref(),
        limit.get(),
    )
    .await?;
    Ok(Json(page))
}

#[utoipa::path(
    patch, path = "/api/{tenantId}/passes/{passId}", tag = "passes",
    params(("tenantId" = String, Path), ("passId" = String, Path)),
    request_body = PassPatch,
    responses(
        (status = 200, description = "The pass; its version rises only when content changed", body = Pass),
        (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 415, description = "The body is not sent as application/json")
    ),
    security(("api_key" = ["Passes.Write"]))
)]
pub async fn patch_pass(
    caller: ApiCaller<PassesWrite>,
    State(state): State<AppState>,
    Path((_, pass_id)): Path<(String, String)>,
    ApiJson(patch): ApiJson<PassPatch>,
) -> Result<Json<Pass>, Problem> {
    let cause = Cause::new("api", Some(&caller.key.key_id));
    let update = Update {
        changes: &patch.additional_data,
        cause: &cause,
        message: None,
    };
    let patched = apply(&state.core.db, &caller.tenant_id, &pass_id, update).await?;
    Ok(Json(patched.pass))
}
