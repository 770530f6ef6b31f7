//! The console's server functions. Each checks the caller before touching data.

mod activity;
mod integrations;
mod keys;
mod people;
mod wallet;

pub use activity::*;
pub use integrations::*;
pub use keys::*;
pub use people::*;
pub use wallet::*;

use leptos::prelude::*;

use crate::model::*;

#[server(prefix = "/console/fn", endpoint = "login")]
pub async fn login(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::throttle::{self, Admission, Subjects};
    let core = ssr::core()?;
    let subjects = Subjects::new(&email, ssr::client_ip().await.as_deref());
    // Counted before the password is checked: a burst gets the limit, no more.
    let attempt = match throttle::admit(&core.db, &subjects)
        .await
        .map_err(internal)?
    {
        Admission::Admitted(attempt) => attempt,
        Admission::Locked { wait_secs } => {
            let minutes = (wait_secs + 59) / 60;
            leptos_axum::redirect(&format!("/login?error=locked&wait={minutes}"));
            return Ok(());
        }
    };
    let user = domain::users::verify_login(&core.db, &email, &password)
        .await
        .map_err(internal)?;
    let memberships = match &user {
        Some(user) => domain::users::memberships(&core.db, &user.id)
            .await
            .map_err(internal)?,
        None => Vec::new(),
    };
    let (Some(user), Some(first)) = (user, memberships.first()) else {
        // One answer for every failure, shown by the login page with or without JS.
        leptos_axum::redirect("/login?error=invalid");
        return Ok(());
    };
    throttle::succeeded(&core.db, &subjects, attempt)
        .await
        .map_err(internal)?;
    let session = ssr::session().await?;
    ssr::sign_in(&session, &user.id, &first.tenant_id).await?;
    leptos_axum::redirect(ssr::local_path(next.as_deref()));
    Ok(())
}

/// Whether the sign-in page offers single sign-on.
#[server(prefix = "/console/fn", endpoint = "sso_available")]
pub async fn sso_available() -> Result<bool, ServerFnError> {
    Ok(crate::ssr::site()?.sso_label.is_some())
}

#[server(prefix = "/console/fn", endpoint = "logout")]
pub async fn logout() -> Result<(), ServerFnError> {
    let session = crate::ssr::session().await?;
    session.flush().await.map_err(crate::ssr::internal)?;
    leptos_axum::redirect("/login");
    Ok(())
}

#[server(prefix = "/console/fn", endpoint = "get_session_info")]
pub async fn get_session_info() -> Result<Option<SessionInfo>, ServerFnError> {
    use crate::ssr::{caller, role_to_model};
    Ok(caller().await?.map(|c| SessionInfo {
        email: c.user.email,
        tenant_id: c.tenant.tenant_id,
        tenant_name: c.tenant.tenant_name,
        role: role_to_model(c.tenant.role),
        tenants: c
            .memberships
            .into_iter()
            .map(|m| TenantChoice {
                id: m.tenant_id,
                name: m.tenant_name,
                role: role_to_model(m.role),
            })
            .collect(),
    }))
}

#[server(prefix = "/console/fn", endpoint = "switch_tenant")]
pub async fn switch_tenant(tenant_id: String) -> Result<(), ServerFnError> {
    use crate::ssr::{self, internal};
    let caller = ssr::require(domain::users::Role::Marketer).await?;
    if !caller.memberships.iter().any(|m| m.tenant_id == tenant_id) {
        return Err(ssr::forbidden("You are not a member of that tenant."));
    }
    let session = ssr::session().await?;
    session
        .insert(ssr::TENANT_KEY, &tenant_id)
        .await
        .map_err(internal)?;
    leptos_axum::redirect("/");
    Ok(())
}

pub const PASS_PAGE_SIZE: u32 = 20;

#[server(prefix = "/console/fn", endpoint = "list_passes")]
pub async fn list_passes(query: String, page: u32) -> Result<PassList, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::passes::{self, PassFilter};
    let caller = ssr::require(domain::users::Role::Marketer).await?;
    let core = ssr::core()?;
    let page = page.max(1);
    let filter = PassFilter {
        text: Some(query),
        ..Default::default()
    };
    let (items, total) = passes::list_page(
        &core.db,
        &caller.tenant.tenant_id,
        &filter,
        (page - 1) * PASS_PAGE_SIZE,
        PASS_PAGE_SIZE,
    )
    .await
    .map_err(internal)?;
    Ok(PassList {
        items: items.into_iter().map(ssr::pass_row).collect(),
        total,
        page,
        page_size: PASS_PAGE_SIZE,
    })
}

#[server(prefix = "/console/fn", endpoint = "get_dashboard")]
pub async fn get_dashboard() -> Result<Dashboard, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::passes::{self, PassFilter};
    let caller = ssr::require(domain::users::Role::Marketer).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let (recent, total) = passes::list_page(&core.db, tenant, &PassFilter::default(), 0, 5)
        .await
        .map_err(internal)?;
    let pass_types = passes::count_by_type(&core.db, tenant)
        .await
        .map_err(internal)?;
    let active_keys = domain::api_keys::list(&core.db, tenant)
        .await
        .map_err(internal)?
        .iter()
        .filter(|k| k.is_active(domain::clock::now_ms()))
        .count() as i64;
    Ok(Dashboard {
        passes: total,
        pass_types,
        active_keys,
        recent: recent.into_iter().map(ssr::pass_row).collect(),
    })
}
