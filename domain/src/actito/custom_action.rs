//! The life of an Actito custom action (`updatePass`, ONE_BY_ONE or BULK): the
//! listener reads the envelope and stores it with its job ([`accept`]); a worker
//! finds each item's passes, applies its update and calls its notifyOK, or its
//! notifyKO when no pass matched ([`run`]); a job out of attempts calls notifyKO for
//! every item not applied ([`on_dead`]).

use serde_json::Value;
use sqlx::{AnyConnection, Connection};

use super::callbacks;
use super::envelope::{self, scalar_text, CustomActionItem, EnvelopeError};
use super::settings::{self, default_identifier_mapping};
use crate::core::Core;
use crate::db::Db;
use crate::error::{DomainError, Result};
use crate::events::{self, Inbound, Ingested};
use crate::jobs::Job;
use crate::passes::apply::{self, Planned};
use crate::passes::{self, Cause};
use crate::sql::PER_STATEMENT;
use crate::tasks::{CustomAction, Failure, Task};

/// Items of a BULK envelope applied per transaction.
pub const BATCH: usize = 100;

/// A custom-action push, as the listener received it.
pub struct Request {
    pub tenant_id: String,
    pub key_id: String,
    /// The request's headers as the audit keeps them.
    pub headers: Value,
    pub body: Vec<u8>,
}

/// A push stored with its job.
pub struct Accepted {
    pub ingested: Ingested,
    pub items: usize,
}

/// Why a push was not stored.
pub enum Refusal {
    /// The envelope cannot be applied; the notifyKO of every item that could be read
    /// is queued. The body comes back for the audit.
    Envelope { error: EnvelopeError, body: Vec<u8> },
    /// The event could not be stored.
    Store(DomainError),
}

/// The listener's part: read the envelope, then store it with its job (the items
/// stay in the stored body).
pub async fn accept(core: &Core, request: Request) -> std::result::Result<Accepted, Refusal> {
    let (envelope_id, items) = match envelope::custom_actions(&request.body) {
        Ok(read) => (read.id, read.items.len()),
        Err(refused) => {
            notify_refused(core, &request.tenant_id, &refused.notify_ko).await;
            return Err(Refusal::Envelope {
                error: refused.error,
                body: request.body,
            });
        }
    };
    let job = Task::CustomAction(CustomAction {}).job(&request.tenant_id);
    let inbound = Inbound {
        tenant_id: request.tenant_id,
        source: "actito",
        kind: "custom-action.updatePass".into(),
        headers: request.headers,
        body: into_text(request.body),
        dedupe_key: Some(format!("custom-action:{envelope_id}")),
        key_id: Some(request.key_id),
        items: items as i64,
        ..Default::default()
    };
    let ingested = core
        .ingestor
        .ingest(inbound, None, vec![job])
        .await
        .map_err(Refusal::Store)?;
    core.jobs_ready.notify_one();
    Ok(Accepted { ingested, items })
}

