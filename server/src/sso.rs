//! Single sign-on routes: `/auth/sso/start` sends the browser to the identity
//! provider, `/auth/sso/callback` checks what it brings back and signs the person in
//! when an account with that email belongs to a tenant.
//!
//! Between the two, the sign-in in progress (`state`, `nonce`, PKCE verifier, the
//! page to land on, and when it expires) lives in the browser, in a cookie encrypted
//! and authenticated with AES-256-GCM (the `cookie` crate's private jar) under a key
//! derived from the master key: anonymous visitors of `/auth/sso/start` cost no
//! database row, and every replica can read the cookie. It is `HttpOnly`,
//! `SameSite=Lax` (the provider's redirect back is a top-level GET, which Lax lets
//! through), `Path=/auth/sso`, `Secure` over HTTPS, and lives 10 minutes; the
//! expiry is also inside the sealed value, so a copy kept past its `Max-Age` is
//! refused. The callback clears it, whatever the outcome.
//!
//! Clearing the browser's copy does not stop someone replaying a captured cookie
//! with its callback URL. So the callback also claims the `state` in the database
//! (`sso_used_states`, an insert that fails when the row exists) before redeeming the
//! code, and remembers it until the cookie's own expiry plus a margin for clocks
//! that disagree; after that the cookie is refused anyway. A sign-in thus completes
//! once, on whichever replica, for one small row per callback that carries a valid
//! cookie and its matching state (housekeeping deletes them). An in-memory set would
//! not be seen by other replicas. The provider's rule that a code is redeemed once
//! (RFC 6749 §4.1.2) is a second line, not the one we rely on: not every provider
//! enforces it strictly.
//!
//! One pending sign-in per browser: starting a second one (another tab) replaces
//! the first, whose callback is then refused.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use cookie::{Cookie, CookieJar, Key, SameSite};
use domain::sso::{Pending, Provider};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::state::AppState;

const PENDING_COOKIE: &str = "passhook_sso";
const PENDING_PATH: &str = "/auth/sso";
/// How long a sign-in may take at the provider.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Used states are remembered this much past their cookie's expiry, in case
/// replicas' clocks disagree about when it expired.
const USED_STATE_MARGIN: Duration = Duration::from_secs(600);
/// Longer `next` paths are dropped (the cookie must stay well under 4 KB).
const MAX_NEXT_LEN: usize = 1024;

/// What the callback needs, sealed in the pending cookie.
#[derive(Serialize, Deserialize)]
struct PendingSignIn {
    pending: Pending,
    next: String,
    /// Unix ms after which this sign-in is refused.
    expires_at: i64,
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/sso/start", get(start))
        .route("/auth/sso/callback", get(callback))
}

/// The provider, discovered on first use and kept; `None` when SSO is not configured.
async fn provider(state: &AppState) -> Option<Result<Arc<Provider>, String>> {
    let config = state.config.sso.clone()?;
    let found = state
        .sso
        .get_or_try_init(|| async {
            Provider::discover(config, &state.core.http)
                .await
                .map(Arc::new)
        })
        .await;
    Some(found.map(Arc::clone).map_err(|e| e.to_string()))
}

fn to_login(error: &str) -> Response {
    Redirect::to(&format!("/login?error={error}")).into_response()
}

/// The pending cookie's key: its own, derived from the master key (HMAC-SHA256,
/// then the `cookie` crate's HKDF-SHA256 expansion into its encryption key).
fn cookie_key(state: &AppState) -> Key {
    Key::derive_from(
        &state
            .core
            .master_key
            .derive_key("sso/pending-sign-in-cookie"),
    )
}

fn pending_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build((PENDING_COOKIE, value))
        .path(PENDING_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.is_https())
        .max_age(cookie::time::Duration::seconds(PENDING_FOR.as_secs() as i64))
        .build()
}

/// The `Set-Cookie` value that carries `started`, encrypted.
fn seal(state: &AppState, started: &PendingSignIn) -> anyhow::Result<HeaderValue> {
    let mut jar = CookieJar::new();
    jar.private_mut(&cookie_key(state))
        .add(pending_cookie(state, serde_json::to_string(started)?));
    let sealed = jar
        .delta()
        .next()
        .ok_or_else(|| anyhow::anyhow!("the cookie jar kept nothing"))?;
    Ok(HeaderValue::from_str(&sealed.to_string())?)
}

