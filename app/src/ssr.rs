//! Server-side helpers for server functions: the domain handle, the session and the
//! caller's identity, tenant and role.

use domain::users::{self, Membership, Role, User};
use domain::Core;
use leptos::prelude::*;
use tower_sessions::Session;

pub const USER_KEY: &str = "user_id";
pub const TENANT_KEY: &str = "tenant_id";
/// When this session signed in (ms): older than the account's `sessions_valid_from`
/// means it was signed out everywhere.
pub const SIGNED_IN_AT_KEY: &str = "signed_in_at";

/// Facts about this deployment the console shows (listener URLs and the like).
#[derive(Clone, Debug)]
pub struct Site {
    pub public_url: String,
    /// How this process reaches its own listeners (the console's test tools use it).
    pub local_url: String,
    /// Set when single sign-on is configured.
    pub sso_label: Option<String>,
}

pub fn site() -> Result<Site, ServerFnError> {
    use_context::<Site>().ok_or_else(|| ServerFnError::new("server state is missing"))
}

/// The signed-in user and the tenant they are acting for.
pub struct Caller {
    pub user: User,
    pub tenant: Membership,
    pub memberships: Vec<Membership>,
}

pub fn core() -> Result<Core, ServerFnError> {
    use_context::<Core>().ok_or_else(|| ServerFnError::new("server state is missing"))
}

pub async fn session() -> Result<Session, ServerFnError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| ServerFnError::new(format!("no session: {e}")))
}

/// Logs the cause and gives the browser a message without internals.
pub fn internal(err: impl std::fmt::Display) -> ServerFnError {
    tracing::error!(error = %err, "console request failed");
    ServerFnError::new("Something went wrong on our side. Please try again.")
}

/// A 404 with a message for the page: the thing is not this tenant's (or gone).
pub fn not_found(message: &str) -> ServerFnError {
    status(http::StatusCode::NOT_FOUND);
    ServerFnError::new(message)
}

/// A 403 with a message: the caller may not do this here.
pub fn forbidden(message: &str) -> ServerFnError {
    status(http::StatusCode::FORBIDDEN);
    ServerFnError::new(message)
}

fn status(code: http::StatusCode) {
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(code);
    }
}

/// The session's user, if it is signed in, the account is enabled, and the session
/// was not ended by "sign out everywhere" or a password change.
pub async fn signed_in_user(
    db: &domain::db::Db,
    session: &Session,
) -> Result<Option<User>, String> {
    let Some(user_id) = session
        .get::<String>(USER_KEY)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let since = session
        .get::<i64>(SIGNED_IN_AT_KEY)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or(0);
    Ok(users::get(db, &user_id)
        .await
        .map_err(|e| e.to_string())?
        .filter(|user| since >= user.sessions_valid_from))
}

/// Starts a signed-in session (a new session id, against fixation).
pub async fn sign_in(
    session: &Session,
    user_id: &str,
    tenant_id: &str,
) -> Result<(), ServerFnError> {
    session.cycle_id().await.map_err(internal)?;
    session.insert(USER_KEY, user_id).await.map_err(internal)?;
    session
        .insert(TENANT_KEY, tenant_id)
        .await
        .map_err(internal)?;
    session
        .insert(SIGNED_IN_AT_KEY, domain::clock::now_ms())
        .await
        .map_err(internal)
}

/// The caller, if signed in with an account that still has at least one tenant.
pub async fn caller() -> Result<Option<Caller>, ServerFnError> {
    let core = core()?;
    let session = session().await?;
    caller_of(&core.db, &session).await.map_err(internal)
}

/// [`caller`] for a plain axum handler that has the session.
pub async fn caller_of(db: &domain::db::Db, session: &Session) -> Result<Option<Caller>, String> {
    let Some(user) = signed_in_user(db, session).await? else {
        return Ok(None);
    };
    let memberships = users::memberships(db, &user.id)
        .await
        .map_err(|e| e.to_string())?;
    let chosen = session
        .get::<String>(TENANT_KEY)
        .await
        .map_err(|e| e.to_string())?;
    let tenant = users::pick_membership(&memberships, chosen.as_deref()).cloned();
    Ok(tenant.map(|tenant| Caller {
        user,
        tenant,
        memberships,
    }))
}

