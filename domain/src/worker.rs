//! The worker loop: claims jobs, runs them side by side, renews their leases, and
//! records how each attempt ended. Started by `passhook serve`, stopped with it.

use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::core::Core;
use crate::events;
use crate::ids::new_id;
use crate::jobs::{self, Job, Outcome};
use crate::processing;

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
pub async fn run(core: Core, config: WorkerConfig, shutdown: CancellationToken) {
    let worker = new_id("wrk");
    tracing::info!(%worker, "worker started");
    while !shutdown.is_cancelled() {
        let claimed = match jobs::claim(
            &core.db,
            &worker,
            &processing::KINDS,
            config.batch,
            config.lease_ms,
        )
        .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "cannot claim jobs; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if claimed.is_empty() {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = core.jobs_ready.notified() => {}
                _ = tokio::time::sleep(config.poll) => {}
            }
            continue;
        }
        run_batch(&core, &worker, &config, claimed).await;
    }
    tracing::info!(%worker, "worker stopped");
}

async fn run_batch(core: &Core, worker: &str, config: &WorkerConfig, claimed: Vec<Job>) {
    let mut running = JoinSet::new();
    for job in claimed {
        let (core, worker) = (core.clone(), worker.to_string());
        running.spawn(async move { run_one(&core, &worker, job).await });
    }
    let mut heartbeat = tokio::time::interval(Duration::from_millis(config.lease_ms as u64 / 3));
    heartbeat.tick().await;
    loop {
        tokio::select! {
            next = running.join_next() => if next.is_none() { break },
            _ = heartbeat.tick() => {
                if let Err(e) = jobs::heartbeat(&core.db, worker, config.lease_ms).await {
                    tracing::warn!(error = %e, "cannot renew job leases");
                }
            }
        }
    }
}

async fn run_one(core: &Core, worker: &str, job: Job) {
    let started = now_ms();
    let outcome = processing::run(core, &job).await;
    if let Outcome::Retry { error, .. } | Outcome::Fatal { error } = &outcome {
        tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempt, %error, "job attempt failed");
    }
    if let Err(e) = jobs::finish(&core.db, &job, worker, started, &outcome).await {
        tracing::error!(job = %job.id, error = %e, "cannot record the job's outcome; its lease will expire and it will run again");
        return;
    }
    let dead = match &outcome {
        Outcome::Done => false,
        Outcome::Fatal { .. } => true,
        Outcome::Retry { .. } => job.attempt >= job.max_attempts,
    };
    if dead {
        if let Err(e) = processing::on_dead(core, &job).await {
            tracing::error!(job = %job.id, error = %e, "cannot notify the failure of a dead job");
        }
    }
    if let Some(event_id) = &job.event_id {
        if let Err(e) = events::settle_when_done(&core.db, event_id).await {
            tracing::warn!(event = %event_id, error = %e, "cannot settle the event");
        }
    }
}
