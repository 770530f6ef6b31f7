//! What the workers do with each kind of job: apply Actito custom actions, profile
//! changes and SFMC push updates to passes, and deliver Actito callbacks.

use std::collections::HashMap;

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
use crate::deliveries::{self, Attempt};
use crate::error::{DomainError, Result};
use crate::events;
use crate::jobs::{self, Job, NewJob, Outcome};
use crate::live::{LiveEvent, LiveKind};
use crate::passes::{self, Cause, Data, Patched, Update};
use crate::wallet::{delivery, pass_types};

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
            error: e.to_string(),
        },
        Err(e) => Outcome::Retry {
            error: e.to_string(),
            retry_after_ms: None,
        },
    }
    .into()
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
    apply_with(conn, &mut PassTypes::default(), tenant_id, pass_id, update).await
}

/// Pass types read at most once per transaction (a BULK chunk touches many passes
/// of few types).
#[derive(Default)]
pub struct PassTypes(HashMap<String, Option<pass_types::PassType>>);

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

/// [`apply`] with pass types remembered across calls in one transaction.
pub async fn apply_with(
    conn: &mut AnyConnection,
    types: &mut PassTypes,
    tenant_id: &str,
    pass_id: &str,
    update: Update<'_>,
) -> Result<Patched> {
    let mut patched = passes::patch_in(conn, tenant_id, pass_id, update).await?;
    if !patched.changes.is_empty() {
        let changed: Vec<&str> = patched.changes.iter().map(|c| c.key.as_str()).collect();
        let worthy = types
            .notify_worthy(conn, tenant_id, &patched.pass.pass_type, &changed)
            .await?;
        patched.significant = patched.significant || worthy;
        delivery::owe(
            conn,
            tenant_id,
            pass_id,
            patched.pass.version,
            patched.significant,
            update.message,
        )
        .await?;
    }
    Ok(patched)
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
    items: Vec<CustomActionItem>,
    mapping: Vec<(String, String)>,
}

async fn read_custom_action(core: &Core, job: &Job) -> Result<CustomAction> {
    let event_id = event_id(job)?;
    let (body, done) = events::body(&core.db, event_id).await?;
    let envelope = envelope::parse(body.as_bytes())
        .map_err(|e| DomainError::invalid("body", &format!("{e:?}")))?;
    let items = envelope::custom_action_items(&envelope)
        .map_err(|e| DomainError::invalid("body", &format!("{e:?}")))?;
    let settings = actito_settings::get(core, &job.tenant_id).await?;
    let mapping = settings
        .as_ref()
        .map(|s| s.identifier_mapping.clone())
        .unwrap_or_else(default_identifier_mapping);
    Ok(CustomAction {
        event_id: event_id.to_string(),
        items: items.into_iter().skip(done as usize).collect(),
        mapping,
    })
}

async fn custom_action(core: &Core, job: &Job) -> Result<()> {
    let action = read_custom_action(core, job).await?;
    for chunk in action.items.chunks(BATCH) {
        let mut conn = core.db.background().await?;
        let mut tx = conn.begin().await?;
        let mut types = PassTypes::default();
        let applied = apply_items_in(&mut tx, &mut types, job, &action, chunk).await?;
        tx.commit().await?;
        drop(conn);
        core.db.publish_all(applied);
    }
    Ok(())
}

