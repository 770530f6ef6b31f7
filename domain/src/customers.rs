//! Customers as Actito knows them: the latest profile attributes by profile id.

use serde_json::{Map, Value};
use sqlx::AnyConnection;

use crate::clock::now_ms;
use crate::db::Db;
use crate::error::Result;

/// Stores the profile and returns the attributes it had before (empty when new).
pub async fn upsert(
    conn: &mut AnyConnection,
    tenant_id: &str,
    profile_id: &str,
    attributes: &Map<String, Value>,
) -> Result<Map<String, Value>> {
    let before: Option<(String,)> = sqlx::query_as(
        "SELECT attributes FROM customers WHERE tenant_id = $1 AND actito_profile_id = $2",
    )
    .bind(tenant_id)
    .bind(profile_id)
    .fetch_optional(&mut *conn)
    .await?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO customers (tenant_id, actito_profile_id, attributes, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tenant_id, actito_profile_id) \
         DO UPDATE SET attributes = excluded.attributes, updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(profile_id)
    .bind(Value::Object(attributes.clone()).to_string())
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(before
        .and_then(|(text,)| serde_json::from_str(&text).ok())
        .unwrap_or_default())
}

pub async fn get(db: &Db, tenant_id: &str, profile_id: &str) -> Result<Option<Map<String, Value>>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT attributes FROM customers WHERE tenant_id = $1 AND actito_profile_id = $2",
    )
    .bind(tenant_id)
    .bind(profile_id)
    .fetch_optional(db.reader())
    .await?;
    Ok(row.and_then(|(t,)| serde_json::from_str(&t).ok()))
}
