//! Layers that apply to every route: request ids, tracing, metrics, the limit of
//! requests in flight, problem documents for `/api/`, security headers, cross-origin
//! protection and sessions. Body limits are per route (see [`crate::router`]).

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::error::Overloaded;
use tower::{BoxError, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::{time::Duration, SameSite};
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::problem::{self, Problem};
use crate::session_store::DbSessionStore;
use crate::state::AppState;

/// CONTRACT §2: larger bodies get 413 before being read in full. Routes that need
/// less set their own lower limit; the Actito listeners take more.
pub const BODY_LIMIT: usize = 5 * 1024 * 1024;

pub const SESSION_COOKIE: &str = "passhook_session";

/// Layers listed innermost first: the last one sees the request first.
pub fn wrap(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id)
    });
    routes
        .layer(from_fn_with_state(state.clone(), reject_cross_origin))
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn_with_state(
            state.clone(),
            crate::listeners::audit::record_rejections,
        ))
        // One semaphore for the whole server (not one per route); a request that finds
        // none left is answered 503 at once instead of waiting.
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(state.config.max_in_flight)),
        )
        .layer(from_fn(problems_for_api))
        .layer(from_fn_with_state(state.clone(), crate::security::headers))
        .layer(from_fn_with_state(state.clone(), crate::ops::track))
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// The console's sessions, kept in the database.
pub fn sessions(state: &AppState) -> SessionManagerLayer<DbSessionStore> {
    SessionManagerLayer::new(DbSessionStore::new(state.core.db.clone()))
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.config.is_https())
        .with_expiry(Expiry::OnInactivity(Duration::hours(12)))
}

/// The answer to a request beyond the limit of requests in flight.
async fn overloaded(err: BoxError) -> Response {
    if err.is::<Overloaded>() {
        Problem::overloaded().with_retry_after(std::time::Duration::from_secs(1))
    } else {
        tracing::error!(error = %err, "a request failed in the server's layers");
        Problem::internal().into_response()
    }
}

/// Any error answer under `/api/` that is not yet a problem document becomes one
/// (unknown routes, wrong methods, the body limit's 413).
async fn problems_for_api(req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let response = next.run(req).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(problem::CONTENT_TYPE.as_bytes()));
    if !is_api || is_problem || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut replaced = Problem::for_status(status).into_response();
    if let Some(allow) = allow {
        replaced.headers_mut().insert(header::ALLOW, allow);
    }
    replaced
}

/// Console requests that change state must come from the console's own pages:
/// browsers send `Origin` on such requests, and it must name this server.
/// API calls authenticate with keys, not cookies, so they are not concerned.
async fn reject_cross_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe
        || req.uri().path().starts_with("/api/")
        || same_origin(req.headers(), &state.config.public_url)
    {
        return next.run(req).await;
    }
    (
        StatusCode::FORBIDDEN,
        "Cross-origin requests to the console are refused.",
    )
        .into_response()
}

fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    match text(header::ORIGIN) {
        Some(origin) => {
            let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
            let public = public_url
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or("");
            authority == public || Some(authority) == text(header::HOST)
        }
        // No Origin: not a browser, or a same-origin navigation by an old one.
        None => text(header::HeaderName::from_static("sec-fetch-site")) != Some("cross-site"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (header::HeaderName::from_static(k), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn origin_must_name_this_server() {
        let public = "https://passhook.example.com";
        assert!(same_origin(
            &headers(&[("origin", "https://passhook.example.com")]),
            public
        ));
        assert!(same_origin(
            &headers(&[
                ("origin", "http://127.0.0.1:3000"),
                ("host", "127.0.0.1:3000")
            ]),
            public
        ));
        assert!(!same_origin(
            &headers(&[
                ("origin", "https://evil.example"),
                ("host", "127.0.0.1:3000")
            ]),
            public
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), public));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            public
        ));
        assert!(same_origin(&headers(&[]), public));
    }
}
