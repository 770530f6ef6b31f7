//! Apple's PassKit web service, under `/api/{tenantId}/wallet/apple` (the passes'
//! `webServiceURL`): device registration, changed serial numbers, the latest pass
//! and device logs. Devices authenticate with `ApplePass <authenticationToken>`.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::wallet::{pass_types, pkpass, registrations};
use domain::{passes, DomainError};
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use crate::api::wallet::http_date;
use crate::problem::Problem;
use crate::state::AppState;

const BASE: &str = "/api/{tenantId}/wallet/apple/v1";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            &format!("{BASE}/devices/{{deviceId}}/registrations/{{passTypeIdentifier}}/{{serial}}"),
            post(register).delete(unregister),
        )
        .route(
            &format!("{BASE}/devices/{{deviceId}}/registrations/{{passTypeIdentifier}}"),
            get(serials),
        )
        .route(
            &format!("{BASE}/passes/{{passTypeIdentifier}}/{{serial}}"),
            get(latest),
        )
        .route(&format!("{BASE}/log"), post(log))
}

fn unauthorized() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "Send Authorization: ApplePass <authenticationToken> of this pass.",
    )
}

/// Checks the device's token for this pass (in constant time) and that the pass is
/// of this pass type identifier; every failure looks the same.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    tenant_id: &str,
    type_id: &str,
    serial: &str,
) -> Result<passes::Pass, Problem> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("ApplePass "))
        .ok_or_else(unauthorized)?;
    let expected = pkpass::authentication_token(&state.core, tenant_id, serial);
    if !bool::from(presented.trim().as_bytes().ct_eq(expected.as_bytes())) {
        return Err(unauthorized());
    }
    let pass = match passes::get(&state.core.db, tenant_id, serial).await {
        Ok(pass) => pass,
        Err(DomainError::NotFound(_)) => return Err(unauthorized()),
        Err(e) => return Err(e.into()),
    };
    let design = pass_types::get(&state.core.db, tenant_id, &pass.pass_type)
        .await?
        .and_then(|t| t.apple);
    match design {
        Some(d) if d.pass_type_identifier == type_id => Ok(pass),
        _ => Err(unauthorized()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    push_token: String,
}

/// Serial numbers of a device's passes changed since a tag.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)] // documents the JSON the handler builds
pub struct SerialNumbers {
    serial_numbers: Vec<String>,
    /// Give it back as `passesUpdatedSince`.
    last_updated: String,
}

/// Device logs, as Apple Wallet sends them.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct DeviceLogs {
    logs: Vec<String>,
}

#[utoipa::path(
    post, path = "/api/{tenantId}/wallet/apple/v1/devices/{deviceId}/registrations/{passTypeIdentifier}/{serial}",
    tag = "wallet",
    description = "PassKit web service: a device registers for a pass's updates.",
    params(
        ("tenantId" = String, Path), ("deviceId" = String, Path),
        ("passTypeIdentifier" = String, Path), ("serial" = String, Path, description = "The pass id"),
        ("Authorization" = String, Header, description = "`ApplePass <authenticationToken>` of the pass")
    ),
    request_body(content = Registration, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered"),
        (status = 200, description = "Already registered"),
        (status = 400, description = "The body is not {\"pushToken\": …}"),
        (status = 401, description = "Not this pass's token, or no such pass")
    )
)]
pub async fn register(
    State(state): State<AppState>,
    Path((tenant_id, device_id, type_id, serial)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<StatusCode, Problem> {
    authorize(&state, &headers, &tenant_id, &type_id, &serial).await?;
    let registration: Registration = serde_json::from_slice(&body)
        .map_err(|_| Problem::bad_request("The body must be {\"pushToken\": \"…\"}."))?;
    let new = registrations::register(
        &state.core.db,
        &tenant_id,
        &device_id,
        &type_id,
        &serial,
        &registration.push_token,
    )
    .await?;
    Ok(if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    })
}

#[utoipa::path(
    delete, path = "/api/{tenantId}/wallet/apple/v1/devices/{deviceId}/registrations/{passTypeIdentifier}/{serial}",
    tag = "wallet",
    description = "PassKit web service: a device stops following a pass.",
    params(
        ("tenantId" = String, Path), ("deviceId" = String, Path),
        ("passTypeIdentifier" = String, Path), ("serial" = String, Path, description = "The pass id"),
        ("Authorization" = String, Header, description = "`ApplePass <authenticationToken>` of the pass")
    ),
    responses(
        (status = 200, description = "Unregistered"),
        (status = 401, description = "Not this pass's token, or no such pass")
    )
)]
pub async fn unregister(
    State(state): State<AppState>,
    Path((tenant_id, device_id, type_id, serial)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    authorize(&state, &headers, &tenant_id, &type_id, &serial).await?;
    registrations::unregister(&state.core.db, &tenant_id, &device_id, &type_id, &serial).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct Since {
    /// `lastUpdated` of the previous answer
    passes_updated_since: Option<String>,
}

#[utoipa::path(
    get, path = "/api/{tenantId}/wallet/apple/v1/devices/{deviceId}/registrations/{passTypeIdentifier}",
    tag = "wallet",
    description = "PassKit web service: the serial numbers of a device's passes changed since a tag.",
    params(
        ("tenantId" = String, Path), ("deviceId" = String, Path),
        ("passTypeIdentifier" = String, Path), Since
    ),
    responses(
        (status = 200, description = "Changed passes", body = SerialNumbers),
        (status = 204, description = "Nothing changed"),
        (status = 400, description = "The query cannot be read")
    )
)]
pub async fn serials(
    State(state): State<AppState>,
    Path((tenant_id, device_id, type_id)): Path<(String, String, String)>,
    Query(since): Query<Since>,
) -> Result<Response, Problem> {
    let since = since
        .passes_updated_since
        .and_then(|t| t.parse::<i64>().ok());
    let (serials, tag) =
        registrations::updated_since(&state.core.db, &tenant_id, &device_id, &type_id, since)
            .await?;
    if serials.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(Json(json!({ "serialNumbers": serials, "lastUpdated": tag.to_string() })).into_response())
}

