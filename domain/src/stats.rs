//! Counts and rates for the dashboard, computed by the database over a time window.

use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::deliveries::DeliveryStatus;
use crate::error::Result;
use crate::events;

/// What happened in a tenant during a window ending now.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Overview {
    pub since_ms: i64,
    pub bucket_ms: i64,
    /// Inbound requests per source: (source, accepted, rejected).
    pub inbound: Vec<SourceCounts>,
    pub pass_updates: i64,
    pub pushes_delivered: i64,
    pub pushes_failed: i64,
    pub pushes_pending: i64,
    /// 95th percentile of receipt → processed, for events processed in the window.
    pub p95_processing_ms: Option<i64>,
    /// Oldest first, one per bucket, covering the whole window (empty ones included).
    pub buckets: Vec<Bucket>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceCounts {
    pub source: String,
    pub accepted: i64,
    pub rejected: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub start_ms: i64,
    pub accepted: i64,
    pub rejected: i64,
    pub delivered: i64,
    pub failed: i64,
}

impl Overview {
    pub fn accepted(&self) -> i64 {
        self.inbound.iter().map(|s| s.accepted).sum()
    }

    pub fn rejected(&self) -> i64 {
        self.inbound.iter().map(|s| s.rejected).sum()
    }
}

/// The overview of the `window_ms` before `now_ms`, in `buckets` equal buckets.
pub async fn overview(
    db: &Db,
    tenant_id: &str,
    now_ms: i64,
    window_ms: i64,
    buckets: i64,
) -> Result<Overview> {
    let bucket_ms = (window_ms / buckets.max(1)).max(1);
    // Buckets are aligned on their size, so a chart does not shift between refreshes.
    let since = (now_ms - window_ms) / bucket_ms * bucket_ms + bucket_ms;
    let mut overview = Overview {
        since_ms: since,
        bucket_ms,
        buckets: (0..buckets)
            .map(|i| Bucket {
                start_ms: since + i * bucket_ms,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    inbound_counts(db, tenant_id, &mut overview).await?;
    delivery_counts(db, tenant_id, &mut overview).await?;
    let (updates,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM pass_versions WHERE tenant_id = $1 AND created_at >= $2",
    )
    .bind(tenant_id)
    .bind(since)
    .fetch_one(db.reader())
    .await?;
    overview.pass_updates = updates;
    overview.p95_processing_ms = p95_processing(db, tenant_id, since).await?;
    Ok(overview)
}

fn bucket_of(overview: &mut Overview, index: i64) -> Option<&mut Bucket> {
    let first = overview.since_ms / overview.bucket_ms;
    overview
        .buckets
        .get_mut(usize::try_from(index - first).ok()?)
}

async fn inbound_counts(db: &Db, tenant_id: &str, overview: &mut Overview) -> Result<()> {
    let sql = format!(
        "SELECT received_at / {size} AS bucket, source, CASE WHEN status = '{rejected}' THEN 1 ELSE 0 END AS refused, COUNT(*) \
         FROM inbound_events WHERE tenant_id = $1 AND received_at >= $2 \
         GROUP BY bucket, source, refused",
        size = overview.bucket_ms,
        rejected = events::EventStatus::Rejected.as_str(),
    );
    let rows: Vec<(i64, String, i64, i64)> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(overview.since_ms)
        .fetch_all(db.reader())
        .await?;
    for (bucket, source, refused, n) in rows {
        let refused = refused != 0;
        let counts = match overview.inbound.iter_mut().position(|s| s.source == source) {
            Some(i) => &mut overview.inbound[i],
            None => {
                overview.inbound.push(SourceCounts {
                    source,
                    ..Default::default()
                });
                overview.inbound.last_mut().expect("just pushed")
            }
        };
        if refused {
            counts.rejected += n;
        } else {
            counts.accepted += n;
        }
        if let Some(b) = bucket_of(overview, bucket) {
            if refused {
                b.rejected += n;
            } else {
                b.accepted += n;
            }
        }
    }
    overview.inbound.sort_by(|a, b| a.source.cmp(&b.source));
    Ok(())
}

async fn delivery_counts(db: &Db, tenant_id: &str, overview: &mut Overview) -> Result<()> {
    let sql = format!(
        "SELECT updated_at / {size} AS bucket, status, COUNT(*) FROM deliveries \
         WHERE tenant_id = $1 AND updated_at >= $2 GROUP BY bucket, status",
        size = overview.bucket_ms
    );
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(overview.since_ms)
        .fetch_all(db.reader())
        .await?;
    for (bucket, status, n) in rows {
        let Ok(status) = DeliveryStatus::try_from(status.as_str()) else {
            continue;
        };
        match status {
            DeliveryStatus::Delivered => overview.pushes_delivered += n,
            DeliveryStatus::Failed => overview.pushes_failed += n,
            DeliveryStatus::Pending | DeliveryStatus::Retrying => overview.pushes_pending += n,
            DeliveryStatus::Retried => {}
        }
        if let Some(b) = bucket_of(overview, bucket) {
            match status {
                DeliveryStatus::Delivered => b.delivered += n,
                DeliveryStatus::Failed => b.failed += n,
                _ => {}
            }
        }
    }
    Ok(())
}

async fn p95_processing(db: &Db, tenant_id: &str, since: i64) -> Result<Option<i64>> {
    const PROCESSED: &str = "tenant_id = $1 AND received_at >= $2 AND processed_at IS NOT NULL";
    let (n,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM inbound_events WHERE {PROCESSED}"
    ))
    .bind(tenant_id)
    .bind(since)
    .fetch_one(db.reader())
    .await?;
    if n == 0 {
        return Ok(None);
    }
    // Nearest-rank percentile: the smallest value with at least 95 % at or below it.
    let rank = ((n * 95 + 99) / 100).max(1) - 1;
    let (value,): (i64,) = sqlx::query_as(&format!(
        "SELECT processed_at - received_at AS took FROM inbound_events WHERE {PROCESSED} \
         ORDER BY took LIMIT 1 OFFSET {rank}"
    ))
    .bind(tenant_id)
    .bind(since)
    .fetch_one(db.reader())
    .await?;
    Ok(Some(value))
}
