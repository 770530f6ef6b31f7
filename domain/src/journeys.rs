//! Journeys: SFMC Journey Builder executions grouped by journey (and Actito custom
//! actions grouped by the kind of push), with what they matched, changed and sent.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::db::Db;
use crate::deliveries;
use crate::error::Result;
use crate::events;

/// One journey's executions and what came of them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JourneySummary {
    /// The SFMC journey id, or for Actito the kind of push (e.g. `custom-action.updatePass`).
    pub journey_id: String,
    pub source: String,
    pub executions: i64,
    /// Executions that matched at least one pass.
    pub matched: i64,
    /// Executions answered 404: no pass matched the contact.
    pub unmatched: i64,
    /// Other refusals (bad token, malformed arguments…).
    pub refused: i64,
    pub passes_updated: i64,
    pub pushes_sent: i64,
    pub pushes_failed: i64,
    pub first_at: String,
    pub last_at: String,
}

/// One contact (`keyValue`) within a journey.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactRow {
    pub key_value: String,
    pub executions: i64,
    pub unmatched: i64,
    pub last_event_id: String,
    pub last_at: String,
    /// Passes this contact's executions changed.
    pub pass_ids: Vec<String>,
}

/// The label of a group: the SFMC journey, else the kind of Actito push.
const GROUP: &str = "COALESCE(journey_id, kind)";
const EXECUTIONS: &str = "((source = 'sfmc' AND kind LIKE '%.execute' AND journey_id IS NOT NULL) \
     OR (source = 'actito' AND kind LIKE 'custom-action.%'))";

type SummaryRow = (String, String, i64, i64, i64, i64, i64);

/// Journeys with executions since `since_ms`, most recently active first.
pub async fn list(db: &Db, tenant_id: &str, since_ms: i64) -> Result<Vec<JourneySummary>> {
    let sql = format!(
        "SELECT {GROUP} AS journey, source, COUNT(*), \
         SUM(CASE WHEN status <> '{rejected}' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN reason = 'NO_MATCHING_PASS' THEN 1 ELSE 0 END), \
         MIN(received_at), MAX(received_at) \
         FROM inbound_events WHERE tenant_id = $1 AND received_at >= $2 AND {EXECUTIONS} \
         GROUP BY journey, source ORDER BY MAX(received_at) DESC LIMIT 200",
        rejected = events::REJECTED
    );
    let rows: Vec<SummaryRow> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(since_ms)
        .fetch_all(db.reader())
        .await?;
    let outcomes = outcomes(db, tenant_id, since_ms).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (journey_id, source, executions, matched, unmatched, first, last) in rows {
        let (passes_updated, pushes_sent, pushes_failed) =
            outcomes.get(&journey_id).copied().unwrap_or_default();
        out.push(JourneySummary {
            journey_id,
            source,
            executions,
            matched,
            unmatched,
            refused: executions - matched - unmatched,
            passes_updated,
            pushes_sent,
            pushes_failed,
            first_at: rfc3339(first),
            last_at: rfc3339(last),
        });
    }
    Ok(out)
}

/// Per journey: the passes it changed, and the wallet pushes that followed those
/// changes (deliveries to the changed passes created after the change), all journeys
/// in two queries. A pass changed again by something else before its push is counted
/// for both, which is rare enough to show.
async fn outcomes(
    db: &Db,
    tenant_id: &str,
    since_ms: i64,
) -> Result<HashMap<String, (i64, i64, i64)>> {
    let changed = format!(
        "SELECT {GROUP} AS journey, v.pass_id AS pass_id, MIN(v.created_at) AS at \
         FROM pass_versions v JOIN inbound_events e ON e.id = v.event_id \
         WHERE v.tenant_id = $1 AND e.tenant_id = $1 AND e.received_at >= $2 \
         GROUP BY journey, v.pass_id"
    );
    let passes: Vec<(String, i64)> = sqlx::query_as(&format!(
        "SELECT journey, COUNT(*) FROM ({changed}) c GROUP BY journey"
    ))
    .bind(tenant_id)
    .bind(since_ms)
    .fetch_all(db.reader())
    .await?;
    let sql = format!(
        "SELECT c.journey, d.status, COUNT(*) FROM deliveries d JOIN ({changed}) c ON c.pass_id = d.pass_id \
         WHERE d.tenant_id = $1 AND d.channel = '{wallet}' AND d.created_at >= c.at \
         GROUP BY c.journey, d.status",
        wallet = deliveries::WALLET
    );
    let pushes: Vec<(String, String, i64)> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(since_ms)
        .fetch_all(db.reader())
        .await?;
    let mut out: HashMap<String, (i64, i64, i64)> = passes
        .into_iter()
        .map(|(journey, n)| (journey, (n, 0, 0)))
        .collect();
    for (journey, status, n) in pushes {
        let entry = out.entry(journey).or_default();
        if status == deliveries::DELIVERED {
            entry.1 += n;
        } else if status == deliveries::FAILED {
            entry.2 += n;
        }
    }
    Ok(out)
}

