//! What the workers do with each kind of job: apply Actito custom actions, profile
//! changes and SFMC push updates to passes, and deliver Actito callbacks.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{json, Map, Value};
use sqlx::{AnyConnection, Connection};

use crate::actito::callbacks::{self, CallbackResult};
use crate::actito::client::ActitoError;
use crate::actito::envelope::{self, scalar_text, CustomActionItem};
use crate::actito::settings::{
    self as actito_settings, default_callback_hosts, default_identifier_mapping,
};
use crate::core::Core;
use crate::customers;
use crate::deliveries::{self, Attempt, NewDelivery};
use crate::error::{DomainError, Result};
use crate::events;
use crate::jobs::{self, Job, NewJob, Outcome};
use crate::live::{LiveEvent, LiveKind};
use crate::passes::{self, Cause, Data, Patched, Update};
use crate::sql::{params, PER_STATEMENT};
use crate::wallet::delivery::{self, Owed};
use crate::wallet::pass_types;

pub const ACTITO_CUSTOM_ACTION: &str = "actito.custom_action";
pub const ACTITO_PROFILE: &str = "actito.profile";
pub const SFMC_EXECUTE: &str = "sfmc.execute";
pub const ACTITO_CALLBACK: &str = "actito.callback";
/// The kinds this release's workers run.
pub const KINDS: [&str; 5] = [
    ACTITO_CUSTOM_ACTION,
    ACTITO_PROFILE,
    SFMC_EXECUTE,
    ACTITO_CALLBACK,
    delivery::WALLET_REFRESH,
];

/// Items of a BULK envelope applied per transaction.
const BATCH: usize = 100;

/// Jobs that change passes of one tenant run in the order received.
pub fn tenant_order(tenant_id: &str) -> String {
    format!("tenant:{tenant_id}")
}

/// How a job attempt went, with the delivery attempt it made (recorded in the same
/// transaction as the job's outcome).
#[derive(Debug)]
pub struct Ran {
    pub outcome: Outcome,
    pub delivery: Option<(String, Attempt)>,
}

impl From<Outcome> for Ran {
    fn from(outcome: Outcome) -> Self {
        Ran {
            outcome,
            delivery: None,
        }
    }
}

pub async fn run(core: &Core, job: &Job) -> Ran {
    let result = match job.kind.as_str() {
        ACTITO_CUSTOM_ACTION => custom_action(core, job).await,
        ACTITO_PROFILE => profile(core, job).await,
        SFMC_EXECUTE => sfmc_execute(core, job).await,
        ACTITO_CALLBACK => return callback(core, job).await,
        delivery::WALLET_REFRESH => return delivery::run(core, job).await.into(),
        other => Err(DomainError::Internal(format!(
            "no handler for job kind {other}"
        ))),
    };
    match result {
        Ok(()) => Outcome::Done,
        Err(e @ (DomainError::Invalid(_) | DomainError::NotFound(_))) => Outcome::Fatal {
            error: failure_text(&e),
        },
        Err(e) => Outcome::Retry {
            error: e.to_string(),
            retry_after_ms: None,
        },
    }
    .into()
}

