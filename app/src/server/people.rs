//! People and their roles in the tenant; the signed-in user's own password and sessions.

use leptos::prelude::*;

use crate::model::*;

#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Option<domain::users::Role> {
    domain::users::Role::parse(&role.to_lowercase())
}

#[cfg(feature = "ssr")]
async fn note(
    caller: &crate::ssr::Caller,
    summary: String,
    change: (String, Option<String>, Option<String>),
) -> Result<(), ServerFnError> {
    use domain::history::{self, Area, Change};
    let core = crate::ssr::core()?;
    history::record(
        &core.db,
        &caller.tenant.tenant_id,
        Area::Users,
        &caller.user.email,
        &summary,
        &[Change::new(change.0, change.1, change.2)],
    )
    .await
    .map_err(crate::ssr::internal)
}

#[server(prefix = "/console/fn", endpoint = "people_page")]
pub async fn people_page() -> Result<PeopleView, ServerFnError> {
    use crate::ssr::{self, internal, role_to_model};
    use domain::history::{self, Area};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let members = domain::users::members(&core.db, tenant)
        .await
        .map_err(internal)?;
    let sso_configured = ssr::site()?.sso_label.is_some();
    Ok(PeopleView {
        members: members
            .into_iter()
            .map(|m| MemberRow {
                is_you: m.user_id == caller.user.id,
                sign_in: match (m.has_password, sso_configured) {
                    (true, true) => "Password or SSO",
                    (true, false) => "Password",
                    // No password yet: the person has a set-up link (or uses SSO).
                    (false, true) => "SSO only, until a password is set",
                    (false, false) => "No password yet (set-up link)",
                }
                .into(),
                user_id: m.user_id,
                email: m.email,
                role: role_to_model(m.role),
                disabled: m.disabled,
            })
            .collect(),
        sso_configured,
        history: ssr::history_rows(
            history::list(&core.db, tenant, Some(Area::Users), 20)
                .await
                .map_err(internal)?,
        ),
    })
}

/// Adds a person: an existing account joins this tenant and nothing else of it
/// changes; a new one gets a one-time link to choose their own password.
#[server(prefix = "/console/fn", endpoint = "add_person")]
pub async fn add_person(email: String, role: String) -> Result<Saved<PersonAdded>, ServerFnError> {
    use crate::ssr;
    use domain::users::Added;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let Some(role) = parse_role(&role) else {
        return Ok(Saved::Invalid(vec![FieldProblem {
            field: "role".into(),
            message: "choose admin or marketer".into(),
        }]));
    };
    let added = domain::users::add_member(&core.db, &caller.tenant.tenant_id, &email, role).await;
    let saved = ssr::saved(added)?;
    if let Saved::Done(added) = &saved {
        let how = match added {
            Added::Joined(_) => "existing account joined",
            Added::Invited { .. } => "new account, set-up link issued",
        };
        note(
            &caller,
            format!("Added {} ({how})", added.member().email),
            ("role".into(), None, Some(role.as_str().into())),
        )
        .await?;
    }
    let public_url = ssr::site()?.public_url;
    Ok(saved.map(|added| match added {
        Added::Joined(member) => PersonAdded {
            email: member.email,
            setup_link: None,
        },
        Added::Invited {
            member,
            setup_token,
        } => PersonAdded {
            email: member.email,
            setup_link: Some(format!(
                "{}/welcome?token={setup_token}",
                public_url.trim_end_matches('/')
            )),
        },
    }))
}

/// The email a set-up link is for, while the link works (anyone holding it may ask).
#[server(prefix = "/console/fn", endpoint = "setup_link_email")]
pub async fn setup_link_email(token: String) -> Result<Option<String>, ServerFnError> {
    let core = crate::ssr::core()?;
    let user = domain::users::setup_link(&core.db, &token)
        .await
        .map_err(crate::ssr::internal)?;
    Ok(user.map(|u| u.email))
}

