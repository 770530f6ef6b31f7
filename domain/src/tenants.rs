//! Tenants: one company using Passhook; every row of data belongs to one.

use serde::{Deserialize, Serialize};

use crate::clock::{now_ms, rfc3339};
use crate::db::{is_unique_violation, Db};
use crate::error::{DomainError, Result};
use crate::recent::Recent;

/// Which tenants exist, remembered: listeners ask on every request, and refusing an
/// unknown tenant must not cost a database read. Tenants are never deleted, so a
/// known one stays known; an unknown one is asked again after [`UNKNOWN_FOR`] (a
/// tenant created meanwhile is found within that).
#[derive(Default)]
pub struct KnownTenants(Recent<String, bool>);

/// How long "no such tenant" is believed.
pub const UNKNOWN_FOR: std::time::Duration = std::time::Duration::from_secs(1);

impl KnownTenants {
    /// What is remembered of the tenant, without asking the database.
    pub fn known(&self, id: &str) -> Option<bool> {
        self.0.get(id)
    }

    pub async fn exists(&self, db: &Db, id: &str) -> Result<bool> {
        if let Some(known) = self.0.get(id) {
            return Ok(known);
        }
        let known = exists(db, id).await?;
        let ttl = if known {
            std::time::Duration::from_secs(3600)
        } else {
            UNKNOWN_FOR
        };
        self.0.put(id.to_string(), known, ttl);
        Ok(known)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// Tenant ids match `^[a-z0-9][a-z0-9-]{1,62}$` (CONTRACT §1).
pub fn is_valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    (2..=63).contains(&bytes.len())
        && matches!(bytes[0], b'a'..=b'z' | b'0'..=b'9')
        && bytes[1..]
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

pub async fn create(db: &Db, id: &str, name: &str) -> Result<Tenant> {
    if !is_valid_id(id) {
        return Err(DomainError::invalid(
            "tenantId",
            "must match ^[a-z0-9][a-z0-9-]{1,62}$",
        ));
    }
    let now = now_ms();
    sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(db.writer())
        .await
        .map_err(|e| match is_unique_violation(&e) {
            true => DomainError::Conflict(format!("tenant {id} already exists")),
            false => e.into(),
        })?;
    Ok(Tenant {
        id: id.to_string(),
        name: name.to_string(),
        created_at: rfc3339(now),
    })
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Tenant>> {
    let row: Option<(String, String, i64)> =
        sqlx::query_as("SELECT id, name, created_at FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(db.reader())
            .await?;
    Ok(row.map(|(id, name, at)| Tenant {
        id,
        name,
        created_at: rfc3339(at),
    }))
}

pub async fn exists(db: &Db, id: &str) -> Result<bool> {
    Ok(get(db, id).await?.is_some())
}

#[cfg(test)]
mod tests {
    use super::is_valid_id;

    #[test]
    fn tenant_ids_follow_the_contract() {
        for ok in ["ab", "demo", "acme-retail", "0x", &"a".repeat(63)] {
            assert!(is_valid_id(ok), "{ok}");
        }
        for bad in ["a", "-ab", "Acme", "a_b", "a b", "", &"a".repeat(64)] {
            assert!(!is_valid_id(bad), "{bad}");
        }
    }
}
