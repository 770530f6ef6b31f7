//! Recording listener rejections: whatever answered with a 4xx (an extractor, a
//! handler, the body limit), the rejection is stored with its cause code, the
//! redacted headers and, for authenticated callers only, the body.

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use domain::events::Rejection;
use domain::sfmc::activity::JourneyContext;
use serde_json::{Map, Value};

use crate::problem::Problem;
use crate::state::AppState;

/// What a handler knows about a request it rejects, beyond the problem itself.
#[derive(Clone, Debug, Default)]
pub struct RejectionContext {
    pub key_id: Option<String>,
    /// Set only once the caller is authenticated.
    pub body: Option<String>,
    pub journey: JourneyContext,
}

/// Headers the audit shows.
const KEPT: [&str; 7] = [
    "content-type",
    "content-length",
    "user-agent",
    "x-request-id",
    "x-forwarded-for",
    "origin",
    "traceparent",
];
/// Headers the audit names without their values.
const SECRET: [&str; 3] = ["x-api-key", "authorization", "cookie"];

/// Headers worth keeping, with credentials replaced by a marker.
pub fn audit_headers(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let name = name.as_str();
        if SECRET.contains(&name) {
            out.insert(name.into(), Value::String("[redacted]".into()));
        } else if KEPT.contains(&name) {
            out.insert(
                name.into(),
                Value::String(
                    value
                        .to_str()
                        .unwrap_or("[binary]")
                        .chars()
                        .take(500)
                        .collect(),
                ),
            );
        }
    }
    Value::Object(out)
}

/// Source, tenant and kind of a listener path, e.g. `("acme", "actito", "custom-action.updatePass")`.
/// Segments are percent-decoded as the router's path extractor decodes them, so
/// `/api/de%6Do/…` is recorded for `demo`, the tenant whose credentials were checked.
pub fn listener_of(path: &str) -> Option<(String, &'static str, String)> {
    let rest = path.strip_prefix("/api/")?;
    let (tenant, rest) = rest.split_once("/webhooks/listeners/")?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8()
            .ok()
            .map(|d| d.into_owned())
    };
    let tenant = decode(tenant)?;
    let segments: Vec<String> = rest
        .split('/')
        .filter(|s| !s.is_empty())
        .map(decode)
        .collect::<Option<_>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (source, kind) = match segments.as_slice() {
        ["actito", "custom-actions", action] => ("actito", format!("custom-action.{action}")),
        ["actito", "profile", event_type] => ("actito", format!("profile.{event_type}")),
        ["sfmc", "actions", activity, op] => ("sfmc", format!("{activity}.{op}")),
        ["actito", ..] => ("actito", "unknown".to_string()),
        ["sfmc", ..] => ("sfmc", "unknown".to_string()),
        _ => return None,
    };
    Some((tenant, source, kind))
}

/// Stores every 4xx answer of a listener path as a rejected event.
pub async fn record_rejections(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    // GETs are the activity's page, config.json and static files: not calls of a
    // platform, so their 404s (an unknown tenant, a wrong file) are not rejections.
    if req.method() == axum::http::Method::GET || req.method() == axum::http::Method::HEAD {
        return next.run(req).await;
    }
    if !req.uri().path().contains("/webhooks/listeners/") {
        return next.run(req).await;
    }
    // What the audit may need, kept cheaply (header values are shared, not copied):
    // most requests are accepted, and then nothing is read from it.
    let path = req.uri().path().to_owned();
    let mut kept = HeaderMap::new();
    for (name, value) in req.headers() {
        if KEPT.contains(&name.as_str()) || SECRET.contains(&name.as_str()) {
            kept.append(name.clone(), value.clone());
        }
    }
    let response = next.run(req).await;
    let status = response.status();
    if !status.is_client_error() {
        return response;
    }
    let Some((tenant_id, source, kind)) = listener_of(&path) else {
        return response;
    };
    let context = response
        .extensions()
        .get::<RejectionContext>()
        .cloned()
        .unwrap_or_default();
    let core = &state.core;
    let credentialed = context.key_id.is_some() || context.body.is_some();
    if core
        .rejections
        .surely_dropped(&core.tenants, &tenant_id, credentialed)
    {
        return response;
    }
    let headers = audit_headers(&kept);
    let problem = response
        .extensions()
        .get::<Problem>()
        .cloned()
        .unwrap_or_else(|| Problem::for_status(status));
    let rejection = Rejection {
        tenant_id,
        source,
        kind,
        code: problem.code.to_string(),
        detail: problem.detail.clone(),
        headers,
        body: context.body,
        key_id: context.key_id,
        journey: context.journey,
    };
    if let Err(e) = core
        .rejections
        .record(&core.db, &core.tenants, &rejection)
        .await
    {
        tracing::warn!(error = %e, "cannot record a listener rejection");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_paths_name_source_and_kind() {
        assert_eq!(
            listener_of("/api/acme/webhooks/listeners/actito/custom-actions/updatePass"),
            Some(("acme".into(), "actito", "custom-action.updatePass".into()))
        );
        assert_eq!(
            listener_of("/api/acme/webhooks/listeners/sfmc/actions/pushupdate/execute"),
            Some(("acme".into(), "sfmc", "pushupdate.execute".into()))
        );
        assert_eq!(listener_of("/api/acme/passes"), None);
        assert_eq!(
            listener_of("/api/de%6Do/webhooks/listeners/actito/custom-actions/update%50ass"),
            Some(("demo".into(), "actito", "custom-action.updatePass".into()))
        );
    }

    #[test]
    fn credentials_never_reach_the_audit() {
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "phk_secret".parse().unwrap());
        headers.insert("authorization", "Bearer phk_secret".parse().unwrap());
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("x-other", "dropped".parse().unwrap());
        let kept = audit_headers(&headers);
        assert!(!kept.to_string().contains("phk_secret"));
        assert_eq!(kept["content-type"], "application/json");
        assert!(kept.get("x-other").is_none());
    }
}
