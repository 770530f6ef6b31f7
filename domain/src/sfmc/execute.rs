//! The life of an SFMC Journey Builder execute: once its JWT is verified, the
//! listener reads the push update from the inArguments, finds its passes and stores
//! the call with its job, answering with what it scheduled ([`accept`]); a worker
//! applies the update to those passes, once however often the job runs ([`run`]).

use std::collections::HashSet;

use serde_json::{json, Value};
use sqlx::{AnyConnection, Connection};

use super::activity::{self, JourneyContext, PushUpdate};
use super::settings::{self, WhenNoPass};
use crate::core::Core;
use crate::crypto::sha256_hex;
use crate::error::{DomainError, FieldError, Result};
use crate::events::{self, Inbound, Ingested};
use crate::jobs::Job;
use crate::passes::apply::{self, Planned};
use crate::passes::{self, Cause};
use crate::sql::{params, PER_STATEMENT};
use crate::tasks::{Failure, SfmcExecute, Task};

/// A verified execute call.
pub struct Call<'a> {
    pub tenant_id: &'a str,
    /// The signing key that verified it.
    pub key_id: &'a str,
    pub claims: &'a Value,
    pub token: &'a str,
    pub journey: &'a JourneyContext,
    /// The request's headers as the audit keeps them.
    pub headers: Value,
}

/// Why an execute scheduled nothing and is refused.
pub enum Refusal {
    /// The inArguments cannot be read.
    Unreadable(String),
    /// Some inArguments are invalid.
    Invalid(Vec<FieldError>),
    /// No pass matches, and the tenant chose to have Salesforce take the contact out
    /// of the journey.
    NoPass,
    Store(DomainError),
}

impl From<DomainError> for Refusal {
    fn from(error: DomainError) -> Self {
        Refusal::Store(error)
    }
}

pub const NO_PASS: &str = "No pass matches the given pass id or identifiers.";

/// The listener's part; the answer to send Journey Builder. A call seen before (its
/// `jti`, else its token) gets the first answer and schedules nothing.
pub async fn accept(core: &Core, call: Call<'_>) -> std::result::Result<Value, Refusal> {
    let args = activity::merged_arguments(call.claims).map_err(Refusal::Unreadable)?;
    let update = activity::push_update(&args).map_err(Refusal::Invalid)?;
    let dedupe_key = call
        .claims
        .get("jti")
        .and_then(Value::as_str)
        .map_or_else(|| sha256_hex(call.token), |jti| format!("jti:{jti}"));
    if let Some((_, Some(first))) =
        events::find_duplicate(&core.db, call.tenant_id, "sfmc", &dedupe_key).await?
    {
        return Ok(first);
    }
    let targets = targets(core, call.tenant_id, &update).await?;
    if targets.is_empty() {
        return no_pass(core, call, dedupe_key).await;
    }
    let answer = json!({ "scheduled": targets.len(), "passIds": targets });
    let job = Task::SfmcExecute(SfmcExecute {
        additional_data: update.additional_data,
        message: update.message,
        journey_id: call.journey.journey_id.clone(),
        activity_id: call.journey.activity_id.clone(),
        definition_instance_id: call.journey.definition_instance_id.clone(),
        key_value: call.journey.key_value.clone(),
        pass_ids: targets,
    })
    .job(call.tenant_id);
    let items = answer["scheduled"].as_i64().unwrap_or_default();
    let record = inbound(call, Some(dedupe_key), items);
    match core
        .ingestor
        .ingest(record, Some(answer.clone()), vec![job])
        .await?
    {
        Ingested::New { .. } => {
            core.jobs_ready.notify_one();
            Ok(answer)
        }
        Ingested::Duplicate { response, .. } => Ok(response.unwrap_or(answer)),
    }
}