/// What a job that failed for good records: an invalid request names its fields'
/// messages (Actito's answer among them), not just "the request is invalid".
fn failure_text(error: &DomainError) -> String {
    match error {
        DomainError::Invalid(fields) if !fields.is_empty() => fields
            .iter()
            .map(|f| f.message.as_str())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// Changes one pass and, when it changed, records in the same transaction that its
/// wallets owe a refresh. Updates to one pass coalesce into one owed refresh (the
/// newest version, significant if any of them was), delivered by the wallet channels.
/// The result's `significant` includes the pass type's notify-worthy fields.
/// Callers publish [`live`] of the result once their transaction is committed.
pub async fn apply(
    conn: &mut AnyConnection,
    tenant_id: &str,
    pass_id: &str,
    update: Update<'_>,
) -> Result<Patched> {
    apply_all(conn, tenant_id, &[(pass_id, update)])
        .await?
        .pop()
        .flatten()
        .ok_or(DomainError::NotFound("pass"))
}

/// [`apply`] for many updates, in order, in a few statements (a BULK chunk, a run of
/// custom actions); `None` for a pass that does not exist.
pub async fn apply_all(
    conn: &mut AnyConnection,
    tenant_id: &str,
    updates: &[(&str, Update<'_>)],
) -> Result<Vec<Option<Patched>>> {
    let mut results = passes::patch_many(conn, tenant_id, updates).await?;
    let mut types = PassTypes::default();
    let mut owed = Vec::new();
    for ((pass_id, update), patched) in updates.iter().zip(results.iter_mut()) {
        let Some(patched) = patched.as_mut().filter(|p| !p.changes.is_empty()) else {
            continue;
        };
        let changed: Vec<&str> = patched.changes.iter().map(|c| c.key.as_str()).collect();
        let worthy = types
            .notify_worthy(conn, tenant_id, &patched.pass.pass_type, &changed)
            .await?;
        patched.significant = patched.significant || worthy;
        owed.push(Owed {
            pass_id,
            version: patched.pass.version,
            significant: patched.significant,
            message: update.message,
        });
    }
    delivery::owe_many(conn, tenant_id, &owed).await?;
    Ok(results)
}

/// Pass types read at most once per batch (a BULK chunk touches many passes of few
/// types).
#[derive(Default)]
struct PassTypes(HashMap<String, Option<pass_types::PassType>>);

impl PassTypes {
    async fn notify_worthy(
        &mut self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        pass_type: &str,
        changed: &[&str],
    ) -> Result<bool> {
        if !self.0.contains_key(pass_type) {
            let found = pass_types::get_in(conn, tenant_id, pass_type).await?;
            self.0.insert(pass_type.to_string(), found);
        }
        Ok(self.0[pass_type]
            .as_ref()
            .is_some_and(|t| t.notify_worthy(changed)))
    }
}

/// An update of one pass planned by a job, kept until its run is applied.
struct Planned {
    pass_id: String,
    changes: Data,
    cause: Cause,
    message: Option<String>,
}

/// Applies a run's planned updates together; returns the live events to publish
/// after the commit.
async fn apply_planned(
    conn: &mut AnyConnection,
    tenant_id: &str,
    planned: &[Planned],
) -> Result<Vec<LiveEvent>> {
    let updates: Vec<(&str, Update)> = planned
        .iter()
        .map(|p| {
            let update = Update {
                changes: &p.changes,
                cause: &p.cause,
                message: p.message.as_deref(),
            };
            (p.pass_id.as_str(), update)
        })
        .collect();
    let results = apply_all(conn, tenant_id, &updates).await?;
    Ok(results
        .iter()
        .zip(planned)
        .filter_map(|(patched, p)| live(tenant_id, patched.as_ref()?, p.cause.event_id.as_deref()))
        .collect())
}

/// The live-feed event of an applied update, if it changed the pass.
pub fn live(tenant_id: &str, patched: &Patched, event_id: Option<&str>) -> Option<LiveEvent> {
    (!patched.changes.is_empty()).then(|| {
        LiveEvent::new(
            tenant_id,
            LiveKind::Pass {
                pass_id: patched.pass.id.clone(),
                version: patched.pass.version,
                event_id: event_id.map(str::to_string),
                significant: patched.significant,
            },
        )
    })
}

fn event_id(job: &Job) -> Result<&str> {
    job.event_id
        .as_deref()
        .ok_or_else(|| DomainError::Internal(format!("job {} has no event", job.id)))
}

/// A custom action's items still to apply, read before any transaction.
struct CustomAction {
    event_id: String,
    /// Items applied before this run (recorded with them): `items` are the rest.
    done: usize,
    items: Vec<CustomActionItem>,
}

async fn read_custom_action(core: &Core, job: &Job) -> Result<CustomAction> {
    let event_id = event_id(job)?;
    let (read, done) = events::read_body(&core.db, event_id, |body, done| {
        (envelope::custom_actions(body.as_bytes()), done as usize)
    })
    .await?;
    let mut items = read
        .map_err(|e| DomainError::invalid("body", &format!("{:?}", e.error)))?
        .items;
    items.drain(..done.min(items.len()));
    Ok(CustomAction {
        event_id: event_id.to_string(),
        done,
        items,
    })
}

/// How the tenant's Actito profile attributes map to pass identifiers.
async fn identifier_mapping(core: &Core, tenant_id: &str) -> Result<Vec<(String, String)>> {
    Ok(actito_settings::get(core.vault(), tenant_id)
        .await?
        .map(|s| s.identifier_mapping)
        .unwrap_or_else(default_identifier_mapping))
}

async fn custom_action(core: &Core, job: &Job) -> Result<()> {
    let action = read_custom_action(core, job).await?;
    let mapping = identifier_mapping(core, &job.tenant_id).await?;
    for (n, chunk) in action.items.chunks(BATCH).enumerate() {
        let work = Work::Action {
            event_id: &action.event_id,
            done: action.done + n * BATCH,
            items: chunk,
        };
        apply_run(core, &job.tenant_id, &mapping, &[work]).await?;
    }
    Ok(())
}

/// Applies `work` in one background transaction, then publishes what changed.
async fn apply_run(
    core: &Core,
    tenant_id: &str,
    mapping: &[(String, String)],
    work: &[Work<'_>],
) -> Result<()> {
    let mut conn = core.db.background().await?;
    let mut tx = conn.begin().await?;
    let applied = apply_run_in(&mut tx, tenant_id, mapping, work).await?;
    tx.commit().await?;
    drop(conn);
    core.db.publish_all(applied);
    Ok(())
}

/// One job's part of a run.
enum Work<'a> {
    /// Custom-action items (all of a ONE_BY_ONE, a chunk of a BULK).
    Action {
        event_id: &'a str,
        /// The event's items already applied when this run read it.
        done: usize,
        items: &'a [CustomActionItem],
    },
    /// An SFMC push update.
    Push(&'a Job),
}

/// Applies a run's work in the caller's transaction, in order, in a fixed number of
/// statements however many jobs and items it holds: the items' passes are found
/// together, their callbacks queued and their progress recorded, SFMC push updates
/// already applied are skipped, and every update goes through [`apply_all`].
/// Returns the live events to publish after the commit.
async fn apply_run_in(
    tx: &mut AnyConnection,
    tenant_id: &str,
    mapping: &[(String, String)],
    work: &[Work<'_>],
) -> Result<Vec<LiveEvent>> {
    let pushes: Vec<&str> = work
        .iter()
        .filter_map(|w| match w {
            Work::Push(job) => job.event_id.as_deref(),
            Work::Action { .. } => None,
        })
        .collect();
    let unapplied = mark_applied(tx, &pushes).await?;
    let items: Vec<&CustomActionItem> = work
        .iter()
        .flat_map(|w| match w {
            Work::Action { items, .. } => items.iter(),
            Work::Push(_) => [].iter(),
        })
        .collect();
    let mut targets = resolve_items(tx, tenant_id, &items, mapping)
        .await?
        .into_iter();
    let (mut planned, mut callbacks, mut progress) = (Vec::new(), Vec::new(), Vec::new());
    for w in work {
        match w {
            Work::Action {
                event_id,
                done,
                items,
            } => {
                for item in *items {
                    let found = targets.next().expect("one target list per item");
                    let link = if found.is_empty() {
                        &item.notify_ko
                    } else {
                        &item.notify_ok
                    };
                    callbacks.extend(link.as_deref().map(|url| (*event_id, url)));
                    plan_item(item, event_id, found, &mut planned);
                }
                progress.push((*event_id, *done, items.len()));
            }
            Work::Push(job) => {
                if job
                    .event_id
                    .as_deref()
                    .is_none_or(|e| unapplied.contains(e))
                {
                    plan_push(job, &mut planned);
                }
            }
        }
    }
    queue_callbacks(tx, tenant_id, &callbacks).await?;
    record_progress(tx, &progress).await?;
    apply_planned(tx, tenant_id, &planned).await
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

/// An SFMC push update of each of its passes (those gone by now are skipped).
fn plan_push(job: &Job, planned: &mut Vec<Planned>) {
    let p = &job.payload;
    let pass_ids: Vec<String> = serde_json::from_value(p["passIds"].clone()).unwrap_or_default();
    let changes: Map<String, Value> = p["additionalData"].as_object().cloned().unwrap_or_default();
    let cause = Cause {
        source: "sfmc".into(),
        event_id: job.event_id.clone(),
        journey_id: p["journeyId"].as_str().map(str::to_string),
        actor: p["keyValue"].as_str().map(|k| format!("contact {k}")),
        ..Default::default()
    };
    planned.extend(pass_ids.into_iter().map(|pass_id| Planned {
        pass_id,
        changes: changes.clone(),
        cause: cause.clone(),
        message: p["message"].as_str().map(str::to_string),
    }));
}

/// Marks SFMC events applied in the caller's transaction; returns those that were
/// not yet. A job run again (its outcome lost to a crash or a database outage after
/// the commit) then changes nothing the second time.
async fn mark_applied(conn: &mut AnyConnection, event_ids: &[&str]) -> Result<HashSet<String>> {
    let mut marked = HashSet::new();
    for ids in event_ids.chunks(PER_STATEMENT) {
        let sql = format!(
            "UPDATE inbound_events SET items_done = items \
             WHERE id IN ({}) AND items_done < items RETURNING id",
            params(1, ids.len())
        );
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        marked.extend(
            query
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(id,)| id),
        );
    }
    Ok(marked)
}

/// Adds each event's applied items to its progress, one statement per count. Each
/// event's progress must still be what the run read: if another worker (a replica
/// that still ran a job whose lease had lapsed) recorded it meanwhile, the whole
/// transaction is refused, so no item is applied, nor called back, twice.
async fn record_progress(
    conn: &mut AnyConnection,
    progress: &[(&str, usize, usize)],
) -> Result<()> {
    let mut by_count: BTreeMap<usize, Vec<(&str, usize)>> = BTreeMap::new();
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

/// Kinds whose jobs of one ordering key may run as one run (see [`run_in_order`]).
pub const RUN_KINDS: [&str; 2] = [ACTITO_CUSTOM_ACTION, SFMC_EXECUTE];

/// Jobs of a run applied per transaction: few enough that the SQLite writer is not
/// held long (inbound events wait for the transaction under way).
const TOGETHER: usize = 4;

/// Runs consecutive jobs of one ordering key, in order; returns how each went.
///
/// Small ones go through one transaction per [`TOGETHER`] (a burst of ONE_BY_ONE
/// custom actions then costs a commit per four, not one each). If that fails, or a
/// job is too big, the rest run one by one, and the jobs behind one that will be
/// retried are released unrun, so that none overtakes it.
pub async fn run_in_order(core: &Core, jobs: &[Job]) -> Vec<Ran> {
    let mut rans = Vec::with_capacity(jobs.len());
    let mut rest = jobs;
    while rest.len() > 1 {
        let group = &rest[..rest.len().min(TOGETHER)];
        match together(core, group).await {
            Ok(true) => {
                rans.extend(group.iter().map(|_| Ran::from(Outcome::Done)));
                rest = &rest[group.len()..];
            }
            Ok(false) => break,
            Err(e) => {
                tracing::debug!(error = %e, jobs = group.len(), "jobs failed together; running them one by one");
                break;
            }
        }
    }
    let mut stopped = false;
    for job in rest {
        if stopped {
            rans.push(Outcome::Released.into());
            continue;
        }
        let ran = run(core, job).await;
        stopped = matches!(ran.outcome, Outcome::Retry { .. }) && job.attempt < job.max_attempts;
        rans.push(ran);
    }
    rans
}

/// Applies every job of the run in one transaction; `false` (nothing written) when
/// they hold more items than one transaction should (it holds the SQLite writer) or
/// one is not of a kind that can.
async fn together(core: &Core, jobs: &[Job]) -> Result<bool> {
    if jobs
        .iter()
        .any(|job| !RUN_KINDS.contains(&job.kind.as_str()))
    {
        return Ok(false);
    }
    let mut actions = HashMap::new();
    let mut items = 0;
    for job in jobs.iter().filter(|j| j.kind == ACTITO_CUSTOM_ACTION) {
        let action = read_custom_action(core, job).await?;
        items += action.items.len();
        if items > BATCH {
            return Ok(false);
        }
        actions.insert(job.id.as_str(), action);
    }
    // One tenant's run (its ordering key): one mapping, updates applied in order.
    let tenant_id = &jobs[0].tenant_id;
    let mapping = if actions.is_empty() {
        Vec::new()
    } else {
        identifier_mapping(core, tenant_id).await?
    };
    let work: Vec<Work> = jobs
        .iter()
        .map(|job| match actions.get(job.id.as_str()) {
            Some(action) => Work::Action {
                event_id: &action.event_id,
                done: action.done,
                items: &action.items,
            },
            None => Work::Push(job),
        })
        .collect();
    apply_run(core, tenant_id, &mapping, &work).await?;
    Ok(true)
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

/// A callback delivery and its job per `(event, URL)`, in multi-row inserts.
async fn queue_callbacks(
    conn: &mut AnyConnection,
    tenant_id: &str,
    callbacks: &[(&str, &str)],
) -> Result<()> {
    let callbacks: Vec<(Option<&str>, &str)> = callbacks
        .iter()
        .map(|(event_id, url)| (Some(*event_id), *url))
        .collect();
    queue_callbacks_for(conn, tenant_id, &callbacks).await
}

/// [`queue_callbacks`], where a callback may belong to no stored event (the items
/// of a refused envelope).
async fn queue_callbacks_for(
    conn: &mut AnyConnection,
    tenant_id: &str,
    callbacks: &[(Option<&str>, &str)],
) -> Result<()> {
    if callbacks.is_empty() {
        return Ok(());
    }
    let new: Vec<NewDelivery> = callbacks
        .iter()
        .map(|(event_id, url)| NewDelivery {
            pass_id: None,
            event_id: *event_id,
            target: url,
        })
        .collect();
    let deliveries =
        deliveries::create_many(conn, tenant_id, deliveries::Channel::ActitoCallback, &new).await?;
    let jobs: Vec<NewJob> = deliveries
        .iter()
        .zip(callbacks)
        .map(|(delivery, (_, url))| {
            NewJob::new(
                tenant_id,
                ACTITO_CALLBACK,
                json!({"deliveryId": delivery, "url": url}),
            )
            .attempts(10)
        })
        .collect();
    jobs::enqueue(conn, &jobs).await?;
    Ok(())
}

/// A custom-action envelope refused after authentication (a parameter holding an
/// object, an item without parameters): every item whose notifyKO link can be read
/// still gets it, so that its profile does not wait in the Actito scenario forever.
/// The links go through the tenant's callback hosts like any callback. Returns how
/// many were queued.
pub async fn notify_refused(
    db: &crate::db::Db,
    tenant_id: &str,
    links: &[String],
) -> Result<usize> {
    let callbacks: Vec<(Option<&str>, &str)> = links.iter().map(|l| (None, l.as_str())).collect();
    if callbacks.is_empty() {
        return Ok(0);
    }
    let mut conn = db.writer().acquire().await?;
    let mut tx = conn.begin().await?;
    queue_callbacks_for(&mut tx, tenant_id, &callbacks).await?;
    tx.commit().await?;
    Ok(callbacks.len())
}

/// When a custom-action job is out of attempts, Actito still hears about every item
/// not applied: each gets its notifyKO. Runs in the transaction that marks the job
/// dead, so a crash cannot lose those callbacks.
pub async fn on_dead_in(db: &crate::db::Db, conn: &mut AnyConnection, job: &Job) -> Result<()> {
    if job.kind != ACTITO_CUSTOM_ACTION {
        return Ok(());
    }
    let event_id = event_id(job)?;
    let (read, done) = events::read_body(db, event_id, |body, done| {
        (envelope::custom_actions(body.as_bytes()), done)
    })
    .await?;
    let Ok(envelope::CustomActions { items, .. }) = read else {
        return Ok(());
    };
    let callbacks: Vec<(&str, &str)> = items
        .iter()
        .skip(done as usize)
        .filter_map(|item| Some((event_id, item.notify_ko.as_deref()?)))
        .collect();
    queue_callbacks(conn, &job.tenant_id, &callbacks).await?;
    Ok(())
}

async fn profile(core: &Core, job: &Job) -> Result<()> {
    let profile_id = job.payload["profileId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let settings = actito_settings::get(core.vault(), &job.tenant_id)
        .await?
        .ok_or_else(|| {
            DomainError::invalid("actito", "Actito is not configured for this tenant")
        })?;
    let attributes = match core.actito.profile(&settings, &profile_id).await {
        Ok(attributes) => attributes,
        Err(ActitoError::Refused(message)) => return Err(DomainError::invalid("actito", &message)),
        Err(e @ ActitoError::Unavailable { .. }) => {
            return Err(DomainError::Internal(e.to_string()))
        }
    };
    let identifiers: Vec<(String, String)> = settings
        .identifier_mapping
        .iter()
        .filter_map(|(attr, ident)| Some((ident.clone(), scalar_text(attributes.get(attr)?)?)))
        .collect();
    let data: Data = settings
        .data_mapping
        .iter()
        .filter_map(|(attr, key)| Some((key.clone(), attributes.get(attr)?.clone())))
        .map(|(k, v)| {
            (
                k,
                if v.is_array() || v.is_object() {
                    Value::String(v.to_string())
                } else {
                    v
                },
            )
        })
        .collect();
    let mut conn = core.db.background().await?;
    let mut tx = conn.begin().await?;
    let mut applied = Vec::new();
    let before = customers::upsert(&mut tx, &job.tenant_id, &profile_id, &attributes).await?;
    let mapped_changed = before.is_empty()
        || settings
            .data_mapping
            .iter()
            .any(|(attr, _)| before.get(attr) != attributes.get(attr));
    if mapped_changed && !data.is_empty() {
        let cause = Cause {
            source: "actito".into(),
            actor: Some(format!("profile {profile_id}")),
            event_id: job.event_id.clone(),
            ..Default::default()
        };
        let update = Update {
            changes: &data,
            cause: &cause,
            message: None,
        };
        let found = passes::find_any(&mut tx, &job.tenant_id, &identifiers, None).await?;
        let updates: Vec<(&str, Update)> = found.iter().map(|id| (id.as_str(), update)).collect();
        let results = apply_all(&mut tx, &job.tenant_id, &updates).await?;
        applied.extend(
            results
                .iter()
                .flatten()
                .filter_map(|patched| live(&job.tenant_id, patched, job.event_id.as_deref())),
        );
    }
    tx.commit().await?;
    drop(conn);
    core.db.publish_all(applied);
    Ok(())
}

async fn sfmc_execute(core: &Core, job: &Job) -> Result<()> {
    apply_run(core, &job.tenant_id, &[], &[Work::Push(job)]).await
}

async fn callback(core: &Core, job: &Job) -> Ran {
    let delivery_id = job.payload["deliveryId"].as_str().unwrap_or_default();
    let url = job.payload["url"].as_str().unwrap_or_default();
    let hosts = match actito_settings::get(core.vault(), &job.tenant_id).await {
        Ok(settings) => settings
            .map(|s| s.callback_hosts)
            .unwrap_or_else(default_callback_hosts),
        Err(e) => {
            return Outcome::Retry {
                error: e.to_string(),
                retry_after_ms: None,
            }
            .into()
        }
    };
    let result = callbacks::post(&core.outbound, url, &hosts).await;
    let last = job.attempt >= job.max_attempts;
    let (attempt, outcome) = match result {
        CallbackResult::Delivered { status, latency_ms } => (
            Attempt {
                status_code: Some(status),
                latency_ms,
                error: None,
                new_status: deliveries::DELIVERED,
            },
            Outcome::Done,
        ),
        CallbackResult::Refused {
            status,
            latency_ms,
            error,
        } => (
            Attempt {
                status_code: status,
                latency_ms,
                error: Some(error),
                new_status: deliveries::FAILED,
            },
            Outcome::Done,
        ),
        CallbackResult::Failed {
            status,
            latency_ms,
            error,
            retry_after_ms,
        } => (
            Attempt {
                status_code: status,
                latency_ms,
                error: Some(error.clone()),
                new_status: if last {
                    deliveries::FAILED
                } else {
                    deliveries::RETRYING
                },
            },
            Outcome::Retry {
                error,
                retry_after_ms,
            },
        ),
    };
    Ran {
        outcome,
        delivery: Some((delivery_id.to_string(), attempt)),
    }
}
