//! The durable job queue: jobs live in the database, are claimed with a lease, retried
//! with exponential backoff and jitter, and dead-lettered after their last attempt.
//!
//! Jobs that share an `ordering_key` run one at a time, in the order they were
//! enqueued. On PostgreSQL, claims use `FOR UPDATE SKIP LOCKED`, so several
//! processes never run the same job at once; on SQLite the single writer does that.

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AnyConnection, Connection};

use crate::clock::now_ms;
use crate::db::{Backend, Db};
use crate::error::{DomainError, Result};
use crate::ids::new_id;

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const DEAD: &str = "dead";

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub tenant_id: String,
    pub kind: &'static str,
    pub payload: Value,
    pub ordering_key: Option<String>,
    pub event_id: Option<String>,
    pub max_attempts: i64,
    /// Run no sooner than this long after enqueueing.
    pub delay_ms: i64,
}

impl NewJob {
    pub fn new(tenant_id: &str, kind: &'static str, payload: Value) -> Self {
        NewJob {
            tenant_id: tenant_id.to_string(),
            kind,
            payload,
            ordering_key: None,
            event_id: None,
            max_attempts: 8,
            delay_ms: 0,
        }
    }

    pub fn delayed(mut self, ms: i64) -> Self {
        self.delay_ms = ms;
        self
    }

    pub fn ordered_by(mut self, key: String) -> Self {
        self.ordering_key = Some(key);
        self
    }

    pub fn for_event(mut self, event_id: &str) -> Self {
        self.event_id = Some(event_id.to_string());
        self
    }

    pub fn attempts(mut self, max: i64) -> Self {
        self.max_attempts = max;
        self
    }
}

/// A claimed job, leased to one worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Job {
    pub seq: i64,
    pub id: String,
    pub tenant_id: String,
    pub kind: String,
    pub payload: Value,
    /// This attempt's number, from 1.
    pub attempt: i64,
    pub max_attempts: i64,
    pub event_id: Option<String>,
}

const INSERT_COLUMNS: &str = "(id, tenant_id, kind, payload, ordering_key, event_id, status, \
     attempts, max_attempts, run_at, created_at, updated_at)";
const ROWS_PER_INSERT: usize = 200;

