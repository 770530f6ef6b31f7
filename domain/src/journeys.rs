//! Journeys: SFMC Journey Builder executions grouped by journey and version (and
//! Actito custom actions grouped by the kind of push), with what they matched,
//! changed and sent.
//!
//! Journey Builder names a journey *version* in every call (execute's `journeyId`,
//! the lifecycle calls' `interactionId`); only lifecycle calls also name the journey
//! all its versions share (`originalDefinitionId`). Versions are linked to their
//! journey through those recorded calls; an execute of a version no lifecycle call
//! named shows as a journey of its own.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::db::Db;
use crate::deliveries::{self, DeliveryStatus};
use crate::error::Result;
use crate::events;

/// One journey's executions and what came of them, over all its versions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JourneySummary {
    /// The SFMC journey (`originalDefinitionId`, shared by its versions), else the
    /// id of a version no lifecycle call linked to a journey; for Actito the kind of
    /// push (e.g. `custom-action.updatePass`).
    pub journey_id: String,
    pub source: String,
    pub executions: i64,
    /// Executions that matched at least one pass.
    pub matched: i64,
    /// Executions that matched no pass (answered 404, or 200 with nothing scheduled
    /// when the tenant lets such contacts continue).
    pub unmatched: i64,
    /// Other refusals (bad token, malformed arguments…).
    pub refused: i64,
    pub passes_updated: i64,
    pub pushes_sent: i64,
    pub pushes_failed: i64,
    pub first_at: String,
    pub last_at: String,
    /// The journey's versions, most recently active first.
    #[serde(default)]
    pub versions: Vec<VersionSummary>,
}

/// One version of a journey: execute's `journeyId`, the lifecycle calls'
/// `interactionId`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionSummary {
    pub version_id: String,
    pub executions: i64,
    pub matched: i64,
    pub unmatched: i64,
    pub refused: i64,
    /// Lifecycle calls (save, validate, publish, stop) received for this version.
    pub lifecycle_calls: i64,
    /// The latest of them, e.g. `publish`.
    pub last_call: Option<String>,
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

/// The label of a group of executions: the SFMC journey version, else the kind of
/// Actito push.
const GROUP: &str = "COALESCE(journey_id, kind)";
const EXECUTIONS: &str = "((source = 'sfmc' AND kind LIKE '%.execute' AND journey_id IS NOT NULL) \
     OR (source = 'actito' AND kind LIKE 'custom-action.%'))";
/// Journey Builder's lifecycle calls, which name a version's journey.
const LIFECYCLE: &str = "source = 'sfmc' AND kind IN ('pushupdate.save', 'pushupdate.validate', \
     'pushupdate.publish', 'pushupdate.stop') AND status <> 'rejected' AND journey_id IS NOT NULL";

type SummaryRow = (String, String, i64, i64, i64, i64, i64);