/// Applies custom-action items, queues their callbacks and records the progress, in
/// the caller's transaction. Returns the live events to publish after the commit.
async fn apply_items_in(
    tx: &mut AnyConnection,
    types: &mut PassTypes,
    job: &Job,
    action: &CustomAction,
    items: &[CustomActionItem],
) -> Result<Vec<LiveEvent>> {
    let event_id = action.event_id.as_str();
    let mut applied = Vec::new();
    let mut callbacks = Vec::new();
    for item in items {
        let targets = resolve_item(tx, &job.tenant_id, item, &action.mapping).await?;
        let cause = Cause {
            source: "actito".into(),
            event_id: Some(event_id.to_string()),
            campaign_id: item.parameters.get("campaignId").and_then(scalar_text),
            ..Default::default()
        };
        let changes = item.changes();
        let message = item.message();
        let update = Update {
            changes: &changes,
            cause: &cause,
            message: message.as_deref(),
        };
        for pass_id in &targets {
            let patched = apply_with(tx, types, &job.tenant_id, pass_id, update).await?;
            applied.extend(live(&job.tenant_id, &patched, Some(event_id)));
        }
        let link = if targets.is_empty() {
            &item.notify_ko
        } else {
            &item.notify_ok
        };
        callbacks.extend(link.as_deref());
    }
    queue_callbacks(tx, &job.tenant_id, event_id, &callbacks).await?;
    sqlx::query("UPDATE inbound_events SET items_done = items_done + $1 WHERE id = $2")
        .bind(items.len() as i64)
        .bind(event_id)
        .execute(&mut *tx)
        .await?;
    Ok(applied)
}

/// Kinds whose jobs of one ordering key may run as one run (see [`run_in_order`]).
pub const RUN_KINDS: [&str; 2] = [ACTITO_CUSTOM_ACTION, SFMC_EXECUTE];

/// Jobs of a run applied per transaction: few enough that the SQLite writer is not
/// held long (inbound events wait for the transaction under way).
const TOGETHER: usize = 8;

/// Runs consecutive jobs of one ordering key, in order; returns how each went.
///
/// Small ones go through one transaction per [`TOGETHER`] (a burst of ONE_BY_ONE
/// custom actions then costs a commit per eight, not one each). If that fails, or a
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
    let mut actions = HashMap::new();
    let mut items = 0;
    for job in jobs {
        match job.kind.as_str() {
            ACTITO_CUSTOM_ACTION => {
                let action = read_custom_action(core, job).await?;
                items += action.items.len();
                if items > BATCH {
                    return Ok(false);
                }
                actions.insert(job.id.as_str(), action);
            }
            SFMC_EXECUTE => {}
            _ => return Ok(false),
        }
    }
    let mut conn = core.db.background().await?;
    let mut tx = conn.begin().await?;
    let mut types = PassTypes::default();
    let mut applied = Vec::new();
    for job in jobs {
        match actions.get(job.id.as_str()) {
            Some(action) => applied
                .extend(apply_items_in(&mut tx, &mut types, job, action, &action.items).await?),
            None => applied.extend(sfmc_execute_in(&mut tx, &mut types, job).await?),
        }
    }
    tx.commit().await?;
    drop(conn);
    core.db.publish_all(applied);
    Ok(true)
}

