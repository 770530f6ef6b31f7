//! A tenant's SFMC integration: signing keys (several may be active during rotation)
//! and the installed package's customer key. Salts are sealed at rest.

use serde::{Deserialize, Serialize};

use crate::clock::{now_ms, rfc3339};
use crate::db::Db;
use crate::error::{DomainError, FieldError, Result};
use crate::history::{self, Area, Change, MASK};
use crate::sfmc::jwt::{decode_salt, secret_bytes, SigningKey};
use crate::vault::Vault;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SigningKeyInput {
    pub id: String,
    /// The salt: `0x…` hexadecimal as SFMC shows it, or the raw string; at least 16
    /// bytes once decoded. May be left out for a key that is already stored, to keep
    /// its secret.
    pub secret: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SfmcSettingsInput {
    pub signing_keys: Vec<SigningKeyInput>,
    pub customer_key: Option<String>,
    /// Left out: unchanged.
    #[serde(default)]
    pub when_no_pass: Option<WhenNoPass>,
}

/// How an execute is answered when no pass matches the contact. Salesforce takes a
/// contact out of the journey on any 4xx, so its later steps (an email, an SMS)
/// never reach people without a pass unless the tenant chooses `continue`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WhenNoPass {
    /// 404 `NO_MATCHING_PASS`: the contact leaves the journey (as the reference does).
    #[default]
    Leave,
    /// 200 `{"scheduled":0}`: the contact continues.
    Continue,
}