/// Journeys with executions or lifecycle calls since `since_ms`, most recently
/// active first, each with its versions.
pub async fn list(db: &Db, tenant_id: &str, since_ms: i64) -> Result<Vec<JourneySummary>> {
    let sql = format!(
        "SELECT {GROUP} AS journey, source, COUNT(*), \
         SUM(CASE WHEN status <> '{rejected}' AND COALESCE(reason, '') <> 'NO_MATCHING_PASS' \
           THEN 1 ELSE 0 END), \
         SUM(CASE WHEN reason = 'NO_MATCHING_PASS' THEN 1 ELSE 0 END), \
         MIN(received_at), MAX(received_at) \
         FROM inbound_events WHERE tenant_id = $1 AND received_at >= $2 AND {EXECUTIONS} \
         GROUP BY journey, source ORDER BY MAX(received_at) DESC LIMIT 500",
        rejected = events::EventStatus::Rejected.as_str()
    );
    let rows: Vec<SummaryRow> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(since_ms)
        .fetch_all(db.reader())
        .await?;
    let links = Links::read(db, tenant_id, since_ms).await?;
    let outcomes = outcomes(db, tenant_id, since_ms).await?;
    let mut versions: Vec<(String, VersionSummary)> = Vec::new();
    for (version_id, source, executions, matched, unmatched, first, last) in rows {
        let calls = links.calls.get(&version_id);
        // A version's last activity may be a lifecycle call (stopped after its runs).
        let last = calls.map_or(last, |c| c.last_at.max(last));
        versions.push((
            source,
            VersionSummary {
                executions,
                matched,
                unmatched,
                refused: executions - matched - unmatched,
                lifecycle_calls: calls.map_or(0, |c| c.count),
                last_call: calls.map(|c| c.last_kind.clone()),
                first_at: rfc3339(first),
                last_at: rfc3339(last),
                version_id,
            },
        ));
    }
    // Versions seen only in lifecycle calls (a journey published, not run yet).
    for (version_id, calls) in &links.calls {
        if calls.last_at >= since_ms && !versions.iter().any(|(_, v)| v.version_id == *version_id) {
            versions.push((
                "sfmc".into(),
                VersionSummary {
                    version_id: version_id.clone(),
                    lifecycle_calls: calls.count,
                    last_call: Some(calls.last_kind.clone()),
                    first_at: rfc3339(calls.first_at),
                    last_at: rfc3339(calls.last_at),
                    ..Default::default()
                },
            ));
        }
    }
    let mut journeys: Vec<JourneySummary> = Vec::new();
    for (source, version) in versions {
        let journey_id = links.journey_of(&version.version_id).to_string();
        let (passes_updated, pushes_sent, pushes_failed) = outcomes
            .get(&version.version_id)
            .copied()
            .unwrap_or_default();
        let at = journeys
            .iter()
            .position(|j| j.journey_id == journey_id && j.source == source);
        let journey = match at {
            Some(at) => &mut journeys[at],
            None => {
                journeys.push(JourneySummary {
                    journey_id,
                    source,
                    first_at: version.first_at.clone(),
                    last_at: version.last_at.clone(),
                    ..Default::default()
                });
                journeys.last_mut().expect("just pushed")
            }
        };
        journey.executions += version.executions;
        journey.matched += version.matched;
        journey.unmatched += version.unmatched;
        journey.refused += version.refused;
        journey.passes_updated += passes_updated;
        journey.pushes_sent += pushes_sent;
        journey.pushes_failed += pushes_failed;
        // RFC 3339 in UTC with milliseconds: text order is time order.
        journey.first_at = journey.first_at.clone().min(version.first_at.clone());
        journey.last_at = journey.last_at.clone().max(version.last_at.clone());
        journey.versions.push(version);
    }
    for journey in &mut journeys {
        journey.versions.sort_by(|a, b| b.last_at.cmp(&a.last_at));
    }
    journeys.sort_by(|a, b| b.last_at.cmp(&a.last_at));
    journeys.truncate(200);
    Ok(journeys)
}

/// Lifecycle calls grouped: version, journey, kind, count, first, last, signed.
type CallRow = (String, Option<String>, String, i64, i64, i64, i64);

/// A version's lifecycle calls.
struct Calls {
    count: i64,
    last_kind: String,
    first_at: i64,
    last_at: i64,
}

/// Which journey each version belongs to, as the lifecycle calls say, and the
/// calls themselves. Unsigned calls count too (Journey Builder sends them that way);
/// where calls disagree, a signed one wins, then the latest.
struct Links {
    journey: HashMap<String, String>,
    calls: HashMap<String, Calls>,
}

impl Links {
    async fn read(db: &Db, tenant_id: &str, since_ms: i64) -> Result<Links> {
        // Links from any time: a journey is published long before it runs.
        let rows: Vec<CallRow> = sqlx::query_as(&format!(
            "SELECT journey_id, definition_id, kind, COUNT(*), MIN(received_at), \
                 MAX(received_at), MAX(CASE WHEN key_id IS NULL THEN 0 ELSE 1 END) \
                 FROM inbound_events WHERE tenant_id = $1 AND {LIFECYCLE} \
                 GROUP BY journey_id, definition_id, kind ORDER BY 7, 6"
        ))
        .bind(tenant_id)
        .fetch_all(db.reader())
        .await?;
        let mut links = Links {
            journey: HashMap::new(),
            calls: HashMap::new(),
        };
        // Ordered so that the winning link comes last.
        for (version, definition, kind, count, first, last, _signed) in rows {
            if let Some(definition) = definition {
                links.journey.insert(version.clone(), definition);
            }
            if last < since_ms {
                continue;
            }
            let calls = links.calls.entry(version).or_insert(Calls {
                count: 0,
                last_kind: String::new(),
                first_at: first,
                last_at: last,
            });
            calls.count += count;
            calls.first_at = calls.first_at.min(first);
            if last >= calls.last_at || calls.last_kind.is_empty() {
                calls.last_at = last;
                calls.last_kind = kind.trim_start_matches("pushupdate.").to_string();
            }
        }
        Ok(links)
    }

