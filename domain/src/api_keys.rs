//! API keys: one tenant, a set of scopes, stored only as a SHA-256 hash.

use serde::{Deserialize, Serialize};

use crate::clock::{now_ms, rfc3339};
use crate::crypto::{random_token, sha256_hex};
use crate::db::Db;
use crate::error::{DomainError, Result};
use crate::history::{self, Area, Change};
use crate::ids::{new_id, API_KEY};
use crate::key_cache::KeyCache;

/// Defined apart so that the key cache can hold identities without importing this
/// store (which uses the cache).
pub use crate::key_identity::{Denied, KeyIdentity, Scope, USE_NOTE_INTERVAL_MS};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    /// The first characters of the key, to recognise it in a list.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<String>,
    /// Set on a rotated key: it keeps working until then.
    pub expires_at: Option<String>,
}

impl ApiKeyInfo {
    /// Usable now: not revoked and not past the end of a rotation's grace period.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none()
            && self
                .expires_at
                .as_deref()
                .and_then(crate::clock::parse_rfc3339)
                .is_none_or(|end| end > now)
    }
}

const KEY_PREFIX: &str = "phk_";

fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn scopes_from_text(text: &str) -> Vec<Scope> {
    text.split_whitespace().filter_map(Scope::parse).collect()
}

fn validate(name: &str, scopes: &[Scope]) -> Result<(String, Vec<Scope>)> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(DomainError::invalid(
            "name",
            "must have 1 to 100 characters",
        ));
    }
    if scopes.is_empty() {
        return Err(DomainError::invalid("scopes", "choose at least one scope"));
    }
    let mut scopes = scopes.to_vec();
    scopes.sort_by_key(|s| s.as_str());
    scopes.dedup();
    Ok((name.to_string(), scopes))
}