/// The contacts of one journey, most recent first.
pub async fn contacts(
    db: &Db,
    tenant_id: &str,
    journey_id: &str,
    since_ms: i64,
) -> Result<Vec<ContactRow>> {
    let sql = format!(
        "SELECT COALESCE(key_value, '') AS contact, COUNT(*), \
         SUM(CASE WHEN reason = 'NO_MATCHING_PASS' THEN 1 ELSE 0 END), MAX(id), MAX(received_at) \
         FROM inbound_events WHERE tenant_id = $1 AND {GROUP} = $2 AND received_at >= $3 AND {EXECUTIONS} \
         GROUP BY contact ORDER BY MAX(received_at) DESC LIMIT 500"
    );
    let rows: Vec<(String, i64, i64, String, i64)> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(journey_id)
        .bind(since_ms)
        .fetch_all(db.reader())
        .await?;
    let passes: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT DISTINCT COALESCE(e.key_value, ''), v.pass_id FROM pass_versions v \
         JOIN inbound_events e ON e.id = v.event_id \
         WHERE v.tenant_id = $1 AND e.tenant_id = $1 AND {GROUP} = $2 AND e.received_at >= $3 \
         ORDER BY 2"
    ))
    .bind(tenant_id)
    .bind(journey_id)
    .bind(since_ms)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(key_value, executions, unmatched, last_event_id, last)| ContactRow {
                pass_ids: passes
                    .iter()
                    .filter(|(k, _)| *k == key_value)
                    .map(|(_, p)| p.clone())
                    .collect(),
                key_value,
                executions,
                unmatched,
                last_event_id,
                last_at: rfc3339(last),
            },
        )
        .collect())
}

/// One interval of a journey's timeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineBucket {
    pub start_ms: i64,
    /// Executions that matched at least one pass.
    pub matched: i64,
    /// Executions answered 404 or refused.
    pub unmatched: i64,
}

/// A journey's executions from `from_ms` to `to_ms` in `buckets` equal intervals,
/// oldest first, empty ones included, so the console can draw them over time.
pub async fn timeline(
    db: &Db,
    tenant_id: &str,
    journey_id: &str,
    from_ms: i64,
    to_ms: i64,
    buckets: i64,
) -> Result<Vec<TimelineBucket>> {
    let buckets = buckets.max(1);
    let size = ((to_ms - from_ms) / buckets + 1).max(1);
    let sql = format!(
        "SELECT (received_at - $3) / {size} AS bucket, \
         CASE WHEN status = '{rejected}' THEN 1 ELSE 0 END AS missed, COUNT(*) \
         FROM inbound_events WHERE tenant_id = $1 AND {GROUP} = $2 \
         AND received_at >= $3 AND received_at <= $4 AND {EXECUTIONS} \
         GROUP BY bucket, missed",
        rejected = events::REJECTED
    );
    let rows: Vec<(i64, i64, i64)> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(journey_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(db.reader())
        .await?;
    let mut out: Vec<TimelineBucket> = (0..buckets)
        .map(|i| TimelineBucket {
            start_ms: from_ms + i * size,
            ..Default::default()
        })
        .collect();
    for (bucket, missed, n) in rows {
        let Some(b) = usize::try_from(bucket).ok().and_then(|i| out.get_mut(i)) else {
            continue;
        };
        if missed != 0 {
            b.unmatched += n;
        } else {
            b.matched += n;
        }
    }
    Ok(out)
}
