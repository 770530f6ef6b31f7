//! The audit trail of one inbound event: what was received, how it was judged, what
//! it changed and what was sent because of it; and replaying an accepted event.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::rfc3339;
use crate::core::Core;
use crate::db::Db;
use crate::deliveries::{self, Delivery, DeliveryFilter};
use crate::error::{DomainError, Result};
use crate::events::{self, Event, Inbound, Ingested};
use crate::jobs::NewJob;
use crate::passes::Change;
use crate::sfmc::activity::JourneyContext;
use crate::tasks::{Kind, Task};

/// Everything known about one inbound event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    pub event: Event,
    /// The raw body as received (absent for unauthenticated requests and after the
    /// retention period).
    pub body: Option<String>,
    /// Headers worth keeping, credentials redacted.
    pub headers: Value,
    /// What the listener answered, when it is kept for duplicates.
    pub response: Option<Value>,
    /// The API key that authenticated the request, if any.
    pub key_id: Option<String>,
    pub replay_of: Option<String>,
    /// Events that replayed this one, oldest first.
    pub replays: Vec<String>,
    pub pass_updates: Vec<PassUpdate>,
    pub jobs: Vec<JobSummary>,
    pub deliveries: Vec<Delivery>,
}

/// A pass version this event caused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassUpdate {
    pub pass_id: String,
    pub version: i64,
    pub changes: Vec<Change>,
    pub significant: bool,
    pub at: String,
}

/// A job the event enqueued, as it stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

type Stored = (
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub async fn detail(db: &Db, tenant_id: &str, event_id: &str) -> Result<EventDetail> {
    let event = events::get(db, tenant_id, event_id).await?;
    let (body, headers, response, key_id, replay_of): Stored = sqlx::query_as(
        "SELECT body, headers, response, key_id, replay_of FROM inbound_events \
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(event_id)
    .fetch_one(db.reader())
    .await?;
    let replays: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM inbound_events WHERE tenant_id = $1 AND replay_of = $2 ORDER BY received_at, id",
    )
    .bind(tenant_id)
    .bind(event_id)
    .fetch_all(db.reader())
    .await?;
    let filter = DeliveryFilter {
        event_id: Some(event_id.to_string()),
        ..Default::default()
    };
    Ok(EventDetail {
        event,
        body,
        headers: serde_json::from_str(&headers).unwrap_or(Value::Null),
        response: response.and_then(|r| serde_json::from_str(&r).ok()),
        key_id,
        replay_of,
        replays: replays.into_iter().map(|(id,)| id).collect(),
        pass_updates: pass_updates(db, tenant_id, event_id).await?,
        jobs: jobs(db, tenant_id, event_id).await?,
        deliveries: deliveries::list(db, tenant_id, &filter, None, 200)
            .await?
            .items,
    })
}

async fn pass_updates(db: &Db, tenant_id: &str, event_id: &str) -> Result<Vec<PassUpdate>> {
    let rows: Vec<(String, i64, String, i64, i64)> = sqlx::query_as(
        "SELECT pass_id, version, changes, significant, created_at FROM pass_versions \
         WHERE tenant_id = $1 AND event_id = $2 ORDER BY created_at, pass_id, version LIMIT 500",
    )
    .bind(tenant_id)
    .bind(event_id)
    .fetch_all(db.reader())
    .await?;
    rows.into_iter()
        .map(|(pass_id, version, changes, significant, at)| {
            Ok(PassUpdate {
                pass_id,
                version,
                changes: serde_json::from_str(&changes)
                    .map_err(|e| DomainError::Internal(e.to_string()))?,
                significant: significant != 0,
                at: rfc3339(at),
            })
        })
        .collect()
}

async fn jobs(db: &Db, tenant_id: &str, event_id: &str) -> Result<Vec<JobSummary>> {
    let rows: Vec<(String, String, String, i64, Option<String>)> = sqlx::query_as(
        "SELECT id, kind, status, attempts, last_error FROM jobs \
         WHERE tenant_id = $1 AND event_id = $2 ORDER BY seq LIMIT 500",
    )
    .bind(tenant_id)
    .bind(event_id)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, status, attempts, last_error)| JobSummary {
            id,
            kind,
            status,
            attempts,
            last_error,
        })
        .collect())
}

/// The job kinds a listener enqueues for an event, which a replay enqueues again.
const REPLAYABLE: [Kind; 3] = [Kind::CustomAction, Kind::Profile, Kind::SfmcExecute];

type Original = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);

/// Runs an accepted event again as a new event linked to the original (`replayOf`).
/// The work is the same as the first time, so passes change only where their content
/// differs now (no new version, no push otherwise); Actito callbacks are sent again.
pub async fn replay(core: &Core, tenant_id: &str, event_id: &str) -> Result<String> {
    let row: Option<Original> = sqlx::query_as(
        "SELECT source, kind, status, body, headers, key_id, journey_id, activity_id, \
         definition_instance_id, key_value, items FROM inbound_events WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(event_id)
    .fetch_optional(core.db.reader())
    .await?;
    let (
        source,
        kind,
        status,
        body,
        headers,
        key_id,
        journey_id,
        activity_id,
        instance,
        key_value,
        items,
    ) = row.ok_or(DomainError::NotFound("event"))?;
    if status == events::EventStatus::Rejected.as_str() {
        return Err(DomainError::Conflict(
            "a rejected request cannot be replayed: nothing was accepted".into(),
        ));
    }
    let body = body.ok_or_else(|| {
        DomainError::Conflict("this event's body is past the retention period".into())
    })?;
    let jobs = original_jobs(&core.db, tenant_id, event_id).await?;
    let inbound = Inbound {
        tenant_id: tenant_id.to_string(),
        source: if source == "sfmc" { "sfmc" } else { "actito" },
        kind,
        headers: serde_json::from_str(&headers).unwrap_or(Value::Null),
        body,
        dedupe_key: None,
        key_id,
        journey: JourneyContext {
            journey_id,
            activity_id,
            definition_instance_id: instance,
            key_value,
            ..Default::default()
        },
        items,
        replay_of: Some(event_id.to_string()),
    };
    let ingested = core.ingestor.ingest(inbound, None, jobs).await?;
    core.jobs_ready.notify_one();
    match ingested {
        Ingested::New { event_id } | Ingested::Duplicate { event_id, .. } => Ok(event_id),
    }
}

async fn original_jobs(db: &Db, tenant_id: &str, event_id: &str) -> Result<Vec<NewJob>> {
    let rows: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT kind, payload, ordering_key, max_attempts FROM jobs \
         WHERE tenant_id = $1 AND event_id = $2 ORDER BY seq",
    )
    .bind(tenant_id)
    .bind(event_id)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, payload, ordering_key, max_attempts)| {
            let payload = serde_json::from_str(&payload).ok()?;
            let task = Task::read(&kind, &payload).ok()?;
            if !REPLAYABLE.contains(&task.kind()) {
                return None;
            }
            let mut job = task.job(tenant_id).attempts(max_attempts);
            job.ordering_key = ordering_key;
            Some(job)
        })
        .collect())
}