async fn insert(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    name: &str,
    scopes: Vec<Scope>,
    created_by: Option<&str>,
) -> Result<(ApiKeyInfo, String)> {
    let key = format!("{KEY_PREFIX}{}", random_token(32));
    let prefix: String = key.chars().take(KEY_PREFIX.len() + 6).collect();
    let id = new_id(API_KEY);
    let now = now_ms();
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(name)
    .bind(&prefix)
    .bind(sha256_hex(&key))
    .bind(scopes_to_text(&scopes))
    .bind(created_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let info = ApiKeyInfo {
        id,
        name: name.to_string(),
        prefix,
        scopes,
        created_by: created_by.map(str::to_string),
        created_at: rfc3339(now),
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        expires_at: None,
    };
    Ok((info, key))
}

/// Creates a key and returns it in clear, the only time it is ever available.
pub async fn create(
    db: &Db,
    tenant_id: &str,
    name: &str,
    scopes: &[Scope],
    created_by: Option<&str>,
) -> Result<(ApiKeyInfo, String)> {
    let (name, scopes) = validate(name, scopes)?;
    if !crate::tenants::exists(db, tenant_id).await? {
        return Err(DomainError::NotFound("tenant"));
    }
    let mut conn = db.writer().acquire().await?;
    let created = insert(&mut conn, tenant_id, &name, scopes, created_by).await?;
    drop(conn);
    record(db, tenant_id, created_by, &created.0, "Created API key").await?;
    Ok(created)
}

async fn record(
    db: &Db,
    tenant_id: &str,
    actor: Option<&str>,
    key: &ApiKeyInfo,
    what: &str,
) -> Result<()> {
    let summary = format!("{what} “{}” ({}…)", key.name, key.prefix);
    let scopes = key
        .scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let change = Change::new(format!("{}…", key.prefix), None, Some(scopes));
    history::record(
        db,
        tenant_id,
        Area::ApiKeys,
        actor.unwrap_or("unknown"),
        &summary,
        &[change],
    )
    .await
}

/// Replaces a key by a new one with the same name and scopes. The old key keeps
/// working for `grace_ms` (0: it stops at once), so callers can switch without a gap.
pub async fn rotate(
    db: &Db,
    keys: &KeyCache,
    tenant_id: &str,
    key_id: &str,
    grace_ms: i64,
    actor: Option<&str>,
) -> Result<(ApiKeyInfo, String)> {
    if !(0..=MAX_GRACE_MS).contains(&grace_ms) {
        return Err(DomainError::invalid(
            "grace",
            "must be between none and 30 days",
        ));
    }
    let now = now_ms();
    let Some(old) = find(db, tenant_id, key_id)
        .await?
        .filter(|k| k.is_active(now))
    else {
        return Err(DomainError::NotFound("api key"));
    };
    let mut tx = db.writer().begin().await?;
    let created = insert(&mut tx, tenant_id, &old.name, old.scopes.clone(), actor).await?;
    let ends = now + grace_ms;
    sqlx::query(
        "UPDATE api_keys SET expires_at = $1, replaced_by = $2, \
         revoked_at = CASE WHEN $3 = 0 THEN $4 ELSE revoked_at END \
         WHERE id = $5 AND tenant_id = $6",
    )
    .bind(ends)
    .bind(&created.0.id)
    .bind(grace_ms)
    .bind(now)
    .bind(key_id)
    .bind(tenant_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    keys.clear();
    let what = format!(
        "Rotated API key, the old one valid until {},",
        rfc3339(ends)
            .get(..16)
            .unwrap_or_default()
            .replace('T', " ")
    );
    record(db, tenant_id, actor, &created.0, &what).await?;
    Ok(created)
}

pub const MAX_GRACE_MS: i64 = 30 * 24 * 3600 * 1000;

/// The identity behind a presented key, if it is known and not revoked (read through
/// the [`crate::key_cache`]).
pub async fn identify(db: &Db, keys: &KeyCache, presented: &str) -> Result<Option<KeyIdentity>> {
    if !presented.starts_with(KEY_PREFIX) || presented.len() > 200 {
        return Ok(None);
    }
    let hash = sha256_hex(presented);
    let now = now_ms();
    if let Some(identity) = keys.get(&hash, now) {
        return Ok(Some(identity));
    }
    if keys.missed(&hash) {
        return Ok(None);
    }
    let generation = keys.generation();
    type Row = (String, String, String, String, Option<i64>, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, name, tenant_id, scopes, last_used_at, expires_at FROM api_keys \
         WHERE key_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind(&hash)
    .bind(now)
    .fetch_optional(db.reader())
    .await?;
    if row.is_none() {
        keys.miss(hash.clone());
    }
    Ok(row.map(
        |(key_id, name, tenant_id, scopes, last_used_at, expires_at)| {
            let identity = KeyIdentity {
                key_id,
                name,
                tenant_id,
                scopes: scopes_from_text(&scopes),
                last_used_at,
            };
            keys.put(generation, hash, identity.clone(), expires_at);
            identity
        },
    ))
}

/// Notes when and from where a key was used (see [`KeyIdentity::use_note_due`]).
pub async fn note_use(db: &Db, keys: &KeyCache, key_id: &str, ip: Option<&str>) -> Result<()> {
    let mut conn = db.background().await?;
    let now = now_ms();
    sqlx::query("UPDATE api_keys SET last_used_at = $1, last_used_ip = $2 WHERE id = $3")
        .bind(now)
        .bind(ip)
        .bind(key_id)
        .execute(&mut *conn)
        .await?;
    keys.noted(key_id, now);
    Ok(())
}

type InfoRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

const INFO_COLUMNS: &str = "id, name, prefix, scopes, created_by, created_at, last_used_at, \
     last_used_ip, revoked_at, expires_at";

fn info(row: InfoRow) -> ApiKeyInfo {
    let (id, name, prefix, scopes, created_by, created, used, ip, revoked, expires) = row;
    ApiKeyInfo {
        id,
        name,
        prefix,
        scopes: scopes_from_text(&scopes),
        created_by,
        created_at: rfc3339(created),
        last_used_at: used.map(rfc3339),
        last_used_ip: ip,
        revoked_at: revoked.map(rfc3339),
        expires_at: expires.map(rfc3339),
    }
}

pub async fn list(db: &Db, tenant_id: &str) -> Result<Vec<ApiKeyInfo>> {
    let rows: Vec<InfoRow> = sqlx::query_as(&format!(
        "SELECT {INFO_COLUMNS} FROM api_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(tenant_id)
    .fetch_all(db.reader())
    .await?;
    Ok(rows.into_iter().map(info).collect())
}

/// One key of this tenant (a key of another tenant is not found).
pub async fn find(db: &Db, tenant_id: &str, key_id: &str) -> Result<Option<ApiKeyInfo>> {
    let row: Option<InfoRow> = sqlx::query_as(&format!(
        "SELECT {INFO_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"
    ))
    .bind(tenant_id)
    .bind(key_id)
    .fetch_optional(db.reader())
    .await?;
    Ok(row.map(info))
}

/// Revokes a key of this tenant; a key of another tenant is "not found".
pub async fn revoke(
    db: &Db,
    keys: &KeyCache,
    tenant_id: &str,
    key_id: &str,
    actor: Option<&str>,
) -> Result<()> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(key_id)
    .bind(tenant_id)
    .execute(db.writer())
    .await?;
    if done.rows_affected() == 0 {
        return Err(DomainError::NotFound("api key"));
    }
    keys.clear();
    if let Some(key) = find(db, tenant_id, key_id).await? {
        record(db, tenant_id, actor, &key, "Revoked API key").await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_through_text() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert_eq!(
                serde_json::to_string(&scope).unwrap(),
                format!("\"{}\"", scope.as_str())
            );
        }
        assert_eq!(
            scopes_from_text(&scopes_to_text(&Scope::ALL)),
            Scope::ALL.to_vec()
        );
        assert_eq!(Scope::parse("passes.read"), None);
    }
}
