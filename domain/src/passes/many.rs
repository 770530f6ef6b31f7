//! Many pass lookups and updates in a few statements, for the workers: a BULK chunk
//! or a run of custom actions reads its passes in one query, merges every update in
//! memory, in order, and writes each changed pass once and all new versions in
//! multi-row statements. [`super::patch`] is the same for one update.

use std::collections::HashMap;

use serde_json::Value;
use sqlx::AnyConnection;

use super::{from_row, merge, validate_data, Pass, PassRow, Patched, Update, PASS_COLUMNS};
use crate::clock::{now_ms, rfc3339};
use crate::db::Backend;
use crate::error::{DomainError, Result};
use crate::sql::{self, params, PER_STATEMENT};

/// The pass type of each of `ids` that exists.
pub async fn types_of(
    conn: &mut AnyConnection,
    tenant_id: &str,
    ids: &[&str],
) -> Result<HashMap<String, String>> {
    let mut found = HashMap::new();
    for ids in ids.chunks(PER_STATEMENT) {
        let sql = format!(
            "SELECT id, pass_type FROM passes WHERE tenant_id = $1 AND id IN ({})",
            params(2, ids.len())
        );
        let mut query = sqlx::query_as::<_, (String, String)>(&sql).bind(tenant_id);
        for id in ids {
            query = query.bind(*id);
        }
        found.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(found)
}

/// For each value of identifier `name` (normalized, see
/// [`super::normalize_identifier`]), the passes that have it, with their types, in
/// pass id order.
pub async fn find_many(
    conn: &mut AnyConnection,
    tenant_id: &str,
    name: &str,
    values: &[&str],
) -> Result<HashMap<String, Vec<(String, String)>>> {
    let mut found: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for values in values.chunks(PER_STATEMENT) {
        let sql = format!(
            "SELECT i.value, i.pass_id, p.pass_type FROM pass_identifiers i \
             JOIN passes p ON p.tenant_id = i.tenant_id AND p.id = i.pass_id \
             WHERE i.tenant_id = $1 AND i.name = $2 AND i.value IN ({}) ORDER BY i.pass_id",
            params(3, values.len())
        );
        let mut query = sqlx::query_as::<_, (String, String, String)>(&sql)
            .bind(tenant_id)
            .bind(name);
        for value in values {
            query = query.bind(*value);
        }
        for (value, pass_id, pass_type) in query.fetch_all(&mut *conn).await? {
            found.entry(value).or_default().push((pass_id, pass_type));
        }
    }
    Ok(found)
}

/// Applies each `(pass id, update)` in order, each on top of the ones before it,
/// inside the caller's transaction; a pass's version rises only when its content
/// changed. `None` for a pass that does not exist.
pub async fn patch_many(
    conn: &mut AnyConnection,
    tenant_id: &str,
    planned: &[(&str, Update<'_>)],
) -> Result<Vec<Option<Patched>>> {
    for (_, update) in planned {
        let errors = validate_data(update.changes, true);
        if !errors.is_empty() {
            return Err(DomainError::Invalid(errors));
        }
    }
    let mut ids: Vec<&str> = planned.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut passes = load_locked(conn, tenant_id, &ids).await?;
    let read: HashMap<String, i64> = passes
        .iter()
        .map(|(id, pass)| (id.clone(), pass.version))
        .collect();
    let now = now_ms();
    let mut versions = Vec::new();
    let mut results = Vec::with_capacity(planned.len());
    for (pass_id, update) in planned {
        let Some(pass) = passes.get_mut(*pass_id) else {
            results.push(None);
            continue;
        };
        let (data, changes) = merge(&pass.additional_data, update.changes);
        if !changes.is_empty() {
            pass.additional_data = data;
            pass.version += 1;
            pass.updated_at = rfc3339(now);
            versions.push(NewVersion {
                pass_id,
                version: pass.version,
                changes: serde_json::to_string(&changes).expect("changes serialise"),
                update: *update,
            });
        }
        results.push(Some(Patched {
            pass: pass.clone(),
            significant: !changes.is_empty() && update.message.is_some(),
            changes,
        }));
    }
    let changed: Vec<(&Pass, i64)> = passes
        .values()
        .filter(|p| p.version != read[&p.id])
        .map(|p| (p, read[&p.id]))
        .collect();
    store(conn, tenant_id, &changed, now).await?;
    insert_versions(conn, tenant_id, &versions, now).await?;
    Ok(results)
}

/// The passes of `ids` (sorted), locked until the transaction ends on PostgreSQL
/// (in id order, so two batches cannot deadlock); SQLite has one writer anyway.
async fn load_locked(
    conn: &mut AnyConnection,
    tenant_id: &str,
    ids: &[&str],
) -> Result<HashMap<String, Pass>> {
    let lock = if Backend::of(conn) == Backend::Postgres {
        " FOR UPDATE"
    } else {
        ""
    };
    let mut passes = HashMap::with_capacity(ids.len());
    for ids in ids.chunks(PER_STATEMENT) {
        let sql = format!(
            "SELECT {PASS_COLUMNS} FROM passes p WHERE p.tenant_id = $1 AND p.id IN ({}) \
             ORDER BY p.id{lock}",
            params(2, ids.len())
        );
        let mut query = sqlx::query_as::<_, PassRow>(&sql).bind(tenant_id);
        for id in ids {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let pass = from_row(row)?;
            passes.insert(pass.id.clone(), pass);
        }
    }
    Ok(passes)
}

/// Writes each pass's new content over the version it was read at, in multi-row
/// updates.
async fn store(
    conn: &mut AnyConnection,
    tenant_id: &str,
    passes: &[(&Pass, i64)],
    now: i64,
) -> Result<()> {
    const PER_ROW: usize = 4;
    for rows in passes.chunks(PER_STATEMENT) {
        let values: Vec<String> = (0..rows.len())
            .map(|r| format!("({})", params(3 + r * PER_ROW, PER_ROW)))
            .collect();
        // VALUES columns are column1.. on both backends.
        let sql = format!(
            "UPDATE passes SET additional_data = v.column2, version = v.column3, updated_at = $2 \
             FROM (VALUES {}) AS v \
             WHERE passes.tenant_id = $1 AND passes.id = v.column1 AND passes.version = v.column4",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(tenant_id).bind(now);
        for (pass, read) in rows {
            query = query
                .bind(pass.id.as_str())
                .bind(Value::Object(pass.additional_data.clone()).to_string())
                .bind(pass.version)
                .bind(*read);
        }
        let updated = query.execute(&mut *conn).await?;
        if updated.rows_affected() != rows.len() as u64 {
            // Cannot happen while the rows are locked; the job is retried if it does.
            return Err(DomainError::Internal(
                "a pass changed while a batch held it".into(),
            ));
        }
    }
    Ok(())
}

struct NewVersion<'a> {
    pass_id: &'a str,
    version: i64,
    changes: String,
    update: Update<'a>,
}

/// Version rows in multi-row inserts.
async fn insert_versions(
    conn: &mut AnyConnection,
    tenant_id: &str,
    versions: &[NewVersion<'_>],
    now: i64,
) -> Result<()> {
    const PER_ROW: usize = 9;
    for rows in versions.chunks(PER_STATEMENT) {
        let mut marks = sql::Marks::new(conn);
        let values: Vec<String> = (0..rows.len())
            .map(|_| format!("({})", marks.list(PER_ROW)))
            .collect();
        let sql = format!(
            "INSERT INTO pass_versions (tenant_id, created_at, pass_id, version, changes, cause, message, significant, event_id) \
             VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for row in rows {
            let u = row.update;
            query = query
                .bind(tenant_id)
                .bind(now)
                .bind(row.pass_id)
                .bind(row.version)
                .bind(row.changes.as_str())
                .bind(serde_json::to_string(u.cause).expect("cause serialises"))
                .bind(u.message)
                .bind(i64::from(u.message.is_some()))
                .bind(u.cause.event_id.as_deref());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
