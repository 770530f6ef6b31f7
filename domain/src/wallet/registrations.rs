//! Apple devices registered for passes (PassKit web service), and what changed since
//! a device last asked.

use crate::clock::now_ms;
use crate::db::Db;
use crate::error::Result;

/// Registers a device for a pass; true when the registration is new.
pub async fn register(
    db: &Db,
    tenant_id: &str,
    device_id: &str,
    pass_type_identifier: &str,
    pass_id: &str,
    push_token: &str,
) -> Result<bool> {
    let updated = sqlx::query(
        "UPDATE apple_registrations SET push_token = $1 WHERE tenant_id = $2 AND device_id = $3 \
         AND pass_type_identifier = $4 AND pass_id = $5",
    )
    .bind(push_token)
    .bind(tenant_id)
    .bind(device_id)
    .bind(pass_type_identifier)
    .bind(pass_id)
    .execute(db.writer())
    .await?;
    if updated.rows_affected() > 0 {
        return Ok(false);
    }
    let inserted = sqlx::query(
        "INSERT INTO apple_registrations (tenant_id, device_id, pass_type_identifier, pass_id, push_token, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(device_id)
    .bind(pass_type_identifier)
    .bind(pass_id)
    .bind(push_token)
    .bind(now_ms())
    .execute(db.writer())
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn unregister(
    db: &Db,
    tenant_id: &str,
    device_id: &str,
    pass_type_identifier: &str,
    pass_id: &str,
) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM apple_registrations WHERE tenant_id = $1 AND device_id = $2 AND pass_type_identifier = $3 AND pass_id = $4",
    )
    .bind(tenant_id)
    .bind(device_id)
    .bind(pass_type_identifier)
    .bind(pass_id)
    .execute(db.writer())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Forgets every registration reached through a push token APNs says is gone.
pub async fn forget_push_token(db: &Db, tenant_id: &str, push_token: &str) -> Result<u64> {
    let done =
        sqlx::query("DELETE FROM apple_registrations WHERE tenant_id = $1 AND push_token = $2")
            .bind(tenant_id)
            .bind(push_token)
            .execute(&mut *db.background().await?)
            .await?;
    Ok(done.rows_affected())
}

/// Serial numbers of the device's passes of this type updated after `since` (a tag
/// from an earlier answer), and the new tag. The tag never goes backwards.
pub async fn updated_since(
    db: &Db,
    tenant_id: &str,
    device_id: &str,
    pass_type_identifier: &str,
    since: Option<i64>,
) -> Result<(Vec<String>, i64)> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT p.id, p.updated_at FROM apple_registrations r JOIN passes p ON p.tenant_id = r.tenant_id AND p.id = r.pass_id \
         WHERE r.tenant_id = $1 AND r.device_id = $2 AND r.pass_type_identifier = $3 ORDER BY p.id",
    )
    .bind(tenant_id)
    .bind(device_id)
    .bind(pass_type_identifier)
    .fetch_all(db.reader())
    .await?;
    let since = since.unwrap_or(i64::MIN);
    let tag = rows.iter().map(|(_, at)| *at).max().unwrap_or(0).max(since);
    let serials = rows
        .into_iter()
        .filter(|(_, at)| *at > since)
        .map(|(id, _)| id)
        .collect();
    Ok((serials, tag))
}

/// An Apple device holding a pass, and the newest version it was pushed.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppleDevice {
    pub device_id: String,
    pub pushed_version: i64,
    pub registered_at: String,
}

/// Where a pass lives: the Apple devices that added it and its Google Wallet object.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassWallets {
    pub apple: Vec<AppleDevice>,
    /// (object id, the newest version Google has).
    pub google: Option<(String, i64)>,
}

pub async fn wallets_of(db: &Db, tenant_id: &str, pass_id: &str) -> Result<PassWallets> {
    let apple: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT device_id, pushed_version, created_at FROM apple_registrations \
         WHERE tenant_id = $1 AND pass_id = $2 ORDER BY created_at, device_id",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .fetch_all(db.reader())
    .await?;
    let google: Option<(String, i64)> = sqlx::query_as(
        "SELECT object_id, delivered_version FROM google_objects WHERE tenant_id = $1 AND pass_id = $2",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .fetch_optional(db.reader())
    .await?;
    Ok(PassWallets {
        apple: apple
            .into_iter()
            .map(|(device_id, pushed_version, at)| AppleDevice {
                device_id,
                pushed_version,
                registered_at: crate::clock::rfc3339(at),
            })
            .collect(),
        google,
    })
}