#[utoipa::path(
    get, path = "/api/{tenantId}/wallet/apple/v1/passes/{passTypeIdentifier}/{serial}",
    tag = "wallet",
    description = "PassKit web service: the latest version of a pass.",
    params(
        ("tenantId" = String, Path), ("passTypeIdentifier" = String, Path),
        ("serial" = String, Path, description = "The pass id"),
        ("Authorization" = String, Header, description = "`ApplePass <authenticationToken>` of the pass"),
        ("If-Modified-Since" = Option<String>, Header)
    ),
    responses(
        (status = 200, description = "The signed pass", content_type = "application/vnd.apple.pkpass"),
        (status = 304, description = "Not modified since If-Modified-Since"),
        (status = 401, description = "Not this pass's token, or no such pass"),
        (status = 409, description = "The pass type has no Apple design, or no certificate")
    )
)]
pub async fn latest(
    State(state): State<AppState>,
    Path((tenant_id, type_id, serial)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let pass = authorize(&state, &headers, &tenant_id, &type_id, &serial).await?;
    let modified = http_date(&pass.updated_at);
    let since = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok());
    if let (Some(since), Ok(updated)) = (
        since,
        chrono::DateTime::parse_from_rfc3339(&pass.updated_at),
    ) {
        let unchanged = chrono::DateTime::parse_from_rfc2822(since)
            .is_ok_and(|s| updated.timestamp() <= s.timestamp());
        if unchanged {
            return Ok((
                StatusCode::NOT_MODIFIED,
                [(header::LAST_MODIFIED, modified)],
            )
                .into_response());
        }
    }
    let (bytes, _) =
        pkpass::for_pass(&state.core, &tenant_id, &serial, &state.config.public_url).await?;
    Ok((
        [
            (header::CONTENT_TYPE, pkpass::CONTENT_TYPE.to_string()),
            (header::LAST_MODIFIED, modified),
        ],
        bytes,
    )
        .into_response())
}

#[utoipa::path(
    post, path = "/api/{tenantId}/wallet/apple/v1/log", tag = "wallet",
    description = "PassKit web service: devices report errors; the first 50 lines are logged.",
    params(("tenantId" = String, Path)),
    request_body = DeviceLogs,
    responses((status = 200, description = "Logged"), (status = 415, description = "The body is not sent as application/json"))
)]
pub async fn log(Path(tenant_id): Path<String>, Json(body): Json<Value>) -> StatusCode {
    for line in body["logs"].as_array().into_iter().flatten().take(50) {
        tracing::info!(tenant = %tenant_id, log = %line, "Apple Wallet device log");
    }
    StatusCode::OK
}
