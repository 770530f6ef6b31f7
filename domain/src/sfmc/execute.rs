//! The worker's part of an SFMC Journey Builder execute: the push update the
//! listener matched to passes (and stored with the event) is applied to them, once
//! however often the job runs.

use std::collections::HashSet;

use sqlx::{AnyConnection, Connection};

use crate::core::Core;
use crate::error::Result;
use crate::jobs::Job;
use crate::passes::apply::{self, Planned};
use crate::passes::Cause;
use crate::sql::{params, PER_STATEMENT};
use crate::tasks::{Failure, SfmcExecute};

/// Applies the push update in its own transaction.
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
