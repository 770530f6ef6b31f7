//! RFC 9457 problem details: the only error shape an `/api/` path answers with.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{DomainError, FieldError};
use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";
/// What a 503 asks callers to wait before retrying.
pub const RETRY_AFTER_SECONDS: &str = "5";

#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// A stable cause code (`UNAUTHENTICATED`, `PAYLOAD_TOO_LARGE`…) for scripts and audit.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            kind: format!(
                "urn:passhook:problem:{}",
                code.to_lowercase().replace('_', "-")
            ),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code,
            errors: Vec::new(),
        }
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn unauthenticated() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Send a valid API key in the X-API-KEY header (or Authorization: Bearer).",
        )
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "MALFORMED_BODY", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "NOT_FOUND", detail)
    }

    pub fn payload_too_large() -> Self {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "The body is larger than this path accepts: 64 KiB for device logs, 256 KiB for \
             SFMC calls, 32 MiB for the Actito listeners, 5 MiB everywhere else.",
        )
    }

    /// The server answers as many requests at once as it is configured for.
    pub fn overloaded() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "OVERLOADED",
            "The server is answering as many requests as it takes at once; retry shortly.",
        )
    }

    /// The problem as a response asking to wait `wait` (rounded up to whole seconds,
    /// at least one) before retrying.
    pub fn with_retry_after(self, wait: std::time::Duration) -> Response {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = self.into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        response
    }

    pub fn internal() -> Self {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Something went wrong on our side; the request id identifies it in our logs.",
        )
    }

    pub fn unavailable() -> Self {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "The database cannot be reached right now, so nothing was stored; retry later.",
        )
    }

    /// The problem a bare error status stands for (axum rejections, unknown routes).
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::NOT_FOUND => ("NOT_FOUND", "There is nothing at this path."),
            StatusCode::METHOD_NOT_ALLOWED => (
                "METHOD_NOT_ALLOWED",
                "This path does not accept this method.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => return Problem::payload_too_large(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "UNSUPPORTED_MEDIA_TYPE",
                "Send the body as application/json.",
            ),
            s if s.is_server_error() => return Problem::internal(),
            _ => ("BAD_REQUEST", "The request could not be handled."),
        };
        Problem::new(status, code, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(&self)).into_response();
        // Kept for the listeners' rejection audit, which records the cause code.
        response.extensions_mut().insert(self.clone());
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if self.status == StatusCode::SERVICE_UNAVAILABLE.as_u16() {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

impl From<DomainError> for Problem {
    #[track_caller]
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::NotFound(what) => Problem::not_found(format!("No such {what}.")),
            DomainError::Conflict(detail) => Problem::new(StatusCode::CONFLICT, "CONFLICT", detail),
            DomainError::Invalid(errors) => Problem {
                errors,
                ..Problem::new(
                    StatusCode::BAD_REQUEST,
                    "VALIDATION_FAILED",
                    "Some fields are invalid; see errors.",
                )
            },
            err if err.is_unavailable() => {
                tracing::warn!(error = %err, at = %std::panic::Location::caller(), "database unavailable");
                Problem::unavailable()
            }
            other => {
                tracing::error!(error = %other, at = %std::panic::Location::caller(), "request failed");
                Problem::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_have_the_rfc_9457_members() {
        let value = serde_json::to_value(Problem::unauthenticated()).unwrap();
        for member in ["type", "title", "status", "detail"] {
            assert!(value.get(member).is_some(), "{member}");
        }
        assert_eq!(value["status"], 401);
        assert_eq!(value["type"], "urn:passhook:problem:unauthenticated");
        assert!(value.get("errors").is_none());
    }

    #[test]
    fn validation_errors_list_fields() {
        let p = Problem::from(DomainError::invalid("passType", "required"));
        assert_eq!(p.status, 400);
        assert_eq!(p.errors[0].field, "passType");
    }
}
