//! The workers' dispatcher: each claimed job's [`Task`] goes to the flow that owns
//! it, and a run of one tenant's pass updates (custom actions and SFMC pushes, in the
//! order received) is applied in few transactions.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, Connection};

use crate::actito::{callbacks, custom_action, profile};
use crate::core::Core;
use crate::db::Db;
use crate::error::Result;
use crate::jobs::{Job, Outcome};
use crate::passes::apply;
use crate::sfmc::execute;
use crate::tasks::{Failure, Kind, Task};
use crate::wallet::delivery;
use crate::worker::{Handler, Ran};

/// The product's flows, as the workers' [`Handler`].
pub struct Flows;

/// Every kind this release runs.
const KINDS: [&str; 5] = [
    Kind::CustomAction.as_str(),
    Kind::Profile.as_str(),
    Kind::SfmcExecute.as_str(),
    Kind::ActitoCallback.as_str(),
    Kind::WalletRefresh.as_str(),
];

/// The kinds whose jobs of one ordering key run as one run (see [`run_in_order`]).
const RUN_KINDS: [&str; 2] = [Kind::CustomAction.as_str(), Kind::SfmcExecute.as_str()];

impl Handler for Flows {
    fn kinds(&self) -> &[&'static str] {
        &KINDS
    }

    fn run_kinds(&self) -> &[&'static str] {
        &RUN_KINDS
    }

    fn run(&self, core: Core, run: Vec<Job>) -> BoxFuture<'static, Vec<Ran>> {
        Box::pin(async move { run_in_order(&core, &run).await })
    }

    fn on_dead<'a>(
        &'a self,
        db: &'a Db,
        conn: &'a mut AnyConnection,
        job: &'a Job,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match Task::read(&job.kind, &job.payload) {
                Ok(Task::CustomAction(_)) => custom_action::on_dead(db, conn, job).await,
                _ => Ok(()),
            }
        })
    }
}

/// Runs one job by its flow.
pub async fn run(core: &Core, job: &Job) -> Ran {
    let task = match Task::read(&job.kind, &job.payload) {
        Ok(task) => task,
        Err(e) => return outcome(Err(Failure::Fatal(e.to_string()))).into(),
    };
    let result = match &task {
        Task::CustomAction(_) => custom_action::run(core, job).await,
        Task::Profile(t) => profile::run(core, job, t).await,
        Task::SfmcExecute(t) => execute::run(core, job, t).await,
        Task::ActitoCallback(t) => return callbacks::run(core, job, t).await,
        Task::WalletRefresh(t) => return delivery::run(core, job, t).await.into(),
    };
    outcome(result).into()
}

/// The queue's outcome of a flow's result.
fn outcome(result: std::result::Result<(), Failure>) -> Outcome {
    match result {
        Ok(()) => Outcome::Done,
        Err(Failure::Fatal(error)) => Outcome::Fatal { error },
        Err(Failure::Retry { after, why }) => Outcome::Retry {
            error: why,
            retry_after_ms: after.map(|d| d.as_millis().min(i64::MAX as u128) as i64),
        },
    }
}

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

/// One job's part of a run.
enum Work<'a> {
    Action(custom_action::Action<'a>),
    Push(&'a Job, crate::tasks::SfmcExecute),
}

/// Applies every job of the run in one transaction, in order; `false` (nothing
/// written) when they hold more items than one transaction should (it holds the
/// SQLite writer) or one is not of a kind that can.
async fn together(core: &Core, jobs: &[Job]) -> Result<bool> {
    let mut tasks = Vec::with_capacity(jobs.len());
    for job in jobs {
        match Task::read(&job.kind, &job.payload) {
            Ok(task) if task.kind().runs_together() => tasks.push(task),
            _ => return Ok(false),
        }
    }
    let mut pending = HashMap::new();
    let mut items = 0;
    for (job, task) in jobs.iter().zip(&tasks) {
        if let Task::CustomAction(_) = task {
            let action = custom_action::pending(core, job).await?;
            items += action.items.len();
            if items > custom_action::BATCH {
                return Ok(false);
            }
            pending.insert(job.id.as_str(), action);
        }
    }
    // One tenant's run (its ordering key): one mapping, updates applied in order.
    let tenant_id = &jobs[0].tenant_id;
    let mapping = if pending.is_empty() {
        Vec::new()
    } else {
        custom_action::identifier_mapping(core, tenant_id).await?
    };
    let work: Vec<Work> = jobs
        .iter()
        .zip(tasks)
        .map(|(job, task)| match (pending.get(job.id.as_str()), task) {
            (Some(p), _) => Work::Action(custom_action::Action {
                event_id: &p.event_id,
                done: p.done,
                items: &p.items,
            }),
            (None, Task::SfmcExecute(t)) => Work::Push(job, t),
            (None, other) => unreachable!("only runs_together kinds: {other:?}"),
        })
        .collect();
    let mut conn = core.db.background().await?;
    let mut tx = conn.begin().await?;
    let live = apply_together(&mut tx, tenant_id, &mapping, &work).await?;
    tx.commit().await?;
    drop(conn);
    core.db.publish_all(live);
    Ok(true)
}

/// Plans each job's updates through its flow, then applies them all, in the run's
/// order, in the caller's transaction; returns the live events to publish.
async fn apply_together(
    tx: &mut AnyConnection,
    tenant_id: &str,
    mapping: &[(String, String)],
    work: &[Work<'_>],
) -> Result<Vec<crate::live::LiveEvent>> {
    let events: Vec<&str> = work
        .iter()
        .filter_map(|w| match w {
            Work::Push(job, _) => job.event_id.as_deref(),
            Work::Action(_) => None,
        })
        .collect();
    let unapplied = execute::mark_applied(tx, &events).await?;
    let actions: Vec<custom_action::Action> = work
        .iter()
        .filter_map(|w| match w {
            Work::Action(a) => Some(*a),
            Work::Push(..) => None,
        })
        .collect();
    let mut action_plans = custom_action::plan(tx, tenant_id, mapping, &actions)
        .await?
        .into_iter();
    let mut planned = Vec::new();
    for w in work {
        match w {
            Work::Action(_) => planned.extend(action_plans.next().expect("a plan per action")),
            Work::Push(job, task) => {
                if job
                    .event_id
                    .as_deref()
                    .is_none_or(|e| unapplied.contains(e))
                {
                    planned.extend(execute::plan(job, task));
                }
            }
        }
    }
    apply::apply_planned(tx, tenant_id, &planned).await
}