/// The body as text without copying it: it was just read as JSON, so it is UTF-8.
fn into_text(body: Vec<u8>) -> String {
    String::from_utf8(body).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The items of an envelope refused for what they hold still get their notifyKO.
async fn notify_refused(core: &Core, tenant_id: &str, links: &[String]) {
    match callbacks::notify_refused(&core.db, tenant_id, links).await {
        Ok(0) => {}
        Ok(_) => core.jobs_ready.notify_one(),
        Err(e) => tracing::warn!(error = %e, "cannot queue the notifyKO of a refused envelope"),
    }
}

/// A custom action's items still to apply, read before any transaction.
pub struct Pending {
    pub event_id: String,
    /// Items applied before this run (recorded with them): `items` are the rest.
    pub done: usize,
    pub items: Vec<CustomActionItem>,
}

/// Reads the job's stored envelope and drops the items already applied.
pub async fn pending(core: &Core, job: &Job) -> Result<Pending> {
    let event_id = job
        .event_id
        .as_deref()
        .ok_or_else(|| DomainError::Internal(format!("job {} has no event", job.id)))?;
    let (read, done) = events::read_body(&core.db, event_id, |body, done| {
        (envelope::custom_actions(body.as_bytes()), done as usize)
    })
    .await?;
    let mut items = read
        .map_err(|e| DomainError::invalid("body", &format!("{:?}", e.error)))?
        .items;
    items.drain(..done.min(items.len()));
    Ok(Pending {
        event_id: event_id.to_string(),
        done,
        items,
    })
}

/// How the tenant's Actito profile attributes map to pass identifiers.
pub async fn identifier_mapping(core: &Core, tenant_id: &str) -> Result<Vec<(String, String)>> {
    Ok(settings::get(core.vault(), tenant_id)
        .await?
        .map(|s| s.identifier_mapping)
        .unwrap_or_else(default_identifier_mapping))
}

/// The worker's part: applies the items, [`BATCH`] per transaction.
pub async fn run(core: &Core, job: &Job) -> std::result::Result<(), Failure> {
    let pending = pending(core, job).await?;
    let mapping = identifier_mapping(core, &job.tenant_id).await?;
    for (n, chunk) in pending.items.chunks(BATCH).enumerate() {
        let action = Action {
            event_id: &pending.event_id,
            done: pending.done + n * BATCH,
            items: chunk,
        };
        let mut conn = core.db.background().await?;
        let mut tx = conn.begin().await?;
        let planned: Vec<Planned> = plan(&mut tx, &job.tenant_id, &mapping, &[action])
            .await?
            .into_iter()
            .flatten()
            .collect();
        let live = apply::apply_planned(&mut tx, &job.tenant_id, &planned).await?;
        tx.commit().await?;
        drop(conn);
        core.db.publish_all(live);
    }
    Ok(())
}

/// Items of one custom action to apply in a transaction.
#[derive(Clone, Copy)]
pub struct Action<'a> {
    pub event_id: &'a str,
    /// The event's items already applied when this run read it.
    pub done: usize,
    pub items: &'a [CustomActionItem],
}

