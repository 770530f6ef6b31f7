//! Single sign-on routes: `/auth/sso/start` sends the browser to the identity
//! provider, `/auth/sso/callback` checks what it brings back and signs the person in
//! when an account with that email belongs to a tenant.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use domain::sso::{Pending, Provider};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::state::AppState;

const PENDING_KEY: &str = "sso_pending";

#[derive(Serialize, Deserialize)]
struct PendingSignIn {
    pending: Pending,
    next: String,
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

#[derive(Deserialize)]
struct StartQuery {
    next: Option<String>,
}

async fn start(
    State(state): State<AppState>,
    session: Session,
    Query(query): Query<StartQuery>,
) -> Response {
    let provider = match provider(&state).await {
        None => return axum::http::StatusCode::NOT_FOUND.into_response(),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "single sign-on is unavailable");
            return to_login("sso-unavailable");
        }
        Some(Ok(p)) => p,
    };
    let (url, pending) = provider.authorize();
    let next = app::ssr::local_path(query.next.as_deref()).to_string();
    if let Err(e) = session
        .insert(PENDING_KEY, PendingSignIn { pending, next })
        .await
    {
        tracing::error!(error = %e, "could not keep the sign-in in the session");
        return to_login("sso-failed");
    }
    Redirect::to(&url).into_response()
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
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(Ok(provider)) = provider(&state).await else {
        return to_login("sso-unavailable");
    };
    // A sign-in attempt is used once, whatever happens next.
    let Ok(Some(started)) = session.remove::<PendingSignIn>(PENDING_KEY).await else {
        return to_login("sso-failed");
    };
    let (Some(code), Some(returned_state), None) = (query.code, query.state, query.error) else {
        return to_login("sso-failed");
    };
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
    match sign_in(&state, &session, &email).await {
        Ok(true) => Redirect::to(&started.next).into_response(),
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
