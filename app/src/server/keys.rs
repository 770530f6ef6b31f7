//! API keys: list, create (shown once), rotate with a grace period, revoke.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::*;

#[cfg(feature = "ssr")]
fn key_row(k: domain::api_keys::ApiKeyInfo, now: i64) -> ApiKeyRow {
    let status = match (&k.revoked_at, &k.expires_at) {
        (Some(_), _) => KeyStatus::Revoked,
        (None, Some(end)) if k.is_active(now) => KeyStatus::Expiring(end.clone()),
        (None, Some(_)) => KeyStatus::Expired,
        (None, None) => KeyStatus::Active,
    };
    ApiKeyRow {
        id: k.id,
        name: k.name,
        prefix: k.prefix,
        scopes: k.scopes.iter().map(|s| s.as_str().to_string()).collect(),
        created_by: k.created_by,
        created_at: k.created_at,
        last_used_at: k.last_used_at,
        last_used_ip: k.last_used_ip,
        status,
    }
}

#[server(prefix = "/console/fn", endpoint = "key_page")]
pub async fn key_page() -> Result<KeysPage, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::api_keys::{self, Scope};
    use domain::history::{self, Area};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let now = domain::clock::now_ms();
    let keys = api_keys::list(&core.db, tenant).await.map_err(internal)?;
    let history = history::list(&core.db, tenant, Some(Area::ApiKeys), 20)
        .await
        .map_err(internal)?;
    Ok(KeysPage {
        keys: keys.into_iter().map(|k| key_row(k, now)).collect(),
        scopes: Scope::ALL
            .iter()
            .map(|s| ScopeChoice {
                name: s.as_str().to_string(),
                description: s.description().to_string(),
            })
            .collect(),
        history: ssr::history_rows(history),
    })
}

#[server(prefix = "/console/fn", endpoint = "create_key", input = Json)]
pub async fn create_key(name: String, scopes: Vec<String>) -> Result<Saved<NewKey>, ServerFnError> {
    use crate::ssr;
    use domain::api_keys::{self, Scope};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let scopes: Vec<Scope> = scopes.iter().filter_map(|s| Scope::parse(s)).collect();
    let created = api_keys::create(
        &core.db,
        &caller.tenant.tenant_id,
        &name,
        &scopes,
        Some(&caller.user.email),
    )
    .await
    .map(|(info, key)| NewKey {
        name: info.name,
        key,
    });
    ssr::saved(created)
}

#[server(prefix = "/console/fn", endpoint = "rotate_key")]
pub async fn rotate_key(id: String, grace_hours: i64) -> Result<Saved<NewKey>, ServerFnError> {
    use crate::ssr;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let rotated = domain::api_keys::rotate(
        &core.db,
        &core.key_cache,
        &caller.tenant.tenant_id,
        &id,
        grace_hours.saturating_mul(3_600_000),
        Some(&caller.user.email),
    )
    .await
    .map(|(info, key)| NewKey {
        name: info.name,
        key,
    });
    ssr::saved(rotated)
}

#[server(prefix = "/console/fn", endpoint = "revoke_key")]
pub async fn revoke_key(id: String) -> Result<(), ServerFnError> {
    use crate::ssr;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    ssr::saved(
        domain::api_keys::revoke(
            &core.db,
            &core.key_cache,
            &caller.tenant.tenant_id,
            &id,
            Some(&caller.user.email),
        )
        .await,
    )
    .map(|_| ())
}
