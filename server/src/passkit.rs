//! Apple's PassKit web service, under `/api/{tenantId}/wallet/apple` (the passes'
//! `webServiceURL`): device registration, changed serial numbers, the latest pass
//! and device logs. Devices authenticate with `ApplePass <authenticationToken>`.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::wallet::{apns, pass_types, pkpass, registrations};
use domain::{passes, DomainError};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tower_http::limit::RequestBodyLimitLayer;

use crate::api::json::ApiJson;
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
        .route(
            &format!("{BASE}/log"),
            post(log).layer(RequestBodyLimitLayer::new(LOG_BODY_LIMIT)),
        )
}

/// Device logs are a few lines of text: larger bodies get 413 before being read.
pub const LOG_BODY_LIMIT: usize = 64 * 1024;
/// At most this many lines of one request are logged; the rest are only counted.
pub const LOG_MAX_LINES: usize = 50;
/// A logged line is cut after this many bytes (at a character boundary).
pub const LOG_MAX_LINE_BYTES: usize = 1024;
pub use crate::tenant_rate::LOG_REQUESTS_PER_MINUTE;

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
#[derive(Deserialize, utoipa::ToSchema)]
pub struct DeviceLogs {
    #[serde(default)]
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
        (status = 400, description = "The body is not {\"pushToken\": …}, or the push token is not hexadecimal"),
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
    // The token goes into the APNs URL's path: hexadecimal digits only.
    if !apns::is_push_token(&registration.push_token) {
        let rule = format!(
            "must be 1 to {} hexadecimal digits",
            apns::MAX_PUSH_TOKEN_LEN
        );
        return Err(DomainError::invalid("pushToken", &rule).into());
    }
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
    description = "PassKit web service: devices report errors. Bodies up to 64 KiB; the first 50 lines are logged, each cut after 1 KiB; 60 requests per minute per tenant.",
    params(("tenantId" = String, Path)),
    request_body = DeviceLogs,
    responses(
        (status = 200, description = "Logged"),
        (status = 404, description = "No such tenant (nothing is logged)"),
        (status = 413, description = "The body is larger than 64 KiB"),
        (status = 415, description = "The body is not sent as application/json"),
        (status = 429, description = "This tenant's devices sent too many logs; see Retry-After")
    )
)]
pub async fn log(
    State(state): State<AppState>,
    Path(tenant_id): Path<String>,
    // A body that is JSON but not `{"logs": [string]}` is a 400, as the document says.
    ApiJson(body): ApiJson<DeviceLogs>,
) -> Result<StatusCode, Response> {
    match state.core.tenants.exists(&state.core.db, &tenant_id).await {
        Ok(true) => {}
        Ok(false) => return Err(Problem::not_found("No such tenant.").into_response()),
        Err(e) => return Err(Problem::from(e).into_response()),
    }
    if let Err(wait) = state.device_logs.check(&tenant_id) {
        let problem = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "This tenant's devices sent too many logs; retry later.",
        );
        return Err(problem.with_retry_after(wait));
    }
    let (lines, left_out) = loggable_lines(&body.logs);
    for line in &lines {
        tracing::info!(tenant = %tenant_id, log = %line, "Apple Wallet device log");
    }
    if left_out > 0 {
        tracing::info!(tenant = %tenant_id, left_out, "Apple Wallet device log: more lines, not logged");
    }
    Ok(StatusCode::OK)
}

/// The lines worth logging: the first [`LOG_MAX_LINES`], control characters escaped
/// (a line cannot forge another log entry), each cut after [`LOG_MAX_LINE_BYTES`] with
/// a marker; and how many lines were left out.
pub fn loggable_lines(logs: &[String]) -> (Vec<String>, usize) {
    let lines = logs.iter().take(LOG_MAX_LINES).map(|line| {
        let mut cut = line.len().min(LOG_MAX_LINE_BYTES);
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut clean = String::with_capacity(cut + 40);
        for c in line[..cut].chars() {
            if c.is_control() {
                clean.extend(c.escape_default());
            } else {
                clean.push(c);
            }
        }
        if cut < line.len() {
            clean.push_str(&format!(" …[truncated, {} bytes]", line.len()));
        }
        clean
    });
    (lines.collect(), logs.len().saturating_sub(LOG_MAX_LINES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_extra_lines_counted() {
        let long = "é".repeat(50_000);
        let mut logs = vec![long.clone(), "a\nforged entry\u{1b}[0m".to_string()];
        logs.extend((0..60).map(|i| format!("line {i}")));
        let (lines, left_out) = loggable_lines(&logs);
        assert_eq!(lines.len(), LOG_MAX_LINES);
        assert_eq!(left_out, 62 - LOG_MAX_LINES);
        assert!(
            lines[0].len() < LOG_MAX_LINE_BYTES + 50,
            "{}",
            lines[0].len()
        );
        assert!(
            lines[0].ends_with(" …[truncated, 100000 bytes]"),
            "{}",
            &lines[0][1000..]
        );
        assert!(lines[0].starts_with("éé"));
        assert_eq!(lines[1], "a\\nforged entry\\u{1b}[0m");
        assert_eq!(lines[2], "line 0");
    }
}
