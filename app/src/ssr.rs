//! Server-side helpers for server functions: the domain handle, the session and the
//! caller's identity, tenant and role.

use domain::users::{self, Membership, Role, User};
use domain::Core;
use leptos::prelude::*;
use tower_sessions::Session;

pub const USER_KEY: &str = "user_id";
pub const TENANT_KEY: &str = "tenant_id";

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

fn status(code: http::StatusCode) {
    if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(code);
    }
}

/// The caller, if signed in with an account that still has at least one tenant.
pub async fn caller() -> Result<Option<Caller>, ServerFnError> {
    let core = core()?;
    let session = session().await?;
    let Some(user_id) = session.get::<String>(USER_KEY).await.map_err(internal)? else {
        return Ok(None);
    };
    let Some(user) = users::get(&core.db, &user_id).await.map_err(internal)? else {
        return Ok(None);
    };
    let memberships = users::memberships(&core.db, &user.id)
        .await
        .map_err(internal)?;
    let chosen = session.get::<String>(TENANT_KEY).await.map_err(internal)?;
    let tenant = memberships
        .iter()
        .find(|m| Some(&m.tenant_id) == chosen.as_ref())
        .or(memberships.first())
        .cloned();
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
        status(http::StatusCode::FORBIDDEN);
        return Err(ServerFnError::new(
            "Your role does not allow this. Ask an admin of this tenant.",
        ));
    }
    Ok(caller)
}

/// A path inside the console, safe to redirect to after sign-in.
pub fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p,
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
}