/// Enqueues jobs inside the caller's transaction, many rows per statement.
pub async fn enqueue(conn: &mut AnyConnection, jobs: &[NewJob]) -> Result<Vec<String>> {
    let now = now_ms();
    let mut ids = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(ROWS_PER_INSERT) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|r| {
                let b = r * 9;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, '{QUEUED}', 0, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 9
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO jobs {INSERT_COLUMNS} VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for job in chunk {
            let id = new_id("job");
            query = query
                .bind(id.clone())
                .bind(job.tenant_id.clone())
                .bind(job.kind)
                .bind(job.payload.to_string())
                .bind(job.ordering_key.clone())
                .bind(job.event_id.clone())
                .bind(job.max_attempts)
                .bind(now + job.delay_ms)
                .bind(now);
            ids.push(id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(ids)
}

/// Claims up to `limit` runnable jobs of these kinds for `worker` until `now + lease_ms`.
/// A job whose lease ran out (its worker died) is runnable again.
pub async fn claim(
    db: &Db,
    worker: &str,
    kinds: &[&str],
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<Job>> {
    let now = now_ms();
    let kinds_sql = (0..kinds.len())
        .map(|i| format!("${}", i + 5))
        .collect::<Vec<_>>()
        .join(", ");
    let lock = match db.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE jobs SET status = '{RUNNING}', locked_by = $1, locked_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE seq IN (SELECT j.seq FROM jobs j \
           WHERE j.kind IN ({kinds_sql}) \
           AND ((j.status = '{QUEUED}' AND j.run_at <= $3) OR (j.status = '{RUNNING}' AND j.locked_until < $3)) \
           AND (j.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs o \
               WHERE o.ordering_key = j.ordering_key AND o.seq < j.seq \
               AND o.status IN ('{QUEUED}', '{RUNNING}'))) \
           ORDER BY j.seq LIMIT $4 {lock}) \
         RETURNING seq, id, tenant_id, kind, payload, attempts, max_attempts, event_id"
    );
    let mut query = sqlx::query_as::<
        _,
        (
            i64,
            String,
            String,
            String,
            String,
            i64,
            i64,
            Option<String>,
        ),
    >(&sql)
    .bind(worker)
    .bind(now + lease_ms)
    .bind(now)
    .bind(limit);
    for kind in kinds {
        query = query.bind(*kind);
    }
    let mut jobs = query
        .fetch_all(&mut *db.background().await?)
        .await?
        .into_iter()
        .map(
            |(seq, id, tenant_id, kind, payload, attempt, max_attempts, event_id)| Job {
                seq,
                id,
                tenant_id,
                kind,
                payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
                attempt,
                max_attempts,
                event_id,
            },
        )
        .collect::<Vec<_>>();
    jobs.sort_by_key(|j| j.seq);
    Ok(jobs)
}

/// Extends the leases of jobs this worker still runs.
pub async fn heartbeat(db: &Db, worker: &str, lease_ms: i64) -> Result<()> {
    sqlx::query("UPDATE jobs SET locked_until = $1 WHERE locked_by = $2 AND status = $3")
        .bind(now_ms() + lease_ms)
        .bind(worker)
        .bind(RUNNING)
        .execute(&mut *db.background().await?)
        .await?;
    Ok(())
}

/// How a job attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Done,
    /// Failed; retry no sooner than `retry_after_ms` (else the backoff decides).
    Retry {
        error: String,
        retry_after_ms: Option<i64>,
    },
    /// Failed in a way retrying cannot fix.
    Fatal {
        error: String,
    },
}

/// Backoff before attempt `attempt + 1`: 2 s doubling per attempt, at most 10 min,
/// with ±20 % jitter so retries from a burst do not arrive together.
pub fn backoff_ms(attempt: i64) -> i64 {
    let base = 2_000i64
        .saturating_mul(1 << (attempt - 1).clamp(0, 20))
        .min(600_000);
    let jitter = rand::thread_rng().gen_range(-0.2..=0.2);
    base + (base as f64 * jitter) as i64
}

/// Records the attempt and moves the job on: done, queued again, or dead.
/// Does nothing if the lease was lost to another worker meanwhile.
pub async fn finish(
    db: &Db,
    job: &Job,
    worker: &str,
    started_at: i64,
    outcome: &Outcome,
) -> Result<()> {
    let mut conn = db.background().await?;
    let mut tx = conn.begin().await?;
    if finish_in(&mut tx, job, worker, started_at, outcome)
        .await?
        .is_some()
    {
        tx.commit().await?;
    }
    Ok(())
}

/// [`finish`] inside the caller's transaction, so what else the end of a job implies
/// (settling its event, notifying a failure) commits with it. Returns the job's new
/// status, or `None` when the lease was lost (nothing was written).
pub async fn finish_in(
    conn: &mut AnyConnection,
    job: &Job,
    worker: &str,
    started_at: i64,
    outcome: &Outcome,
) -> Result<Option<&'static str>> {
    let now = now_ms();
    let (status, run_at, error) = match outcome {
        Outcome::Done => (DONE, now, None),
        Outcome::Fatal { error } => (DEAD, now, Some(error.as_str())),
        Outcome::Retry { error, .. } if job.attempt >= job.max_attempts => {
            (DEAD, now, Some(error.as_str()))
        }
        Outcome::Retry {
            error,
            retry_after_ms,
        } => {
            let wait = retry_after_ms.unwrap_or_else(|| backoff_ms(job.attempt));
            (QUEUED, now + wait.max(0), Some(error.as_str()))
        }
    };
    let moved = sqlx::query(
        "UPDATE jobs SET status = $1, run_at = $2, last_error = $3, locked_by = NULL, \
         locked_until = NULL, updated_at = $4 WHERE id = $5 AND locked_by = $6",
    )
    .bind(status)
    .bind(run_at)
    .bind(error)
    .bind(now)
    .bind(&job.id)
    .bind(worker)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() == 0 {
        tracing::warn!(job = %job.id, "lease lost before the job finished; leaving it to its new owner");
        return Ok(None);
    }
    sqlx::query(
        "INSERT INTO job_attempts (id, job_id, tenant_id, attempt, worker, started_at, finished_at, outcome, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id("att"))
    .bind(&job.id)
    .bind(&job.tenant_id)
    .bind(job.attempt)
    .bind(worker)
    .bind(started_at)
    .bind(now)
    .bind(status)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(Some(status))
}

/// Puts a dead job back in the queue for a fresh set of attempts.
pub async fn retry_dead(db: &Db, tenant_id: &str, job_id: &str) -> Result<()> {
    let done = sqlx::query(
        "UPDATE jobs SET status = $1, attempts = 0, run_at = $2, updated_at = $2 \
         WHERE id = $3 AND tenant_id = $4 AND status = $5",
    )
    .bind(QUEUED)
    .bind(now_ms())
    .bind(job_id)
    .bind(tenant_id)
    .bind(DEAD)
    .execute(db.writer())
    .await?;
    match done.rows_affected() {
        0 => Err(DomainError::NotFound("dead job")),
        _ => Ok(()),
    }
}

/// Counts by status, for tests and the console.
pub async fn counts(db: &Db, tenant_id: &str) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT status, COUNT(*) FROM jobs WHERE tenant_id = $1 GROUP BY status ORDER BY status",
    )
    .bind(tenant_id)
    .fetch_all(db.reader())
    .await?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 1..30 {
            let expected = (2_000i64 << (attempt - 1).min(20)).min(600_000) as f64;
            let got = super::backoff_ms(attempt) as f64;
            assert!(
                got >= expected * 0.79 && got <= expected * 1.21,
                "{attempt}: {got}"
            );
        }
    }
}