/// The event an execute is stored as: the claims, not the token (readable, and not
/// a credential to replay).
fn inbound(call: Call<'_>, dedupe_key: Option<String>, items: i64) -> Inbound {
    Inbound {
        replay_of: None,
        tenant_id: call.tenant_id.to_string(),
        source: "sfmc",
        kind: "pushupdate.execute".into(),
        headers: call.headers,
        body: call.claims.to_string(),
        dedupe_key,
        key_id: Some(call.key_id.to_string()),
        journey: call.journey.clone(),
        items,
    }
}

/// The pass `passId`, else every pass matching any identifier; `passType` restricts.
async fn targets(core: &Core, tenant_id: &str, update: &PushUpdate) -> Result<Vec<String>> {
    let mut conn = core.db.reader().acquire().await?;
    let pass_type = update.pass_type.as_deref();
    Ok(match &update.pass_id {
        Some(id) => passes::find_by_id(&mut conn, tenant_id, id, pass_type)
            .await?
            .into_iter()
            .collect(),
        None => passes::find_any(&mut conn, tenant_id, &update.identifiers, pass_type).await?,
    })
}

/// An execute that matched no pass, answered as the tenant chose: refused (404:
/// Salesforce takes the contact out of the journey) or 200 with nothing scheduled (it
/// goes on). The audit shows `NO_MATCHING_PASS` either way.
async fn no_pass(
    core: &Core,
    call: Call<'_>,
    dedupe_key: String,
) -> std::result::Result<Value, Refusal> {
    if settings::when_no_pass(&core.db, call.tenant_id).await? == WhenNoPass::Leave {
        return Err(Refusal::NoPass);
    }
    let answer = json!({ "scheduled": 0, "passIds": [] });
    let record = inbound(call, Some(dedupe_key), 0);
    let event_id = match core
        .ingestor
        .ingest(record, Some(answer.clone()), vec![])
        .await?
    {
        Ingested::New { event_id } => event_id,
        Ingested::Duplicate { response, .. } => return Ok(response.unwrap_or(answer)),
    };
    let noted = events::note_reason(&core.db, &event_id, "NO_MATCHING_PASS", NO_PASS).await;
    if let Err(e) = noted.and(events::settle(&core.db, &event_id, None).await) {
        tracing::warn!(error = %e, "cannot settle an execute that matched no pass");
    }
    Ok(answer)
}

/// The worker's part: applies the push update in its own transaction.
pub async fn run(core: &Core, job: &Job, task: &SfmcExecute) -> std::result::Result<(), Failure> {
    let mut conn = core.db.background().await?;
    let mut tx = conn.begin().await?;
    let events: Vec<&str> = job.event_id.iter().map(String::as_str).collect();
    let unapplied = mark_applied(&mut tx, &events).await?;
    let planned = if job.event_id.as_ref().is_none_or(|e| unapplied.contains(e)) {
        plan(job, task)
    } else {
        Vec::new()
    };
    let live = apply::apply_planned(&mut tx, &job.tenant_id, &planned).await?;
    tx.commit().await?;
    drop(conn);
    core.db.publish_all(live);
    Ok(())
}

/// The push update of each of its passes (those gone by now are skipped).
pub fn plan(job: &Job, task: &SfmcExecute) -> Vec<Planned> {
    let cause = Cause {
        source: "sfmc".into(),
        event_id: job.event_id.clone(),
        journey_id: task.journey_id.clone(),
        actor: task.key_value.as_ref().map(|k| format!("contact {k}")),
        ..Default::default()
    };
    task.pass_ids
        .iter()
        .map(|pass_id| Planned {
            pass_id: pass_id.clone(),
            changes: task.additional_data.clone(),
            cause: cause.clone(),
            message: task.message.clone(),
        })
        .collect()
}

/// Marks SFMC events applied in the caller's transaction; returns those that were
/// not yet. A job run again (its outcome lost to a crash or a database outage after
/// the commit) then changes nothing the second time.
pub async fn mark_applied(conn: &mut AnyConnection, event_ids: &[&str]) -> Result<HashSet<String>> {
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