    /// The journey of a version (itself when no call linked it).
    fn journey_of<'a>(&'a self, version: &'a str) -> &'a str {
        self.journey.get(version).map_or(version, String::as_str)
    }

    /// The group labels (versions, or an Actito kind) of `journey_id`.
    fn groups_of(&self, journey_id: &str) -> Vec<String> {
        let mut groups: Vec<String> = self
            .journey
            .iter()
            .filter(|(_, journey)| *journey == journey_id)
            .map(|(version, _)| version.clone())
            .collect();
        if !groups.iter().any(|g| g == journey_id) && self.journey_of(journey_id) == journey_id {
            groups.push(journey_id.to_string());
        }
        groups.sort();
        groups
    }
}

/// `{GROUP} IN (…)` for the (non-empty) groups of a journey, with placeholders from
/// `$first`.
fn in_groups(groups: &[String], first: usize) -> String {
    let marks: Vec<String> = (0..groups.len())
        .map(|i| format!("${}", first + i))
        .collect();
    format!("{GROUP} IN ({})", marks.join(", "))
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
         WHERE d.tenant_id = $1 AND {wallet} AND d.created_at >= c.at \
         GROUP BY c.journey, d.status",
        wallet = deliveries::ChannelFilter::Wallet.sql("d.channel")
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
        if status == DeliveryStatus::Delivered.as_str() {
            entry.1 += n;
        } else if status == DeliveryStatus::Failed.as_str() {
            entry.2 += n;
        }
    }
    Ok(out)
}

/// The contacts of one journey (all its versions), most recent first.
pub async fn contacts(
    db: &Db,
    tenant_id: &str,
    journey_id: &str,
    since_ms: i64,
) -> Result<Vec<ContactRow>> {
    let groups = Links::read(db, tenant_id, since_ms)
        .await?
        .groups_of(journey_id);
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT COALESCE(key_value, '') AS contact, COUNT(*), \
         SUM(CASE WHEN reason = 'NO_MATCHING_PASS' THEN 1 ELSE 0 END), MAX(id), MAX(received_at) \
         FROM inbound_events WHERE tenant_id = $1 AND received_at >= $2 AND {EXECUTIONS} \
         AND {} GROUP BY contact ORDER BY MAX(received_at) DESC LIMIT 500",
        in_groups(&groups, 3)
    );
    let mut query = sqlx::query_as::<_, (String, i64, i64, String, i64)>(&sql)
        .bind(tenant_id)
        .bind(since_ms);
    for group in &groups {
        query = query.bind(group.clone());
    }
    let rows = query.fetch_all(db.reader()).await?;
    let sql = format!(
        "SELECT DISTINCT COALESCE(e.key_value, ''), v.pass_id FROM pass_versions v \
         JOIN inbound_events e ON e.id = v.event_id \
         WHERE v.tenant_id = $1 AND e.tenant_id = $1 AND e.received_at >= $2 AND {} \
         ORDER BY 2",
        in_groups(&groups, 3).replace(GROUP, "COALESCE(e.journey_id, e.kind)")
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&sql)
        .bind(tenant_id)
        .bind(since_ms);
    for group in &groups {
        query = query.bind(group.clone());
    }
    let passes = query.fetch_all(db.reader()).await?;
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
    let groups = Links::read(db, tenant_id, from_ms)
        .await?
        .groups_of(journey_id);
    let mut out: Vec<TimelineBucket> = (0..buckets)
        .map(|i| TimelineBucket {
            start_ms: from_ms + i * size,
            ..Default::default()
        })
        .collect();
    if groups.is_empty() {
        return Ok(out);
    }
    let sql = format!(
        "SELECT (received_at - $2) / {size} AS bucket, \
         CASE WHEN status = '{rejected}' OR reason = 'NO_MATCHING_PASS' THEN 1 ELSE 0 END AS missed, COUNT(*) \
         FROM inbound_events WHERE tenant_id = $1 AND {} \
         AND received_at >= $2 AND received_at <= $3 AND {EXECUTIONS} \
         GROUP BY bucket, missed",
        in_groups(&groups, 4),
        rejected = events::EventStatus::Rejected.as_str()
    );
    let mut query = sqlx::query_as::<_, (i64, i64, i64)>(&sql)
        .bind(tenant_id)
        .bind(from_ms)
        .bind(to_ms);
    for group in &groups {
        query = query.bind(group.clone());
    }
    let rows = query.fetch_all(db.reader()).await?;
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
