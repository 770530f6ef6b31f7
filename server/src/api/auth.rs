//! API-key authentication: an extractor that proves "this key may act for this
//! tenant with this scope" before a handler runs (CONTRACT §3).

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::api_keys::{self, Denied, KeyIdentity, Scope};

use crate::listeners::audit::RejectionContext;
use crate::problem::Problem;
use crate::state::AppState;

/// A scope a route requires, as a type.
pub trait RequiredScope: Send + Sync + 'static {
    const SCOPE: Scope;
}

macro_rules! scopes {
    ($($name:ident),*) => {$(
        pub struct $name;
        impl RequiredScope for $name {
            const SCOPE: Scope = Scope::$name;
        }
    )*};
}
scopes!(
    ActitoListenerWrite,
    PassesRead,
    PassesWrite,
    AuditRead,
    IntegrationsWrite
);

/// Proof that the caller's key belongs to the path's tenant and carries scope `S`.
pub struct ApiCaller<S> {
    pub key: KeyIdentity,
    pub tenant_id: String,
    _scope: PhantomData<S>,
}

impl<S> ApiCaller<S> {
    /// How this caller appears in the settings history.
    pub fn actor(&self) -> String {
        domain::history::by_api_key(&self.key.name, &self.key.key_id)
    }
}

/// The client's address as the server saw it (the peer of the TCP connection).
pub fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
}

/// Notes the key's use in the background, at most once a minute per key.
fn note_use(state: &AppState, key: &KeyIdentity, parts: &Parts) {
    // The stored note says whether one is due; the in-process mark keeps the requests
    // that arrive before it is written from each writing it again.
    let every = Duration::from_millis(api_keys::USE_NOTE_INTERVAL_MS as u64);
    if !key.use_note_due(domain::clock::now_ms())
        || !state.marks.due(&format!("key/{}", key.key_id), every)
    {
        return;
    }
    let (db, keys) = (state.core.db.clone(), state.core.key_cache.clone());
    let (key_id, ip) = (key.key_id.clone(), client_ip(parts));
    tokio::spawn(async move {
        if let Err(e) = api_keys::note_use(&db, &keys, &key_id, ip.as_deref()).await {
            tracing::warn!(error = %e, "could not note an API key's use");
        }
    });
}

/// The key sent as `X-API-KEY`, or as `Authorization: Bearer`.
pub fn presented_key(parts: &Parts) -> Option<&str> {
    let header_value = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    header_value(header::HeaderName::from_static("x-api-key"))
        .or_else(|| {
            header_value(header::AUTHORIZATION).and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

async fn path_tenant(parts: &mut Parts, state: &AppState) -> Result<String, Problem> {
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| Problem::not_found("This path has no tenant."))?;
    params
        .iter()
        .find(|(name, _)| *name == "tenantId")
        .map(|(_, value)| value.to_string())
        .ok_or_else(|| Problem::not_found("This path has no tenant."))
}

impl<S: RequiredScope> FromRequestParts<AppState> for ApiCaller<S> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let tenant_id = path_tenant(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let presented =
            presented_key(parts).ok_or_else(|| Problem::unauthenticated().into_response())?;
        let key = api_keys::identify(&state.core.db, &state.core.key_cache, presented)
            .await
            .map_err(|e| Problem::from(e).into_response())?
            .ok_or_else(|| Problem::unauthenticated().into_response())?;
        match key.authorize(&tenant_id, S::SCOPE) {
            Ok(()) => Ok(ApiCaller {
                key: {
                    note_use(state, &key, parts);
                    key
                },
                tenant_id,
                _scope: PhantomData,
            }),
            Err(Denied::Unauthenticated) => Err(Problem::unauthenticated().into_response()),
            // Another tenant's key: its id is none of this tenant's business, and its
            // rejection counts as anonymous.
            Err(Denied::OtherTenant) => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN_TENANT",
                "This API key belongs to another tenant.",
            )
            .into_response()),
            // The tenant's own key: the rejection names it (and has its own budget).
            Err(Denied::MissingScope) => {
                let mut response = Problem::new(
                    StatusCode::FORBIDDEN,
                    "FORBIDDEN_SCOPE",
                    format!("This API key lacks the {} scope.", S::SCOPE.as_str()),
                )
                .into_response();
                response.extensions_mut().insert(RejectionContext {
                    key_id: Some(key.key_id),
                    ..Default::default()
                });
                Err(response)
            }
        }
    }
}
