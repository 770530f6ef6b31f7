//! Security headers on every answer, and a Content Security Policy on HTML.
//!
//! Each request gets a fresh nonce ([`CspNonce`], in the request's extensions). The
//! console renders it into every inline script Leptos emits (the hydration script
//! and resource streaming; see `console.rs`), and the policy of the answer names the
//! same nonce, so scripts run without `'unsafe-inline'`:
//!
//! - HTML: `Content-Security-Policy` (scripts from this origin or with the nonce, the
//!   WASM bundle, no plugins, no `<base>`, forms to this origin only) and
//!   `frame-ancestors 'none'` with `X-Frame-Options: DENY`, except the SFMC Journey
//!   Builder activity page, which Journey Builder frames from its own domains.
//! - Everything: `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`,
//!   and `Strict-Transport-Security` when the public URL is HTTPS.
//! - The console (pages, server functions, exports, the live feed, sign-in):
//!   `Cache-Control: no-store`, since what it shows is tenant data and settings. Static
//!   assets (`/pkg/`, the favicon) and the `/api/` contract are left alone.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

/// This request's CSP nonce: 128 random bits, base64url.
#[derive(Clone, Debug)]
pub struct CspNonce(pub String);

impl CspNonce {
    fn generate() -> Self {
        CspNonce(domain::crypto::random_token(16))
    }
}

/// Journey Builder frames the activity page from these origins.
pub const SFMC_FRAME_ANCESTORS: &str = "https://*.exacttarget.com https://*.marketingcloudapps.com";

/// The activity page's path under a tenant (`/api/{tenantId}` + this).
const SFMC_ACTIVITY_PAGE: &str = "/webhooks/listeners/sfmc/actions/pushupdate/";

/// Whether `path` is the SFMC custom activity's page, which SFMC frames.
fn is_sfmc_activity_page(path: &str) -> bool {
    path.strip_prefix("/api/")
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, rest)| format!("/{rest}") == SFMC_ACTIVITY_PAGE)
}

/// The policy for an HTML answer.
pub fn content_security_policy(nonce: &str, path: &str) -> String {
    if is_sfmc_activity_page(path) {
        // A static page: its scripts are files beside it; its styles one inline block.
        return format!(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
             form-action 'self'; frame-ancestors {SFMC_FRAME_ANCESTORS}"
        );
    }
    // `'wasm-unsafe-eval'` lets the hydration script compile the WASM bundle (and
    // nothing else); a `style` attribute (the pass preview's colours) is allowed, inline
    // `<style>` elements are not.
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'nonce-{nonce}'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
         font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'"
    )
}

/// Paths whose answers may be cached: built assets and the API (which has its own
/// rules).
fn cacheable(path: &str) -> bool {
    path.starts_with("/pkg/") || path == "/favicon.svg" || path.starts_with("/api/")
}

/// The layer: see the module documentation.
pub async fn headers(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let nonce = CspNonce::generate();
    req.extensions_mut().insert(nonce.clone());
    let path = req.uri().path().to_string();
    let mut response = next.run(req).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = response.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if state.config.is_https() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if is_html {
        if let Ok(policy) = HeaderValue::from_str(&content_security_policy(&nonce.0, &path)) {
            h.insert(header::CONTENT_SECURITY_POLICY, policy);
        }
        if !is_sfmc_activity_page(&path) {
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
    }
    if !cacheable(&path) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// In the console's render context: the request's nonce becomes Leptos's nonce, so
/// every inline script it writes carries the one the policy names.
pub fn provide_request_nonce() {
    use leptos::prelude::{provide_context, use_context};
    let nonce = use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<CspNonce>().cloned());
    if let Some(CspNonce(nonce)) = nonce {
        provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_activity_page_may_be_framed() {
        assert!(is_sfmc_activity_page(
            "/api/acme/webhooks/listeners/sfmc/actions/pushupdate/"
        ));
        assert!(!is_sfmc_activity_page(
            "/api/acme/webhooks/listeners/sfmc/actions/pushupdate/execute"
        ));
        assert!(!is_sfmc_activity_page("/"));
        assert!(!is_sfmc_activity_page("/api/"));
        let console = content_security_policy("abc", "/passes");
        assert!(console.contains("frame-ancestors 'none'"));
        assert!(console.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"));
        assert!(!console.contains("script-src 'self' 'unsafe-inline'"));
        let activity = content_security_policy(
            "abc",
            "/api/acme/webhooks/listeners/sfmc/actions/pushupdate/",
        );
        assert!(activity.ends_with(&format!("frame-ancestors {SFMC_FRAME_ANCESTORS}")));
    }

    #[test]
    fn assets_and_the_api_keep_their_caching() {
        assert!(cacheable("/pkg/passhook.wasm"));
        assert!(cacheable("/api/acme/passes"));
        assert!(!cacheable("/"));
        assert!(!cacheable("/console/fn/key_page"));
    }
}