impl WhenNoPass {
    pub fn as_str(self) -> &'static str {
        match self {
            WhenNoPass::Leave => "leave",
            WhenNoPass::Continue => "continue",
        }
    }

    fn from_stored(text: &str) -> Self {
        match text {
            "continue" => WhenNoPass::Continue,
            _ => WhenNoPass::Leave,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SigningKeyView {
    pub id: String,
    pub secret: String,
    pub created_at: String,
    pub last_verified_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SfmcSettingsView {
    pub signing_keys: Vec<SigningKeyView>,
    pub customer_key: Option<String>,
    pub when_no_pass: WhenNoPass,
}

fn seal_context(tenant_id: &str, key_id: &str) -> String {
    format!("{tenant_id}/sfmc.signingKey/{key_id}")
}

/// Replaces the tenant's signing keys and customer key.
pub async fn put(
    vault: Vault<'_>,
    tenant_id: &str,
    input: SfmcSettingsInput,
    actor: &str,
) -> Result<SfmcSettingsView> {
    let before = view(vault.db, tenant_id).await?;
    let before_keys = sealed_keys(vault.db, tenant_id).await?;
    let after = store(vault, tenant_id, input).await?;
    let after_keys = sealed_keys(vault.db, tenant_id).await?;
    let mut changes = Vec::new();
    for (id, sealed, _) in &before_keys {
        match after_keys.iter().find(|(k, _, _)| k == id) {
            None => changes.push(Change::new(
                format!("signing key {id}"),
                Some(MASK.into()),
                None,
            )),
            Some((_, now, _)) if now != sealed => changes.push(Change::new(
                format!("signing key {id}"),
                Some(MASK.into()),
                Some(MASK.into()),
            )),
            Some(_) => {}
        }
    }
    for (id, _, _) in &after_keys {
        if !before_keys.iter().any(|(k, _, _)| k == id) {
            changes.push(Change::new(
                format!("signing key {id}"),
                None,
                Some(MASK.into()),
            ));
        }
    }
    if before.customer_key != after.customer_key {
        changes.push(Change::new(
            "customerKey",
            before.customer_key.clone(),
            after.customer_key.clone(),
        ));
    }
    if before.when_no_pass != after.when_no_pass {
        changes.push(Change::new(
            "whenNoPass",
            Some(before.when_no_pass.as_str().into()),
            Some(after.when_no_pass.as_str().into()),
        ));
    }
    history::record(
        vault.db,
        tenant_id,
        Area::Sfmc,
        actor,
        "Changed SFMC settings",
        &changes,
    )
    .await?;
    Ok(after)
}

async fn store(
    vault: Vault<'_>,
    tenant_id: &str,
    input: SfmcSettingsInput,
) -> Result<SfmcSettingsView> {
    let existing = sealed_keys(vault.db, tenant_id).await?;
    let mut errors = Vec::new();
    let mut keys = Vec::new();
    for (i, key) in input.signing_keys.iter().enumerate() {
        let id = key.id.trim();
        if id.is_empty() || id.len() > 100 {
            errors.push(FieldError::new(
                format!("signingKeys[{i}].id"),
                "must have 1 to 100 characters",
            ));
            continue;
        }
        if keys.iter().any(|(k, _, _)| k == id) {
            errors.push(FieldError::new(
                format!("signingKeys[{i}].id"),
                "is given twice",
            ));
            continue;
        }
        let kept = existing.iter().find(|(k, _, _)| k == id);
        match (key.secret.as_deref().filter(|s| !s.is_empty()), kept) {
            (Some(secret), _) => match secret_bytes(secret) {
                Ok(_) => keys.push((
                    id.to_string(),
                    vault
                        .master_key
                        .encrypt(secret, &seal_context(tenant_id, id)),
                    now_ms(),
                )),
                Err(e) => errors.push(FieldError::new(format!("signingKeys[{i}].secret"), e)),
            },
            (None, Some((_, sealed, created))) => {
                keys.push((id.to_string(), sealed.clone(), *created))
            }
            (None, None) => errors.push(FieldError::new(
                format!("signingKeys[{i}].secret"),
                "is required for a new key",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let customer_key = input
        .customer_key
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty());
    let when_no_pass = match input.when_no_pass {
        Some(choice) => choice,
        None => when_no_pass(vault.db, tenant_id).await?,
    };
    let mut tx = vault.db.writer().begin().await?;
    sqlx::query(
        "INSERT INTO sfmc_settings (tenant_id, customer_key, when_no_pass, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id) DO UPDATE SET customer_key = excluded.customer_key, \
         when_no_pass = excluded.when_no_pass, updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(customer_key)
    .bind(when_no_pass.as_str())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let kept_ids: Vec<&str> = keys.iter().map(|(id, _, _)| id.as_str()).collect();
    for (id, _, _) in &existing {
        if !kept_ids.contains(&id.as_str()) {
            sqlx::query("DELETE FROM sfmc_keys WHERE tenant_id = $1 AND key_id = $2")
                .bind(tenant_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
    }
    for (id, sealed, created) in &keys {
        sqlx::query(
            "INSERT INTO sfmc_keys (tenant_id, key_id, secret, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, key_id) DO UPDATE SET secret = excluded.secret",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(sealed)
        .bind(created)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    view(vault.db, tenant_id).await
}

async fn sealed_keys(db: &Db, tenant_id: &str) -> Result<Vec<(String, String, i64)>> {
    Ok(sqlx::query_as("SELECT key_id, secret, created_at FROM sfmc_keys WHERE tenant_id = $1 ORDER BY created_at, key_id")
        .bind(tenant_id)
        .fetch_all(db.reader())
        .await?)
}

/// The active signing keys in clear, for verifying tokens.
pub async fn signing_keys(vault: Vault<'_>, tenant_id: &str) -> Result<Vec<SigningKey>> {
    sealed_keys(vault.db, tenant_id)
        .await?
        .into_iter()
        .map(|(id, sealed, _)| {
            let salt = vault
                .master_key
                .decrypt(&sealed, &seal_context(tenant_id, &id))
                .map_err(|e| DomainError::Internal(e.to_string()))?;
            // Read as stored, whatever its length: `jwt::verify` refuses short keys.
            let secret = decode_salt(&salt).map_err(DomainError::Internal)?;
            Ok(SigningKey { id, secret })
        })
        .collect()
}

/// Notes which key verified the latest request (shown in the console).
pub async fn mark_verified(db: &Db, tenant_id: &str, key_id: &str) -> Result<()> {
    sqlx::query("UPDATE sfmc_keys SET last_verified_at = $1 WHERE tenant_id = $2 AND key_id = $3")
        .bind(now_ms())
        .bind(tenant_id)
        .bind(key_id)
        .execute(db.writer())
        .await?;
    Ok(())
}

pub async fn customer_key(db: &Db, tenant_id: &str) -> Result<Option<String>> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT customer_key FROM sfmc_settings WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(db.reader())
            .await?;
    Ok(row.and_then(|(k,)| k))
}

/// How the tenant's executes are answered when no pass matches.
pub async fn when_no_pass(db: &Db, tenant_id: &str) -> Result<WhenNoPass> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT when_no_pass FROM sfmc_settings WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(db.reader())
            .await?;
    Ok(row.map_or(WhenNoPass::Leave, |(text,)| WhenNoPass::from_stored(&text)))
}

pub async fn view(db: &Db, tenant_id: &str) -> Result<SfmcSettingsView> {
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT key_id, created_at, last_verified_at FROM sfmc_keys WHERE tenant_id = $1 ORDER BY created_at, key_id",
    )
    .bind(tenant_id)
    .fetch_all(db.reader())
    .await?;
    Ok(SfmcSettingsView {
        signing_keys: rows
            .into_iter()
            .map(|(id, created, verified)| SigningKeyView {
                id,
                secret: "••••••••".into(),
                created_at: rfc3339(created),
                last_verified_at: verified.map(rfc3339),
            })
            .collect(),
        customer_key: customer_key(db, tenant_id).await?,
        when_no_pass: when_no_pass(db, tenant_id).await?,
    })
}