/// The sign-in this browser started, if its cookie is intact and not expired.
fn unseal(state: &AppState, headers: &HeaderMap) -> Option<PendingSignIn> {
    let mut jar = CookieJar::new();
    for value in headers.get_all(COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for cookie in Cookie::split_parse(text).flatten() {
            if cookie.name() == PENDING_COOKIE {
                jar.add_original(cookie.into_owned());
            }
        }
    }
    let cookie = jar.private(&cookie_key(state)).get(PENDING_COOKIE)?;
    let started: PendingSignIn = serde_json::from_str(cookie.value()).ok()?;
    (started.expires_at > domain::clock::now_ms()).then_some(started)
}

/// The `Set-Cookie` value that deletes the pending cookie.
fn removal(state: &AppState) -> HeaderValue {
    let cookie = Cookie::build((PENDING_COOKIE, ""))
        .path(PENDING_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.is_https())
        .removal()
        .build();
    HeaderValue::from_str(&cookie.to_string()).expect("a removal cookie is a valid header")
}

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

async fn start(State(state): State<AppState>, Query(query): Query<StartQuery>) -> Response {
    let provider = match provider(&state).await {
        None => return axum::http::StatusCode::NOT_FOUND.into_response(),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "single sign-on is unavailable");
            return to_login("sso-unavailable");
        }
        Some(Ok(p)) => p,
    };
    let (url, pending) = provider.authorize();
    let next = query.next.filter(|n| n.len() <= MAX_NEXT_LEN);
    let started = PendingSignIn {
        pending,
        next: app::ssr::local_path(next.as_deref()).to_string(),
        expires_at: domain::clock::now_ms() + PENDING_FOR.as_millis() as i64,
    };
    let cookie = match seal(&state, &started) {
        Ok(cookie) => cookie,
        Err(e) => {
            tracing::error!(error = %e, "could not seal the sign-in cookie");
            return to_login("sso-failed");
        }
    };
    let mut response = Redirect::to(&url).into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let started = unseal(&state, &headers);
    let mut response = complete(&state, &session, started, query).await;
    // A pending sign-in is used once, whatever happened.
    response.headers_mut().append(SET_COOKIE, removal(&state));
    response
}

async fn complete(
    state: &AppState,
    session: &Session,
    started: Option<PendingSignIn>,
    query: CallbackQuery,
) -> Response {
    let Some(Ok(provider)) = provider(state).await else {
        return to_login("sso-unavailable");
    };
    let Some(started) = started else {
        tracing::warn!("single sign-on callback without a valid pending sign-in");
        return to_login("sso-failed");
    };
    let (Some(code), Some(returned_state), None) = (query.code, query.state, query.error) else {
        return to_login("sso-failed");
    };
    if !started.pending.state_matches(&returned_state) {
        tracing::warn!("single sign-on callback with another state than its cookie's");
        return to_login("sso-failed");
    }
    let remember_until = started.expires_at + USED_STATE_MARGIN.as_millis() as i64;
    match domain::sso::claim_state(&state.core.db, &started.pending.state, remember_until).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("a completed single sign-on came back (replayed callback)");
            return to_login("sso-failed");
        }
        Err(e) => {
            tracing::error!(error = %e, "could not note the single sign-on state");
            return to_login("sso-failed");
        }
    }
    let email = match provider
        .finish(&state.core.http, &started.pending, &returned_state, &code)
        .await
    {
        Ok(email) => email,
        Err(e) => {
            tracing::warn!(error = %e, "single sign-on failed");
            return to_login("sso-failed");
        }
    };
    match sign_in(state, session, &email).await {
        Ok(true) => Redirect::to(app::ssr::local_path(Some(&started.next))).into_response(),
        Ok(false) => to_login("sso-unknown"),
        Err(e) => {
            tracing::error!(error = %e, "could not sign in after SSO");
            to_login("sso-failed")
        }
    }
}

/// Signs in the account with this email, if it exists, is enabled and has a tenant.
async fn sign_in(state: &AppState, session: &Session, email: &str) -> anyhow::Result<bool> {
    let db = &state.core.db;
    let Some(user) = domain::users::find_by_email(db, email).await? else {
        return Ok(false);
    };
    let memberships = domain::users::memberships(db, &user.id).await?;
    let Some(first) = memberships.first() else {
        return Ok(false);
    };
    app::ssr::sign_in(session, &user.id, &first.tenant_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(true)
}
