//! Inbound events: every request a listener received. Accepted ones are stored with
//! the work they imply in ONE transaction before the answer; rejected ones are
//! stored with a cause code, within a per-tenant budget so a flood cannot fill the disk.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::{now_ms, rfc3339};
use crate::db::{Backend, Db};
use crate::error::{DomainError, Result};
use crate::ids::new_id;
use crate::jobs::{self, NewJob};
use crate::live::{LiveEvent, LiveKind};
use crate::sfmc::activity::JourneyContext;
use crate::sql::{self, Where};
use sqlx::AnyConnection;

/// Where an inbound event stands: the `status` column of `inbound_events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventStatus {
    /// Stored; its jobs are not all done.
    Accepted,
    /// Refused before it was stored (kept as a bounded sample for the audit).
    Rejected,
    /// Every job done.
    Processed,
    /// A job died.
    Failed,
}

impl EventStatus {
    /// In the order the console offers them.
    pub const ALL: [EventStatus; 4] = [
        EventStatus::Accepted,
        EventStatus::Processed,
        EventStatus::Failed,
        EventStatus::Rejected,
    ];

    /// As the console names it.
    pub const fn label(self) -> &'static str {
        match self {
            EventStatus::Accepted => "Accepted",
            EventStatus::Rejected => "Rejected",
            EventStatus::Processed => "Processed",
            EventStatus::Failed => "Failed",
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            EventStatus::Accepted => "accepted",
            EventStatus::Rejected => "rejected",
            EventStatus::Processed => "processed",
            EventStatus::Failed => "failed",
        }
    }
}

impl TryFrom<&str> for EventStatus {
    type Error = DomainError;

    fn try_from(text: &str) -> Result<Self> {
        EventStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| DomainError::Internal(format!("unknown event status {text:?}")))
    }
}

// The statuses as this module's SQL spells them.
const ACCEPTED: &str = EventStatus::Accepted.as_str();
const REJECTED: &str = EventStatus::Rejected.as_str();
const PROCESSED: &str = EventStatus::Processed.as_str();
const FAILED: &str = EventStatus::Failed.as_str();

/// Duplicates are recognised for this long.
pub const DEDUPE_WINDOW_MS: i64 = 24 * 3600 * 1000;
/// At most this many rejections are stored per tenant per window; more are counted only.
pub const REJECTION_BUDGET: i64 = 1_000;
pub const REJECTION_WINDOW_MS: i64 = 3600 * 1000;
/// Stored bodies of rejected (but authenticated) requests are cut at this size.
pub const REJECTED_BODY_LIMIT: usize = 64 * 1024;

/// A request that passed authentication and validation.
#[derive(Clone, Debug, Default)]
pub struct Inbound {
    pub tenant_id: String,
    pub source: &'static str,
    pub kind: String,
    pub headers: Value,
    pub body: String,
    pub dedupe_key: Option<String>,
    pub key_id: Option<String>,
    pub journey: JourneyContext,
    pub items: i64,
    /// The event this one replays, when replayed from the console.
    pub replay_of: Option<String>,
}

/// A request refused before it was accepted.
#[derive(Clone, Debug, Default)]
pub struct Rejection {
    pub tenant_id: String,
    pub source: &'static str,
    pub kind: String,
    pub code: String,
    pub detail: String,
    pub headers: Value,
    /// Only for authenticated callers; never for unauthenticated requests.
    pub body: Option<String>,
    pub key_id: Option<String>,
    pub journey: JourneyContext,
}

