//! The Leptos console: server-rendered pages, their server functions, static assets.

use app::{shell, App};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use std::net::{IpAddr, SocketAddr};

use app::ssr::Site;
use axum::extract::State;
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Router;
use leptos::prelude::provide_context;
use leptos_axum::{file_and_error_handler_with_context, generate_route_list, LeptosRoutes};
use tower_sessions::Session;

use crate::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = generate_route_list(App);
    let core = state.core.clone();
    let options = state.leptos_options.clone();
    let site = Site {
        public_url: state.config.public_url.clone(),
        local_url: local_url(state.config.addr),
        sso_label: state.config.sso.as_ref().map(|_| "SSO".to_string()),
    };
    Router::new()
        .leptos_routes_with_context(
            state,
            routes,
            move || {
                provide_context(core.clone());
                provide_context(site.clone());
                crate::security::provide_request_nonce();
            },
            move || shell(options.clone()),
        )
        .fallback(file_and_error_handler_with_context::<AppState, _>(
            crate::security::provide_request_nonce,
            shell,
        ))
        .layer(from_fn_with_state(state.clone(), require_login))
}

/// This process's own address, for calls the console makes to its listeners.
fn local_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => IpAddr::from([127, 0, 0, 1]),
        ip if ip.is_unspecified() => IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// Paths anyone may load: the sign-in page, assets, server functions (which check
/// the session themselves) and everything outside the console.
fn is_public(path: &str) -> bool {
    path == "/login"
        || path == "/welcome"
        || path == "/favicon.svg"
        || ["/pkg/", "/console/fn/", "/api/", "/auth/"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
}

/// Sends signed-out visitors of console pages to the sign-in page, and signed-in
/// visitors of the sign-in page to the dashboard.
async fn require_login(
    State(state): State<AppState>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::GET || req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let signed_in = match app::ssr::signed_in_user(&state.core.db, &session).await {
        Ok(user) => user.is_some(),
        Err(e) => {
            tracing::error!(error = %e, "could not read the session");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let path = req.uri().path();
    if path == "/login" && signed_in {
        return Redirect::to("/").into_response();
    }
    if signed_in || is_public(path) {
        return next.run(req).await;
    }
    let target = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    Redirect::to(&format!("/login?next={}", encode_component(target))).into_response()
}

fn encode_component(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_paths_are_encoded() {
        assert_eq!(
            super::encode_component("/passes?q=a b"),
            "/passes%3Fq%3Da%20b"
        );
    }
}
