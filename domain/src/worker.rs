//! The worker loop: claims jobs, runs them side by side, renews their leases, and
//! records how each attempt ended. Started by `passhook serve`, stopped with it.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::core::Core;
use crate::db::Db;
use crate::error::Result;
use crate::ids::new_id;
use crate::jobs::{self, Job, Outcome};
use crate::live::LiveEvent;
use crate::processing::{self, Ran};
use crate::{deliveries, events};

/// How a worker claims jobs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// A claimed job belongs to its worker this long unless renewed; a crashed
    /// worker's jobs run again after it.
    pub lease_ms: i64,
    /// How often the worker looks for jobs when nobody signals new ones.
    pub poll: Duration,
    /// Jobs claimed and run side by side at once.
    pub batch: i64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            lease_ms: 60_000,
            poll: Duration::from_millis(500),
            batch: 32,
        }
    }
}

/// Runs until `shutdown`; jobs already started are finished first.
///
/// Up to `config.batch` jobs run side by side, and a slot that frees up is filled at
/// once: a job waiting on a slow outside service holds its own slot, not the worker.
pub async fn run(core: Core, config: WorkerConfig, shutdown: CancellationToken) {
    let worker = new_id("wrk");
    tracing::info!(%worker, "worker started");
    let finisher = Finisher::start(core.db.clone(), worker.clone());
    let mut running = JoinSet::new();
    let mut heartbeat = tokio::time::interval(Duration::from_millis(config.lease_ms as u64 / 3));
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.tick().await;
    let mut claim_now = true;
    while !shutdown.is_cancelled() {
        let room = config.batch - running.len() as i64;
        if claim_now && room > 0 {
            match jobs::claim(&core.db, &worker, &processing::KINDS, room, config.lease_ms).await {
                Ok(claimed) => {
                    // A full claim suggests more is waiting: claim again once a slot frees.
                    claim_now = claimed.len() as i64 == room;
                    for job in claimed {
                        let (core, finisher) = (core.clone(), finisher.clone());
                        running.spawn(async move { run_one(&core, &finisher, job).await });
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim jobs; retrying");
                    claim_now = false;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = running.join_next(), if !running.is_empty() => {
                // Reap whatever else ended meanwhile, then claim once for all of them.
                while running.try_join_next().is_some() {}
                claim_now = true;
            }
            _ = core.jobs_ready.notified() => claim_now = true,
            _ = tokio::time::sleep(config.poll) => claim_now = true,
            _ = heartbeat.tick(), if !running.is_empty() => renew(&core, &worker, &config).await,
        }
    }
    while !running.is_empty() {
        tokio::select! {
            _ = running.join_next() => {}
            _ = heartbeat.tick() => renew(&core, &worker, &config).await,
        }
    }
    tracing::info!(%worker, "worker stopped");
}

async fn renew(core: &Core, worker: &str, config: &WorkerConfig) {
    if let Err(e) = jobs::heartbeat(&core.db, worker, config.lease_ms).await {
        tracing::warn!(error = %e, "cannot renew job leases");
    }
}

async fn run_one(core: &Core, finisher: &Finisher, job: Job) {
    let started = now_ms();
    let ran = processing::run(core, &job).await;
    if let Outcome::Retry { error, .. } | Outcome::Fatal { error } = &ran.outcome {
        tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempt, %error, "job attempt failed");
    }
    let dead = match &ran.outcome {
        Outcome::Done => false,
        Outcome::Fatal { .. } => true,
        Outcome::Retry { .. } => job.attempt >= job.max_attempts,
    };
    let dead_job = dead.then(|| job.clone());
    match finisher.finish(job, started, ran).await {
        Some(true) => {}
        // The lease went to another worker, which now owns the job's fate.
        Some(false) => return,
        None => {
            tracing::error!(
                "cannot record a job's outcome; its lease will expire and it will run again"
            );
            return;
        }
    }
    if let Some(job) = dead_job {
        if let Err(e) = processing::on_dead(core, &job).await {
            tracing::error!(job = %job.id, error = %e, "cannot notify the failure of a dead job");
        }
    }
}

/// A job attempt that ended, on its way to the database.
struct Finished {
    job: Job,
    started_at: i64,
    ran: Ran,
    /// Whether the outcome was recorded (false: the lease was lost); `None` when the
    /// database refused the batch.
    reply: oneshot::Sender<Option<bool>>,
}

/// Group commit for job outcomes: a worker's finished attempts (the job's new state,
/// the attempt row, a delivery attempt, and the settling of events whose last job
/// this was) are written in one transaction per batch, whatever ended during the
/// previous commit, instead of two or three transactions per job.
#[derive(Clone)]
struct Finisher {
    sender: mpsc::Sender<Finished>,
}

/// Outcomes recorded per commit at most.
const FINISH_BATCH: usize = 128;

impl Finisher {
    fn start(db: Db, worker: String) -> Finisher {
        let (sender, receiver) = mpsc::channel(FINISH_BATCH);
        tokio::spawn(record_batches(db, worker, receiver));
        Finisher { sender }
    }

    async fn finish(&self, job: Job, started_at: i64, ran: Ran) -> Option<bool> {
        let (reply, answer) = oneshot::channel();
        let finished = Finished {
            job,
            started_at,
            ran,
            reply,
        };
        self.sender.send(finished).await.ok()?;
        answer.await.ok().flatten()
    }
}

async fn record_batches(db: Db, worker: String, mut receiver: mpsc::Receiver<Finished>) {
    let mut batch = Vec::with_capacity(FINISH_BATCH);
    while receiver.recv_many(&mut batch, FINISH_BATCH).await > 0 {
        match record(&db, &worker, &batch).await {
            Ok((recorded, live)) => {
                db.publish_all(live);
                for (finished, recorded) in batch.drain(..).zip(recorded) {
                    let _ = finished.reply.send(Some(recorded));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, jobs = batch.len(), "cannot record job outcomes");
                for finished in batch.drain(..) {
                    let _ = finished.reply.send(None);
                }
            }
        }
    }
}

async fn record(db: &Db, worker: &str, batch: &[Finished]) -> Result<(Vec<bool>, Vec<LiveEvent>)> {
    let mut conn = db.background().await?;
    let mut tx = conn.begin().await?;
    let mut live = Vec::new();
    let mut recorded = Vec::with_capacity(batch.len());
    for f in batch {
        // The call was made whatever became of the lease: its attempt is recorded.
        if let Some((delivery_id, attempt)) = &f.ran.delivery {
            live.extend(deliveries::record_attempt_in(&mut tx, delivery_id, attempt).await?);
        }
        recorded
            .push(jobs::finish_in(&mut tx, &f.job, worker, f.started_at, &f.ran.outcome).await?);
    }
    let settled: BTreeSet<&str> = batch
        .iter()
        .zip(&recorded)
        .filter(|(_, recorded)| **recorded)
        .filter_map(|(f, _)| f.job.event_id.as_deref())
        .collect();
    for event_id in settled {
        live.extend(events::settle_when_done_in(&mut tx, event_id).await?);
    }
    tx.commit().await?;
    Ok((recorded, live))
}