/// The person chooses their password with their set-up link, and is signed in.
#[server(prefix = "/console/fn", endpoint = "set_up_password")]
pub async fn set_up_password(token: String, password: String) -> Result<Saved<()>, ServerFnError> {
    use crate::ssr::{self, internal};
    let core = ssr::core()?;
    let saved = ssr::saved(domain::users::set_up_password(&core.db, &token, &password).await)?;
    let Saved::Done(user) = saved else {
        return Ok(saved.map(|_| ()));
    };
    let memberships = domain::users::memberships(&core.db, &user.id)
        .await
        .map_err(internal)?;
    if let Some(first) = memberships.first() {
        ssr::sign_in(&ssr::session().await?, &user.id, &first.tenant_id).await?;
    }
    leptos_axum::redirect("/");
    Ok(Saved::Done(()))
}

#[server(prefix = "/console/fn", endpoint = "set_person_role")]
pub async fn set_person_role(user_id: String, role: String) -> Result<Saved<()>, ServerFnError> {
    use crate::ssr;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let Some(role) = parse_role(&role) else {
        return Err(ServerFnError::new("Unknown role."));
    };
    let tenant = &caller.tenant.tenant_id;
    let before = domain::users::members(&core.db, tenant)
        .await
        .map_err(ssr::internal)?;
    let saved = ssr::saved(domain::users::set_role(&core.db, tenant, &user_id, role).await)?;
    if let (Saved::Done(()), Some(m)) = (&saved, before.iter().find(|m| m.user_id == user_id)) {
        note(
            &caller,
            format!("Changed the role of {}", m.email),
            (
                "role".into(),
                Some(m.role.as_str().into()),
                Some(role.as_str().into()),
            ),
        )
        .await?;
    }
    Ok(saved)
}

#[server(prefix = "/console/fn", endpoint = "set_person_disabled")]
pub async fn set_person_disabled(
    user_id: String,
    disabled: bool,
) -> Result<Saved<()>, ServerFnError> {
    use crate::ssr;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let before = domain::users::members(&core.db, tenant)
        .await
        .map_err(ssr::internal)?;
    let saved =
        ssr::saved(domain::users::set_disabled(&core.db, tenant, &user_id, disabled).await)?;
    if let (Saved::Done(()), Some(m)) = (&saved, before.iter().find(|m| m.user_id == user_id)) {
        let (what, state) = if disabled {
            ("Disabled", "disabled")
        } else {
            ("Enabled", "enabled")
        };
        note(
            &caller,
            format!("{what} {}", m.email),
            ("access".into(), None, Some(state.into())),
        )
        .await?;
    }
    Ok(saved)
}

#[server(prefix = "/console/fn", endpoint = "change_password")]
pub async fn change_password(current: String, new: String) -> Result<Saved<()>, ServerFnError> {
    use crate::ssr::{self, internal};
    let caller = ssr::require(domain::users::Role::Marketer).await?;
    let core = ssr::core()?;
    let saved = ssr::saved(
        domain::users::change_password(&core.db, &caller.user.id, &current, &new).await,
    )?;
    if let Saved::Done(()) = saved {
        // Other sessions end; this one continues.
        let session = ssr::session().await?;
        session
            .insert(ssr::SIGNED_IN_AT_KEY, domain::clock::now_ms())
            .await
            .map_err(internal)?;
    }
    Ok(saved)
}

#[server(prefix = "/console/fn", endpoint = "sign_out_everywhere")]
pub async fn sign_out_everywhere() -> Result<(), ServerFnError> {
    use crate::ssr::{self, internal};
    let caller = ssr::require(domain::users::Role::Marketer).await?;
    let core = ssr::core()?;
    domain::users::sign_out_everywhere(&core.db, &caller.user.id)
        .await
        .map_err(internal)?;
    ssr::session().await?.flush().await.map_err(internal)?;
    leptos_axum::redirect("/login");
    Ok(())
}