/// Plans the actions' items in the caller's transaction, in a fixed number of
/// statements however many items they hold: their passes are found together, their
/// callbacks queued and their progress recorded. Returns each action's updates, to
/// apply in the same transaction.
pub async fn plan(
    tx: &mut AnyConnection,
    tenant_id: &str,
    mapping: &[(String, String)],
    actions: &[Action<'_>],
) -> Result<Vec<Vec<Planned>>> {
    let items: Vec<&CustomActionItem> = actions.iter().flat_map(|a| a.items.iter()).collect();
    let mut targets = resolve_items(tx, tenant_id, &items, mapping)
        .await?
        .into_iter();
    let (mut plans, mut calls, mut progress) = (Vec::new(), Vec::new(), Vec::new());
    for action in actions {
        let mut planned = Vec::new();
        for item in action.items {
            let found = targets.next().expect("one target list per item");
            let link = if found.is_empty() {
                &item.notify_ko
            } else {
                &item.notify_ok
            };
            calls.extend(link.as_deref().map(|url| (Some(action.event_id), url)));
            plan_item(item, action.event_id, found, &mut planned);
        }
        progress.push((action.event_id, action.done, action.items.len()));
        plans.push(planned);
    }
    callbacks::queue(tx, tenant_id, &calls).await?;
    record_progress(tx, &progress).await?;
    Ok(plans)
}

/// A custom-action item's update of each of its passes.
fn plan_item(
    item: &CustomActionItem,
    event_id: &str,
    passes: Vec<String>,
    planned: &mut Vec<Planned>,
) {
    let cause = Cause {
        source: "actito".into(),
        event_id: Some(event_id.to_string()),
        campaign_id: item.parameters.get("campaignId").and_then(scalar_text),
        ..Default::default()
    };
    let (changes, message) = (item.changes(), item.message());
    planned.extend(passes.into_iter().map(|pass_id| Planned {
        pass_id,
        changes: changes.clone(),
        cause: cause.clone(),
        message: message.clone(),
    }));
}

/// Adds each event's applied items to its progress, one statement per count. Each
/// event's progress must still be what the run read: if another worker (a replica
/// that still ran a job whose lease had lapsed) recorded it meanwhile, the whole
/// transaction is refused, so no item is applied, nor called back, twice.
async fn record_progress(
    conn: &mut AnyConnection,
    progress: &[(&str, usize, usize)],
) -> Result<()> {
    let mut by_count: std::collections::BTreeMap<usize, Vec<(&str, usize)>> =
        std::collections::BTreeMap::new();
    for (event_id, done, n) in progress {
        by_count.entry(*n).or_default().push((event_id, *done));
    }
    for (n, events) in by_count {
        for chunk in events.chunks(PER_STATEMENT / 2) {
            let pairs: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 + 2 * i, 3 + 2 * i))
                .collect();
            let sql = format!(
                "UPDATE inbound_events SET items_done = items_done + $1 \
                 WHERE (id, items_done) IN (VALUES {})",
                pairs.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(n as i64);
            for (id, done) in chunk {
                query = query.bind(*id).bind(*done as i64);
            }
            let moved = query.execute(&mut *conn).await?.rows_affected();
            if moved != chunk.len() as u64 {
                return Err(DomainError::Conflict(
                    "another worker applied these items meanwhile".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Each item's passes: `actionParameters.passId`, else the first identifier mapping
/// with a value that matches at least one pass; `actionParameters.passType`
/// restricts either way. One query for the pass ids and one per mapping used.
async fn resolve_items(
    conn: &mut AnyConnection,
    tenant_id: &str,
    items: &[&CustomActionItem],
    mapping: &[(String, String)],
) -> Result<Vec<Vec<String>>> {
    let wanted: Vec<Option<String>> = items
        .iter()
        .map(|item| item.pass_type().filter(|t| !t.is_empty()))
        .collect();
    let of_type = |i: usize, pass_type: &str| wanted[i].as_deref().is_none_or(|t| t == pass_type);
    let mut targets = vec![Vec::new(); items.len()];
    let (mut by_id, mut open) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        match item.pass_id() {
            Some(id) => by_id.push((i, id)),
            None => open.push(i),
        }
    }
    let ids: Vec<&str> = by_id.iter().map(|(_, id)| id.as_str()).collect();
    let types = passes::types_of(conn, tenant_id, &ids).await?;
    for (i, id) in &by_id {
        if types.get(id).is_some_and(|t| of_type(*i, t)) {
            targets[*i].push(id.clone());
        }
    }
    for (attribute, identifier) in mapping {
        let asked: Vec<(usize, String)> = open
            .iter()
            .filter_map(|&i| {
                let value = items[i].profile_value(attribute)?;
                Some((i, passes::normalize_identifier(identifier, &value)))
            })
            .collect();
        if asked.is_empty() {
            continue;
        }
        let values: Vec<&str> = asked.iter().map(|(_, v)| v.as_str()).collect();
        let found = passes::find_many(conn, tenant_id, identifier, &values).await?;
        for (i, value) in &asked {
            let ids = found.get(value).into_iter().flatten();
            targets[*i] = ids
                .filter(|(_, pass_type)| of_type(*i, pass_type))
                .map(|(id, _)| id.clone())
                .collect();
            targets[*i].dedup();
        }
        open.retain(|i| targets[*i].is_empty());
    }
    Ok(targets)
}

/// When a custom-action job is out of attempts, Actito still hears about every item
/// not applied: each gets its notifyKO. Runs in the transaction that marks the job
/// dead, so a crash cannot lose those callbacks.
pub async fn on_dead(db: &Db, conn: &mut AnyConnection, job: &Job) -> Result<()> {
    let Some(event_id) = job.event_id.as_deref() else {
        return Ok(());
    };
    let (read, done) = events::read_body(db, event_id, |body, done| {
        (envelope::custom_actions(body.as_bytes()), done)
    })
    .await?;
    let Ok(envelope::CustomActions { items, .. }) = read else {
        return Ok(());
    };
    let calls: Vec<(Option<&str>, &str)> = items
        .iter()
        .skip(done as usize)
        .filter_map(|item| Some((Some(event_id), item.notify_ko.as_deref()?)))
        .collect();
    callbacks::queue(conn, &job.tenant_id, &calls).await
}