/// `actionParameters.passId`, else the first identifier mapping with a value that
/// matches at least one pass; `actionParameters.passType` restricts either way.
async fn resolve_item(
    conn: &mut AnyConnection,
    tenant_id: &str,
    item: &CustomActionItem,
    mapping: &[(String, String)],
) -> Result<Vec<String>> {
    let pass_type = item.pass_type();
    if let Some(pass_id) = item.pass_id() {
        return Ok(
            passes::find_by_id(conn, tenant_id, &pass_id, pass_type.as_deref())
                .await?
                .into_iter()
                .collect(),
        );
    }
    for (attribute, identifier) in mapping {
        let Some(value) = item.profile_value(attribute) else {
            continue;
        };
        let found = passes::find_any(
            conn,
            tenant_id,
            &[(identifier.clone(), value)],
            pass_type.as_deref(),
        )
        .await?;
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Ok(Vec::new())
}

/// A callback delivery and its job per URL, in multi-row inserts.
async fn queue_callbacks(
    conn: &mut AnyConnection,
    tenant_id: &str,
    event_id: &str,
    urls: &[&str],
) -> Result<()> {
    let deliveries =
        deliveries::create_many(conn, tenant_id, deliveries::ACTITO_CALLBACK, event_id, urls)
            .await?;
    let jobs: Vec<NewJob> = deliveries
        .iter()
        .zip(urls)
        .map(|(delivery, url)| {
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

/// When a custom-action job is out of attempts, Actito still hears about every item
/// not applied: each gets its notifyKO. Runs in the transaction that marks the job
/// dead, so a crash cannot lose those callbacks.
pub async fn on_dead_in(db: &crate::db::Db, conn: &mut AnyConnection, job: &Job) -> Result<()> {
    if job.kind != ACTITO_CUSTOM_ACTION {
        return Ok(());
    }
    let event_id = event_id(job)?;
    let (body, done) = events::body(db, event_id).await?;
    let Ok(items) =
        envelope::parse(body.as_bytes()).and_then(|e| envelope::custom_action_items(&e))
    else {
        return Ok(());
    };
    let urls: Vec<&str> = items
        .iter()
        .skip(done as usize)
        .filter_map(|item| item.notify_ko.as_deref())
        .collect();
    queue_callbacks(conn, &job.tenant_id, event_id, &urls).await?;
    Ok(())
}

async fn profile(core: &Core, job: &Job) -> Result<()> {
    let profile_id = job.payload["profileId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let settings = actito_settings::get(core, &job.tenant_id)
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
        for pass_id in passes::find_any(&mut tx, &job.tenant_id, &identifiers, None).await? {
            let patched = apply(&mut tx, &job.tenant_id, &pass_id, update).await?;
            applied.extend(live(&job.tenant_id, &patched, job.event_id.as_deref()));
        }
    }
    tx.commit().await?;
    drop(conn);
    core.db.publish_all(applied);
    Ok(())
}

async fn sfmc_execute(core: &Core, job: &Job) -> Result<()> {
    let mut conn = core.db.background().await?;
    let mut tx = conn.begin().await?;
    let applied = sfmc_execute_in(&mut tx, &mut PassTypes::default(), job).await?;
    tx.commit().await?;
    drop(conn);
    core.db.publish_all(applied);
    Ok(())
}

/// An SFMC push update in the caller's transaction; returns the live events to
/// publish after the commit. The event records that it was applied in the same
/// transaction, so a job run again (its outcome was lost to a crash or a database
/// outage after the commit) changes nothing the second time.
async fn sfmc_execute_in(
    tx: &mut AnyConnection,
    types: &mut PassTypes,
    job: &Job,
) -> Result<Vec<LiveEvent>> {
    if let Some(event_id) = &job.event_id {
        let marked = sqlx::query(
            "UPDATE inbound_events SET items_done = items WHERE id = $1 AND items_done < items",
        )
        .bind(event_id)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() == 0 {
            return Ok(Vec::new());
        }
    }
    let p = &job.payload;
    let pass_ids: Vec<String> = serde_json::from_value(p["passIds"].clone()).unwrap_or_default();
    let changes: Map<String, Value> = p["additionalData"].as_object().cloned().unwrap_or_default();
    let message = p["message"].as_str();
    let cause = Cause {
        source: "sfmc".into(),
        event_id: job.event_id.clone(),
        journey_id: p["journeyId"].as_str().map(str::to_string),
        actor: p["keyValue"].as_str().map(|k| format!("contact {k}")),
        ..Default::default()
    };
    let mut applied = Vec::new();
    for pass_id in &pass_ids {
        let update = Update {
            changes: &changes,
            cause: &cause,
            message,
        };
        match apply_with(tx, types, &job.tenant_id, pass_id, update).await {
            Ok(patched) => applied.extend(live(&job.tenant_id, &patched, job.event_id.as_deref())),
            Err(DomainError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(applied)
}

async fn callback(core: &Core, job: &Job) -> Ran {
    let delivery_id = job.payload["deliveryId"].as_str().unwrap_or_default();
    let url = job.payload["url"].as_str().unwrap_or_default();
    let hosts = match actito_settings::get(core, &job.tenant_id).await {
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
    let result = callbacks::post(&core.http, url, &hosts).await;
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
