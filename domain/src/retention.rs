//! Retention: inbound events keep their body, headers and answer for the tenant's
//! `retention_days` (30 unless set). [`purge`] then empties them, keeping the row's
//! metadata (so audit listings, counts and links still work) and adding it to the
//! daily counts in `event_counts_daily`; it also deletes delivery and job attempts
//! older than the retention. Each event is counted once: the purge marks it
//! `purged_at` in the same statement that selects it.

use chrono::DateTime;
use serde::Serialize;
use sqlx::Connection;
use std::collections::BTreeMap;

use crate::db::Db;
use crate::error::{DomainError, Result};
use crate::history::{self, Area, Change};

pub const DEFAULT_DAYS: i64 = 30;
pub const MIN_DAYS: i64 = 1;
pub const MAX_DAYS: i64 = 3650;
const DAY_MS: i64 = 24 * 3600 * 1000;
/// Events emptied per transaction.
const BATCH: i64 = 2_000;

/// What one purge did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeReport {
    pub tenants: u64,
    /// Events whose body, headers and answer were removed.
    pub events: u64,
    pub delivery_attempts: u64,
    pub job_attempts: u64,
}

/// The tenant's retention in days.
pub async fn get_days(db: &Db, tenant_id: &str) -> Result<i64> {
    let row: Option<(i64,)> = sqlx::query_as("SELECT retention_days FROM tenants WHERE id = $1")
        .bind(tenant_id)
        .fetch_optional(db.reader())
        .await?;
    row.map(|(days,)| days)
        .ok_or(DomainError::NotFound("tenant"))
}

/// Sets the tenant's retention (1 to 3650 days) and records the change in the
/// settings history under `actor`.
pub async fn set_days(db: &Db, tenant_id: &str, days: i64, actor: &str) -> Result<()> {
    if !(MIN_DAYS..=MAX_DAYS).contains(&days) {
        return Err(DomainError::invalid(
            "retentionDays",
            &format!("must be between {MIN_DAYS} and {MAX_DAYS} days"),
        ));
    }
    let before = get_days(db, tenant_id).await?;
    sqlx::query("UPDATE tenants SET retention_days = $1 WHERE id = $2")
        .bind(days)
        .bind(tenant_id)
        .execute(db.writer())
        .await?;
    history::record(
        db,
        tenant_id,
        Area::Retention,
        actor,
        "Changed how long events keep their content",
        &[Change::new(
            "retentionDays",
            Some(before.to_string()),
            Some(days.to_string()),
        )]
        .into_iter()
        .filter(|_| before != days)
        .collect::<Vec<_>>(),
    )
    .await
}

/// `YYYY-MM-DD` (UTC) of a time in ms.
fn day_of(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// For every tenant, empties inbound events older than its retention (counting them
/// per day, source and status first) and deletes older delivery and job attempts.
/// Safe to run twice, and from several replicas at once.
pub async fn purge(db: &Db, now_ms: i64) -> Result<PurgeReport> {
    let tenants: Vec<(String, i64)> = sqlx::query_as("SELECT id, retention_days FROM tenants")
        .fetch_all(db.reader())
        .await?;
    let mut report = PurgeReport::default();
    for (tenant_id, days) in tenants {
        let cutoff = now_ms - days.clamp(MIN_DAYS, MAX_DAYS) * DAY_MS;
        report.tenants += 1;
        report.events += purge_events(db, &tenant_id, cutoff, now_ms).await?;
        let mut conn = db.background().await?;
        report.delivery_attempts += sqlx::query(
            "DELETE FROM delivery_attempts WHERE attempted_at < $1 \
             AND delivery_id IN (SELECT id FROM deliveries WHERE tenant_id = $2)",
        )
        .bind(cutoff)
        .bind(&tenant_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        report.job_attempts +=
            sqlx::query("DELETE FROM job_attempts WHERE tenant_id = $1 AND started_at < $2")
                .bind(&tenant_id)
                .bind(cutoff)
                .execute(&mut *conn)
                .await?
                .rows_affected();
    }
    if report.events + report.delivery_attempts + report.job_attempts > 0 {
        tracing::info!(?report, "retention purge");
    }
    Ok(report)
}

/// Empties a tenant's events received before `cutoff`, a batch per transaction: the
/// UPDATE marks them purged and returns what the counts need, so a concurrent purge
/// (another replica) skips them and nothing is counted twice.
async fn purge_events(db: &Db, tenant_id: &str, cutoff: i64, now_ms: i64) -> Result<u64> {
    let mut purged = 0;
    loop {
        let mut conn = db.background().await?;
        let mut tx = conn.begin().await?;
        let rows: Vec<(i64, String, String)> = sqlx::query_as(
            "UPDATE inbound_events SET body = NULL, headers = '{}', response = NULL, purged_at = $1 \
             WHERE purged_at IS NULL AND id IN (SELECT id FROM inbound_events \
             WHERE tenant_id = $2 AND received_at < $3 AND purged_at IS NULL LIMIT $4) \
             RETURNING received_at, source, status",
        )
        .bind(now_ms)
        .bind(tenant_id)
        .bind(cutoff)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut counts: BTreeMap<(String, String, String), i64> = BTreeMap::new();
        for (at, source, status) in &rows {
            *counts
                .entry((day_of(*at), source.clone(), status.clone()))
                .or_default() += 1;
        }
        for ((day, source, status), count) in counts {
            sqlx::query(
                "INSERT INTO event_counts_daily (tenant_id, day, source, status, count) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, day, source, status) \
                 DO UPDATE SET count = event_counts_daily.count + excluded.count",
            )
            .bind(tenant_id)
            .bind(day)
            .bind(source)
            .bind(status)
            .bind(count)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        purged += rows.len() as u64;
        if (rows.len() as i64) < BATCH {
            return Ok(purged);
        }
    }
}

/// One day's count of purged events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DailyCount {
    pub day: String,
    pub source: String,
    pub status: String,
    pub count: i64,
}

/// The counts kept for a tenant's purged events, oldest day first.
pub async fn daily_counts(db: &Db, tenant_id: &str) -> Result<Vec<DailyCount>> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT day, source, status, count FROM event_counts_daily WHERE tenant_id = $1 \
         ORDER BY day, source, status",
    )
    .bind(tenant_id)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(day, source, status, count)| DailyCount {
            day,
            source,
            status,
            count,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_are_utc_dates() {
        assert_eq!(super::day_of(1_700_000_000_123), "2023-11-14");
        assert_eq!(super::day_of(0), "1970-01-01");
    }
}