/// The caller when signed in with at least `role` in the current tenant; otherwise
/// an error (and a 401 or 403 status for the request).
pub async fn require(role: Role) -> Result<Caller, ServerFnError> {
    let Some(caller) = caller().await? else {
        status(http::StatusCode::UNAUTHORIZED);
        return Err(ServerFnError::new("Please sign in."));
    };
    if !caller.tenant.role.allows(role) {
        return Err(forbidden(
            "Your role does not allow this. Ask an admin of this tenant.",
        ));
    }
    Ok(caller)
}

/// A domain result as a form's answer: invalid fields and conflicts go back to the
/// form; anything else is an error.
pub fn saved<T>(result: domain::error::Result<T>) -> Result<crate::model::Saved<T>, ServerFnError> {
    use crate::model::{FieldProblem, Saved};
    use domain::DomainError;
    match result {
        Ok(value) => Ok(Saved::Done(value)),
        Err(DomainError::Invalid(errors)) => Ok(Saved::Invalid(
            errors
                .into_iter()
                .map(|e| FieldProblem {
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        )),
        Err(DomainError::Conflict(message)) => Ok(Saved::Invalid(vec![FieldProblem {
            field: String::new(),
            message,
        }])),
        Err(DomainError::NotFound(what)) => Err(not_found(&format!(
            "That {what} no longer exists. Reload the page."
        ))),
        Err(other) => Err(internal(other)),
    }
}

/// The browser's address as the server saw it.
pub async fn client_ip() -> Option<String> {
    leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .await
        .ok()
        .map(|axum::extract::ConnectInfo(addr)| addr.ip().to_string())
}

pub fn history_rows(entries: Vec<domain::history::Entry>) -> Vec<crate::model::HistoryRow> {
    entries
        .into_iter()
        .map(|e| crate::model::HistoryRow {
            at: e.at,
            actor: e.actor,
            summary: e.summary,
            changes: e
                .changes
                .into_iter()
                .map(|c| (c.field, c.before, c.after))
                .collect(),
        })
        .collect()
}

/// A path inside the console, safe to redirect to after sign-in; anything else is
/// `/`. It must start with one `/` and hold only printable ASCII without spaces or
/// backslashes: browsers drop tabs and newlines from URLs (`/\t/evil.example` is
/// `//evil.example` to them) and read `\` as `/`, and a `Location` header cannot carry
/// control characters or raw non-ASCII (the console percent-encodes its own paths).
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && p.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            p
        }
        _ => "/",
    }
}

pub fn role_to_model(role: Role) -> crate::model::Role {
    match role {
        Role::Admin => crate::model::Role::Admin,
        Role::Marketer => crate::model::Role::Marketer,
    }
}

pub fn pass_row(pass: domain::passes::Pass) -> crate::model::PassRow {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    crate::model::PassRow {
        identifiers: pass.identifiers.into_iter().collect(),
        data: pass
            .additional_data
            .iter()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect(),
        id: pass.id,
        pass_type: pass.pass_type,
        version: pass.version,
        updated_at: pass.updated_at,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_local_paths_are_redirect_targets() {
        assert_eq!(super::local_path(Some("/passes?q=a")), "/passes?q=a");
        assert_eq!(super::local_path(Some("//evil.example")), "/");
        assert_eq!(super::local_path(Some("https://evil.example")), "/");
        assert_eq!(super::local_path(Some("/\\evil.example")), "/");
        assert_eq!(super::local_path(None), "/");
    }

    #[test]
    fn next_paths_with_control_characters_or_spaces_are_refused() {
        let local = super::local_path;
        assert_eq!(
            local(Some("/passes/p-1?tab=history#x")),
            "/passes/p-1?tab=history#x"
        );
        assert_eq!(local(Some("/passes%20x?q=a%0Ab")), "/passes%20x?q=a%0Ab");
        for bad in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/\t\t//evil.example",
            "/ /evil.example",
            "/\u{0}/evil.example",
            "/\u{7f}/evil.example",
            "/\u{a0}/evil.example",
            "/\u{2028}/evil.example",
            "/\u{3000}/evil.example",
            "/é",
            "/passes\r\nSet-Cookie: x=y",
            "\\\\evil.example",
            "\\/evil.example",
            "/\\/evil.example",
            "/passes\\..\\x",
            "///evil.example",
            "\t/passes",
            "passes",
            "",
            "https://evil.example/",
            "javascript:alert(1)",
        ] {
            assert_eq!(local(Some(bad)), "/", "{bad:?}");
        }
    }
}