impl Rejection {
    /// Whether the caller proved who it is (a key, or a body we keep): such refusals
    /// have a budget of their own, so anonymous noise cannot crowd them out.
    pub fn credentialed(&self) -> bool {
        self.key_id.is_some() || self.body.is_some()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ingested {
    /// Stored now, with its jobs.
    New { event_id: String },
    /// Seen within the dedupe window: the first answer, nothing enqueued.
    Duplicate {
        event_id: String,
        response: Option<Value>,
    },
}

impl Ingested {
    pub fn event_id(&self) -> &str {
        match self {
            Ingested::New { event_id } | Ingested::Duplicate { event_id, .. } => event_id,
        }
    }
}

impl Inbound {
    /// The live-feed event for this request once stored as `event_id`.
    pub fn live(&self, event_id: &str) -> LiveEvent {
        LiveEvent::new(
            &self.tenant_id,
            LiveKind::Inbound {
                event_id: event_id.to_string(),
                source: self.source.to_string(),
                kind: self.kind.clone(),
                status: ACCEPTED.to_string(),
                reason: None,
                journey_id: self.journey.journey_id.clone(),
                key_value: self.journey.key_value.clone(),
            },
        )
    }
}

/// Stores the event, its answer and its jobs atomically; a duplicate (same dedupe key
/// within 24 h) is answered as the first and enqueues nothing.
pub async fn ingest(
    db: &Db,
    inbound: &Inbound,
    response: Option<&Value>,
    jobs: Vec<NewJob>,
) -> Result<Ingested> {
    let mut tx = db.writer().begin().await?;
    let ingested = ingest_in(&mut tx, inbound, response, jobs).await?;
    let mut live = Vec::new();
    if let Ingested::New { event_id } = &ingested {
        live.push(inbound.live(event_id));
    }
    // On PostgreSQL the notification goes out with the commit, never without it.
    let notified = db.notify_in(&mut tx, &live).await?;
    tx.commit().await?;
    if !notified {
        db.publish_all(live);
    }
    Ok(ingested)
}

/// Columns of a new inbound event, in the order [`insert_new`] binds them.
const NEW_EVENT_COLUMNS: &str =
    "(id, tenant_id, source, kind, received_at, status, dedupe_key, body, \
     headers, response, key_id, journey_id, activity_id, definition_instance_id, key_value, items, \
     replay_of, definition_id, activity_instance_id, journey_mode)";
const NEW_EVENT_BINDS: usize = 20;
/// Rows per INSERT statement (20 values each stays far below both databases' limits).
const NEW_EVENTS_PER_INSERT: usize = 100;

/// Inserts accepted events, many rows per statement, skipping any whose dedupe key is
/// already taken; returns the ids that were inserted. The caller handles the others
/// one by one with [`ingest_in`] (a duplicate, or a key older than the window).
pub async fn insert_new(
    conn: &mut AnyConnection,
    events: &[(&Inbound, Option<&Value>, &str)],
) -> Result<std::collections::HashSet<String>> {
    let now = now_ms();
    let mut inserted = std::collections::HashSet::with_capacity(events.len());
    for chunk in events.chunks(NEW_EVENTS_PER_INSERT) {
        let mut marks = sql::Marks::new(conn);
        let rows: Vec<String> = (0..chunk.len())
            .map(|_| format!("({})", marks.list(NEW_EVENT_BINDS)))
            .collect();
        let sql = format!(
            "INSERT INTO inbound_events {NEW_EVENT_COLUMNS} VALUES {} \
             ON CONFLICT (tenant_id, source, dedupe_key) DO NOTHING RETURNING id",
            rows.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for (inbound, response, id) in chunk {
            query = query
                .bind(id.to_string())
                .bind(inbound.tenant_id.clone())
                .bind(inbound.source)
                .bind(inbound.kind.clone())
                .bind(now)
                .bind(ACCEPTED)
                .bind(inbound.dedupe_key.clone())
                .bind(inbound.body.clone())
                .bind(inbound.headers.to_string())
                .bind(response.map(Value::to_string))
                .bind(inbound.key_id.clone())
                .bind(inbound.journey.journey_id.clone())
                .bind(inbound.journey.activity_id.clone())
                .bind(inbound.journey.definition_instance_id.clone())
                .bind(inbound.journey.key_value.clone())
                .bind(inbound.items)
                .bind(inbound.replay_of.clone())
                .bind(inbound.journey.definition_id.clone())
                .bind(inbound.journey.activity_instance_id.clone())
                .bind(inbound.journey.mode.clone());
        }
        inserted.extend(
            query
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(id,)| id),
        );
    }
    Ok(inserted)
}

/// [`ingest`] inside the caller's transaction (several events share one commit).
pub async fn ingest_in(
    conn: &mut AnyConnection,
    inbound: &Inbound,
    response: Option<&Value>,
    jobs: Vec<NewJob>,
) -> Result<Ingested> {
    let event_id = new_id("evt");
    let now = now_ms();
    if let Some(key) = &inbound.dedupe_key {
        // A key older than the window no longer counts: free it for this event.
        sqlx::query(
            "UPDATE inbound_events SET dedupe_key = NULL \
             WHERE tenant_id = $1 AND source = $2 AND dedupe_key = $3 AND received_at < $4",
        )
        .bind(&inbound.tenant_id)
        .bind(inbound.source)
        .bind(key)
        .bind(now - DEDUPE_WINDOW_MS)
        .execute(&mut *conn)
        .await?;
    }
    let inserted = sqlx::query(
        "INSERT INTO inbound_events (id, tenant_id, source, kind, received_at, status, dedupe_key, body, \
         headers, response, key_id, journey_id, activity_id, definition_instance_id, key_value, items, \
         replay_of, definition_id, activity_instance_id, journey_mode) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
         ON CONFLICT (tenant_id, source, dedupe_key) DO NOTHING",
    )
    .bind(&event_id)
    .bind(&inbound.tenant_id)
    .bind(inbound.source)
    .bind(&inbound.kind)
    .bind(now)
    .bind(ACCEPTED)
    .bind(&inbound.dedupe_key)
    .bind(&inbound.body)
    .bind(inbound.headers.to_string())
    .bind(response.map(Value::to_string))
    .bind(&inbound.key_id)
    .bind(&inbound.journey.journey_id)
    .bind(&inbound.journey.activity_id)
    .bind(&inbound.journey.definition_instance_id)
    .bind(&inbound.journey.key_value)
    .bind(inbound.items)
    .bind(&inbound.replay_of)
    .bind(&inbound.journey.definition_id)
    .bind(&inbound.journey.activity_instance_id)
    .bind(&inbound.journey.mode)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        let (id, response): (String, Option<String>) = sqlx::query_as(
            "SELECT id, response FROM inbound_events WHERE tenant_id = $1 AND source = $2 AND dedupe_key = $3",
        )
        .bind(&inbound.tenant_id)
        .bind(inbound.source)
        .bind(&inbound.dedupe_key)
        .fetch_one(&mut *conn)
        .await?;
        return Ok(Ingested::Duplicate {
            event_id: id,
            response: response.and_then(|r| serde_json::from_str(&r).ok()),
        });
    }
    let jobs: Vec<NewJob> = jobs.into_iter().map(|j| j.for_event(&event_id)).collect();
    jobs::enqueue(conn, &jobs).await?;
    Ok(Ingested::New { event_id })
}

/// Notes why an accepted event did nothing (an execute that matched no pass, answered
/// 200 by the tenant's choice); [`settle`] keeps it.
pub async fn note_reason(db: &Db, event_id: &str, code: &str, detail: &str) -> Result<()> {
    sqlx::query("UPDATE inbound_events SET reason = $1, detail = $2 WHERE id = $3")
        .bind(code)
        .bind(detail)
        .bind(event_id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// The first [`REJECTED_BODY_LIMIT`] bytes of a body kept for the audit only (a
/// rejection's, an unsigned call's), cut at a character boundary.
fn bounded_body(body: &str) -> &str {
    let mut cut = body.len().min(REJECTED_BODY_LIMIT);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    &body[..cut]
}

/// The reason an unsigned call is recorded with (status `processed`).
pub const UNSIGNED: &str = "UNSIGNED";

/// Records a call accepted without a credential that changes nothing (a Journey
/// Builder lifecycle call sent as plain JSON): `processed` at once, reason
/// [`UNSIGNED`], no key. The caller bounds how many a tenant may send.
pub async fn record_unsigned(db: &Db, inbound: &Inbound) -> Result<String> {
    let id = new_id("evt");
    let now = now_ms();
    let body = bounded_body(&inbound.body);
    sqlx::query(
        "INSERT INTO inbound_events (id, tenant_id, source, kind, received_at, status, reason, detail, \
         body, headers, journey_id, activity_id, definition_id, processed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(&id)
    .bind(&inbound.tenant_id)
    .bind(inbound.source)
    .bind(&inbound.kind)
    .bind(now)
    .bind(PROCESSED)
    .bind(UNSIGNED)
    .bind("Sent without a signature (Journey Builder often does); recorded, and it changed nothing.")
    .bind(body)
    .bind(inbound.headers.to_string())
    .bind(&inbound.journey.journey_id)
    .bind(&inbound.journey.activity_id)
    .bind(&inbound.journey.definition_id)
    .bind(now)
    .execute(db.writer())
    .await?;
    db.publish(LiveEvent::new(
        &inbound.tenant_id,
        LiveKind::Inbound {
            event_id: id.clone(),
            source: inbound.source.to_string(),
            kind: inbound.kind.clone(),
            status: PROCESSED.to_string(),
            reason: Some(UNSIGNED.to_string()),
            journey_id: inbound.journey.journey_id.clone(),
            key_value: None,
        },
    ));
    Ok(id)
}

/// Records a rejection unless the tenant's budget for the hour is spent (or the
/// tenant does not exist). Rejections that carried a credential of the tenant (a key,
/// or a verified token: then the body is kept) and anonymous ones have a budget each,
/// so junk from anyone can't use up the room that shows real callers' mistakes.
/// Returns the event id when stored.
pub async fn reject(db: &Db, rejection: &Rejection) -> Result<Option<String>> {
    let now = now_ms();
    let own_budget = if rejection.credentialed() {
        "(key_id IS NOT NULL OR body IS NOT NULL)"
    } else {
        "key_id IS NULL AND body IS NULL"
    };
    let count = format!(
        "SELECT COUNT(*) FROM inbound_events WHERE tenant_id = $1 AND status = $2 \
         AND received_at > $3 AND {own_budget}"
    );
    let (recent,): (i64,) = sqlx::query_as(&count)
        .bind(&rejection.tenant_id)
        .bind(REJECTED)
        .bind(now - REJECTION_WINDOW_MS)
        .fetch_one(db.reader())
        .await?;
    if recent >= REJECTION_BUDGET || !crate::tenants::exists(db, &rejection.tenant_id).await? {
        return Ok(None);
    }
    let body = rejection.body.as_deref().map(bounded_body);
    let id = new_id("evt");
    sqlx::query(
        "INSERT INTO inbound_events (id, tenant_id, source, kind, received_at, status, reason, detail, body, \
         headers, key_id, journey_id, activity_id, definition_instance_id, key_value, \
         definition_id, activity_instance_id, journey_mode) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(&id)
    .bind(&rejection.tenant_id)
    .bind(rejection.source)
    .bind(&rejection.kind)
    .bind(now)
    .bind(REJECTED)
    .bind(&rejection.code)
    .bind(&rejection.detail)
    .bind(body)
    .bind(rejection.headers.to_string())
    .bind(&rejection.key_id)
    .bind(&rejection.journey.journey_id)
    .bind(&rejection.journey.activity_id)
    .bind(&rejection.journey.definition_instance_id)
    .bind(&rejection.journey.key_value)
    .bind(&rejection.journey.definition_id)
    .bind(&rejection.journey.activity_instance_id)
    .bind(&rejection.journey.mode)
    .execute(db.writer())
    .await?;
    db.publish(LiveEvent::new(
        &rejection.tenant_id,
        LiveKind::Inbound {
            event_id: id.clone(),
            source: rejection.source.to_string(),
            kind: rejection.kind.clone(),
            status: REJECTED.to_string(),
            reason: Some(rejection.code.clone()),
            journey_id: rejection.journey.journey_id.clone(),
            key_value: rejection.journey.key_value.clone(),
        },
    ));
    Ok(Some(id))
}

/// An event as the audit API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub received_at: String,
    pub status: String,
    /// The cause code of a rejection or failure.
    pub reason: Option<String>,
    pub detail: Option<String>,
    pub items: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub definition_instance_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_value: Option<String>,
    /// The journey a lifecycle call's version (`journeyId`) belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity_instance_id: Option<String>,
    /// Execute's `mode` as Journey Builder sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    pub processed_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    pub items: Vec<Event>,
    pub next: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    pub source: Option<String>,
    pub status: Option<String>,
    pub kind: Option<String>,
    /// The cause code of a rejection or failure.
    pub reason: Option<String>,
    /// Received at or after (ms).
    pub from_ms: Option<i64>,
    /// Received before (ms).
    pub to_ms: Option<i64>,
    /// Part of an id or identifier: the event id, SFMC journey, activity or contact
    /// key, or anything in the stored body (a pass id, an email…).
    pub text: Option<String>,
}

impl EventFilter {
    /// Appends this filter's conditions to `sql`, binding values through `args`.
    fn conditions(&self, tenant_id: &str) -> Where {
        let mut w = Where::new("tenant_id", tenant_id);
        w.equal(&[
            ("source", &self.source),
            ("status", &self.status),
            ("kind", &self.kind),
            ("reason", &self.reason),
        ]);
        w.between("received_at", self.from_ms, self.to_ms);
        w.contains(
            &["id", "key_value", "journey_id", "activity_id", "body"],
            self.text.as_deref(),
        );
        w
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: String,
    source: String,
    kind: String,
    received_at: i64,
    status: String,
    reason: Option<String>,
    detail: Option<String>,
    items: i64,
    journey_id: Option<String>,
    activity_id: Option<String>,
    definition_instance_id: Option<String>,
    key_value: Option<String>,
    processed_at: Option<i64>,
    definition_id: Option<String>,
    activity_instance_id: Option<String>,
    journey_mode: Option<String>,
}

const EVENT_COLUMNS: &str =
    "id, source, kind, received_at, status, reason, detail, items, journey_id, \
     activity_id, definition_instance_id, key_value, processed_at, definition_id, \
     activity_instance_id, journey_mode";

fn event_from(row: EventRow) -> Event {
    Event {
        id: row.id,
        source: row.source,
        kind: row.kind,
        received_at: rfc3339(row.received_at),
        status: row.status,
        reason: row.reason,
        detail: row.detail,
        items: row.items,
        journey_id: row.journey_id,
        activity_id: row.activity_id,
        definition_instance_id: row.definition_instance_id,
        key_value: row.key_value,
        definition_id: row.definition_id,
        activity_instance_id: row.activity_instance_id,
        mode: row.journey_mode,
        processed_at: row.processed_at.map(rfc3339),
    }
}

/// Events newest first, a page at a time; `cursor` is the `next` of the page before.
pub async fn list(
    db: &Db,
    tenant_id: &str,
    filter: &EventFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<EventPage> {
    let limit = limit.clamp(1, 500) as usize;
    let mut w = filter.conditions(tenant_id);
    w.before("received_at", "id", cursor)?;
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM inbound_events WHERE {} \
         ORDER BY received_at DESC, id DESC LIMIT {}",
        w.sql,
        limit + 1
    );
    let query = w.bind(sqlx::query_as::<_, EventRow>(&sql));
    let rows = query.fetch_all(db.reader()).await?;
    let mut items: Vec<(i64, Event)> = rows
        .into_iter()
        .map(|r| (r.received_at, event_from(r)))
        .collect();
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|(at, e)| sql::cursor(*at, &e.id))
    } else {
        None
    };
    Ok(EventPage {
        items: items.into_iter().map(|(_, e)| e).collect(),
        next,
    })
}

pub async fn get(db: &Db, tenant_id: &str, event_id: &str) -> Result<Event> {
    let sql =
        format!("SELECT {EVENT_COLUMNS} FROM inbound_events WHERE tenant_id = $1 AND id = $2");
    let row: Option<EventRow> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(event_id)
        .fetch_optional(db.reader())
        .await?;
    row.map(event_from).ok_or(DomainError::NotFound("event"))
}

/// Hands the stored body and progress of an accepted event to `read`, for its jobs.
/// The body is lent from the row: a BULK's megabytes are not copied out of it.
pub async fn read_body<T>(db: &Db, event_id: &str, read: impl FnOnce(&str, i64) -> T) -> Result<T> {
    use sqlx::Row;
    let row = sqlx::query("SELECT body, items_done FROM inbound_events WHERE id = $1")
        .bind(event_id)
        .fetch_optional(db.reader())
        .await?;
    let body: Option<&str> = match &row {
        Some(row) => row.try_get(0)?,
        None => None,
    };
    match (body, &row) {
        (Some(body), Some(row)) => Ok(read(body, row.try_get(1)?)),
        _ => Err(DomainError::NotFound("event body")),
    }
}

/// Marks an event processed, or failed with a reason; publishes the new status to
/// the live feed when it changed.
pub async fn settle(db: &Db, event_id: &str, failure: Option<(&str, &str)>) -> Result<()> {
    let mut conn = db.background().await?;
    let live = settle_in(&mut conn, event_id, failure).await?;
    drop(conn);
    db.publish_all(live);
    Ok(())
}

/// [`settle`] inside the caller's transaction: returns the live-feed event to
/// publish once it is committed (none when the status did not change).
pub async fn settle_in(
    conn: &mut AnyConnection,
    event_id: &str,
    failure: Option<(&str, &str)>,
) -> Result<Option<LiveEvent>> {
    let (status, reason, detail) = match failure {
        None => (PROCESSED, None, None),
        Some((code, detail)) => (FAILED, Some(code), Some(detail)),
    };
    let set = "UPDATE inbound_events SET status = $1, reason = COALESCE($2, reason), \
               detail = COALESCE($3, detail), processed_at = $4 WHERE id = $5";
    // The usual case, a status that changes, takes one statement that also says
    // what the feed needs; an unchanged status is only refreshed.
    let changed: Option<SettledRow> = sqlx::query_as(&format!(
        "{set} AND status <> $1 \
         RETURNING tenant_id, source, kind, reason, journey_id, key_value"
    ))
    .bind(status)
    .bind(reason)
    .bind(detail)
    .bind(now_ms())
    .bind(event_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((tenant_id, source, kind, reason, journey_id, key_value)) = changed else {
        sqlx::query(set)
            .bind(status)
            .bind(reason)
            .bind(detail)
            .bind(now_ms())
            .bind(event_id)
            .execute(&mut *conn)
            .await?;
        return Ok(None);
    };
    Ok(Some(LiveEvent::new(
        &tenant_id,
        LiveKind::Inbound {
            event_id: event_id.to_string(),
            source,
            kind,
            status: status.to_string(),
            reason,
            journey_id,
            key_value,
        },
    )))
}

type SettledRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Once none of an event's jobs is pending, marks it processed (or failed when one
/// of them was dead-lettered); returns the live event to publish after the commit.
pub async fn settle_when_done_in(
    conn: &mut AnyConnection,
    event_id: &str,
) -> Result<Option<LiveEvent>> {
    Ok(settle_all_when_done_in(conn, &[event_id]).await?.pop())
}

/// [`settle_when_done_in`] for many events: two statements find the ones done and
/// their dead jobs, then one settles each.
pub async fn settle_all_when_done_in(
    conn: &mut AnyConnection,
    event_ids: &[&str],
) -> Result<Vec<LiveEvent>> {
    let mut live = Vec::new();
    for ids in event_ids.chunks(sql::PER_STATEMENT) {
        for (event_id, dead) in done_among(conn, ids).await? {
            let failure = dead.map(|(n, error)| match error {
                Some(error) => format!("{n} job(s) failed after every attempt: {error}"),
                None => format!("{n} job(s) failed after every attempt"),
            });
            let failure = failure
                .as_deref()
                .map(|detail| ("PROCESSING_FAILED", detail));
            live.extend(settle_in(conn, &event_id, failure).await?);
        }
    }
    Ok(live)
}

/// An event's dead jobs: how many, and one of their errors (they are usually alike).
type Dead = Option<(i64, Option<String>)>;

/// Those of `ids` with no pending job left, in `ids`' order, each with its dead jobs.
async fn done_among(conn: &mut AnyConnection, ids: &[&str]) -> Result<Vec<(String, Dead)>> {
    let list = sql::params(1, ids.len());
    // Jobs of one event finishing at once on PostgreSQL take turns here (row locks,
    // in a stable order), so the last one sees the others' outcomes (SQLite has one
    // writer anyway).
    if Backend::of(conn) == Backend::Postgres {
        let sql =
            format!("SELECT 1 FROM inbound_events WHERE id IN ({list}) ORDER BY id FOR UPDATE");
        let mut lock = sqlx::query(&sql);
        for id in ids {
            lock = lock.bind(*id);
        }
        lock.execute(&mut *conn).await?;
    }
    // Index seeks on (event_id, status), one per event: a BULK event has thousands
    // of callback jobs, and this runs for every batch of them that ends.
    let sql = format!(
        "SELECT id FROM inbound_events e WHERE id IN ({list}) AND NOT EXISTS \
         (SELECT 1 FROM jobs WHERE jobs.event_id = e.id AND jobs.status IN {pending})",
        pending = jobs::PENDING_SQL
    );
    let mut query = sqlx::query_as::<_, (String,)>(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    let done: Vec<String> = query
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id,)| id)
        .collect();
    if done.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT event_id, COUNT(*), MAX(last_error) FROM jobs \
         WHERE event_id IN ({}) AND status = '{}' GROUP BY event_id",
        sql::params(1, done.len()),
        jobs::JobStatus::Dead.as_str()
    );
    let mut query = sqlx::query_as::<_, (String, i64, Option<String>)>(&sql);
    for id in &done {
        query = query.bind(id.as_str());
    }
    let mut dead: std::collections::HashMap<String, (i64, Option<String>)> = query
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, n, error)| (id, (n, error)))
        .collect();
    Ok(ids
        .iter()
        .filter(|id| done.iter().any(|d| d == *id))
        .map(|id| (id.to_string(), dead.remove(*id)))
        .collect())
}

/// The first answer to a request with this dedupe key within the window, if any.
pub async fn find_duplicate(
    db: &Db,
    tenant_id: &str,
    source: &str,
    dedupe_key: &str,
) -> Result<Option<(String, Option<Value>)>> {
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT id, response FROM inbound_events WHERE tenant_id = $1 AND source = $2 AND dedupe_key = $3 \
         AND received_at >= $4",
    )
    .bind(tenant_id)
    .bind(source)
    .bind(dedupe_key)
    .bind(now_ms() - DEDUPE_WINDOW_MS)
    .fetch_optional(db.reader())
    .await?;
    Ok(row.map(|(id, response)| (id, response.and_then(|r| serde_json::from_str(&r).ok()))))
}
