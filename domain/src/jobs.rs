//! The durable job queue: jobs live in the database, are claimed with a lease, retried
//! with exponential backoff and jitter, and dead-lettered after their last attempt.
//!
//! Jobs that share an `ordering_key` run in the order they were enqueued: only a
//! key's first pending job is `queued`, the ones behind it are `waiting` and move up
//! when it ends, so a claim never scans a backlog it could not take anyway. A worker
//! may take a key's first job together with the waiting ones right behind it (a
//! run), and runs them one after another. A claim first ranks the runnable jobs per
//! tenant (each tenant within its share of the worker's places), then takes the
//! chosen ones with an update that checks each row again: on PostgreSQL an update
//! that waited for another replica's claim re-reads the row, so two replicas never
//! take one job (and the check that no earlier job of the key is pending keeps the
//! order when two replicas enqueue for one key at the same moment); on SQLite the
//! single writer does that.

use std::collections::{BTreeSet, HashMap, HashSet};

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{AnyConnection, Connection};

use crate::clock::now_ms;
use crate::db::{Backend, Db};
use crate::error::{DomainError, Result};
use crate::ids::new_id;
use crate::sql::{self, params, PER_STATEMENT};

/// Where a job stands: the `status` column of `jobs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Dead,
    /// Behind an earlier pending job of the same ordering key.
    Waiting,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Dead,
        JobStatus::Waiting,
    ];
    /// Not finished yet.
    pub const PENDING: [JobStatus; 3] = [JobStatus::Queued, JobStatus::Running, JobStatus::Waiting];

    pub const fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Dead => "dead",
            JobStatus::Waiting => "waiting",
        }
    }
}

impl TryFrom<&str> for JobStatus {
    type Error = DomainError;

    fn try_from(text: &str) -> Result<Self> {
        JobStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| DomainError::Internal(format!("unknown job status {text:?}")))
    }
}

// The statuses as this module's SQL spells them.
const QUEUED: &str = JobStatus::Queued.as_str();
const RUNNING: &str = JobStatus::Running.as_str();
const DEAD: &str = JobStatus::Dead.as_str();
const WAITING: &str = JobStatus::Waiting.as_str();
/// Statuses of jobs not finished yet.
pub(crate) const PENDING_SQL: &str = "('queued', 'running', 'waiting')";

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
    /// A job of any kind: the product's jobs come from [`crate::tasks::Task::job`].
    pub(crate) fn new(tenant_id: &str, kind: &'static str, payload: Value) -> Self {
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

    /// A job of a kind only a test's handler knows (the queue's own tests).
    #[cfg(feature = "testing")]
    pub fn raw(tenant_id: &str, kind: &'static str, payload: Value) -> Self {
        NewJob::new(tenant_id, kind, payload)
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
    #[serde(default)]
    pub ordering_key: Option<String>,
}

const INSERT_COLUMNS: &str = "(id, tenant_id, kind, payload, ordering_key, event_id, status, \
     attempts, max_attempts, run_at, created_at, updated_at)";

/// Enqueues jobs inside the caller's transaction, many rows per statement. A job
/// behind a pending job of its ordering key (already stored, or earlier in `jobs`)
/// starts out `waiting`.
pub async fn enqueue(conn: &mut AnyConnection, jobs: &[NewJob]) -> Result<Vec<String>> {
    let now = now_ms();
    let mut taken = pending_keys(conn, jobs).await?;
    let statuses: Vec<&str> = jobs
        .iter()
        .map(|job| match &job.ordering_key {
            Some(key) if !taken.insert(key.as_str()) => WAITING,
            _ => QUEUED,
        })
        .collect();
    let mut ids = Vec::with_capacity(jobs.len());
    for (chunk, statuses) in jobs
        .chunks(PER_STATEMENT)
        .zip(statuses.chunks(PER_STATEMENT))
    {
        let mut marks = sql::Marks::new(conn);
        let rows: Vec<String> = (0..chunk.len())
            .map(|_| format!("({}, 0, {})", marks.list(7), marks.list(4)))
            .collect();
        let sql = format!(
            "INSERT INTO jobs {INSERT_COLUMNS} VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (job, status) in chunk.iter().zip(statuses) {
            let id = new_id("job");
            query = query
                .bind(id.clone())
                .bind(job.tenant_id.clone())
                .bind(job.kind)
                .bind(job.payload.to_string())
                .bind(job.ordering_key.clone())
                .bind(job.event_id.clone())
                .bind(*status)
                .bind(job.max_attempts)
                .bind(now + job.delay_ms)
                .bind(now)
                .bind(now);
            ids.push(id);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(ids)
}

/// The ordering keys of `jobs` that already have a pending job.
async fn pending_keys<'a>(
    conn: &mut AnyConnection,
    jobs: &'a [NewJob],
) -> Result<HashSet<&'a str>> {
    let keys: BTreeSet<&str> = jobs
        .iter()
        .filter_map(|j| j.ordering_key.as_deref())
        .collect();
    let keys: Vec<&str> = keys.into_iter().collect();
    pending_among(conn, &keys).await
}

/// Those of `keys` (distinct ordering keys) that have a pending job.
pub(crate) async fn pending_among<'a>(
    conn: &mut AnyConnection,
    keys: &[&'a str],
) -> Result<HashSet<&'a str>> {
    let mut taken = HashSet::new();
    for chunk in keys.chunks(PER_STATEMENT) {
        // One EXISTS per key: it stops at the key's first pending job, however
        // many wait behind it.
        let mut marks = sql::Marks::new(conn);
        let sql = chunk
            .iter()
            .map(|_| {
                format!(
                    "SELECT CAST({} AS TEXT) WHERE EXISTS (SELECT 1 FROM jobs \
                     WHERE ordering_key = {} AND status IN {PENDING_SQL})",
                    marks.next(),
                    marks.next()
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for key in chunk {
            query = query.bind(*key).bind(*key);
        }
        let found = query.fetch_all(&mut *conn).await?;
        taken.extend(
            chunk
                .iter()
                .copied()
                .filter(|key| found.iter().any(|(f,)| f == key)),
        );
    }
    Ok(taken)
}

/// Claims up to `limit` runnable jobs of these kinds for `worker` until `now + lease_ms`,
/// one at a time (no runs, no shares): the queue's own tests. A job whose lease ran
/// out (its worker died) is runnable again.
#[cfg(feature = "testing")]
pub async fn claim(
    db: &Db,
    worker: &str,
    kinds: &[&str],
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<Job>> {
    let runs = claim_runs(db, worker, kinds, &Runs::none(), limit, lease_ms).await?;
    Ok(runs.into_iter().flatten().collect())
}

/// Which claimed jobs take the waiting jobs right behind them along.
pub struct Runs<'a> {
    /// Kinds that may form a run (each job of a run is one of them).
    pub kinds: &'a [&'a str],
    /// Jobs per run at most, the first included.
    pub max: usize,
}

impl Runs<'_> {
    pub fn none() -> Self {
        Runs { kinds: &[], max: 1 }
    }
}

/// How a worker's places are shared between tenants: a tenant never holds more than
/// `per_tenant` of them, so that one tenant's slow jobs (callbacks to a host that
/// hangs until the timeout) leave places for the others. Jobs of the `exempt` kinds
/// don't count: they are ordered per tenant (at most one run of them per tenant at a
/// time), and a tenant's own pass updates must not wait for its slow callbacks.
pub struct Shares<'a> {
    pub per_tenant: usize,
    pub exempt: &'a [&'a str],
    /// The places each tenant holds already (runs in progress, exempt kinds aside).
    pub busy: &'a HashMap<String, usize>,
}

impl Shares<'_> {
    /// No tenant is limited (besides the claim's own limit).
    pub fn unlimited() -> Shares<'static> {
        static NONE: std::sync::OnceLock<HashMap<String, usize>> = std::sync::OnceLock::new();
        Shares {
            per_tenant: usize::MAX,
            exempt: &[],
            busy: NONE.get_or_init(HashMap::new),
        }
    }

    /// The places `tenant` may still take.
    fn room(&self, tenant: &str) -> usize {
        self.per_tenant
            .saturating_sub(self.busy.get(tenant).copied().unwrap_or(0))
    }
}

/// [`claim`], where a claimed job of one of `runs.kinds` comes with the waiting jobs
/// of its ordering key right behind it that are of those kinds too, as one run, in
/// order. Returns the runs (most of one job) in the order of their first jobs.
pub async fn claim_runs(
    db: &Db,
    worker: &str,
    kinds: &[&str],
    runs: &Runs<'_>,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<Vec<Job>>> {
    claim_shared(
        db,
        worker,
        kinds,
        runs,
        &Shares::unlimited(),
        limit,
        lease_ms,
    )
    .await
}

/// [`claim_runs`], where each tenant takes at most its room in `shares` (a run takes
/// one place).
pub async fn claim_shared(
    db: &Db,
    worker: &str,
    kinds: &[&str],
    runs: &Runs<'_>,
    shares: &Shares<'_>,
    limit: i64,
    lease_ms: i64,
) -> Result<Vec<Vec<Job>>> {
    let now = now_ms();
    let lease = Lease {
        worker,
        until: now.saturating_add(lease_ms),
        now,
    };
    let mut conn = db.background().await?;
    let mut tx = conn.begin().await?;
    let heads = claim_heads(&mut tx, db.backend(), &lease, kinds, shares, limit).await?;
    let mut claimed = Vec::with_capacity(heads.len());
    for head in heads {
        let followers = match &head.ordering_key {
            Some(key) if runs.max > 1 && runs.kinds.contains(&head.kind.as_str()) => {
                claim_followers(&mut tx, db.backend(), &lease, key, head.seq, runs).await?
            }
            _ => Vec::new(),
        };
        let mut run = vec![head];
        run.extend(followers);
        claimed.push(run);
    }
    tx.commit().await?;
    Ok(claimed)
}

/// On SQLite (one process by design) the jobs still marked running at start-up were
/// left by a previous process that stopped without finishing them: they are runnable
/// at once, instead of after their lease (which would hold their tenant's ordered
/// jobs behind them). Returns how many.
pub async fn take_over_at_start(db: &Db) -> Result<u64> {
    if db.backend() != Backend::Sqlite {
        return Ok(0);
    }
    let taken = sqlx::query(&format!(
        "UPDATE jobs SET locked_until = 0 WHERE status = '{RUNNING}' AND locked_until > 0"
    ))
    .execute(&mut *db.background().await?)
    .await?;
    Ok(taken.rows_affected())
}

/// Who claims, until when, as of when.
struct Lease<'a> {
    worker: &'a str,
    until: i64,
    now: i64,
}

const JOB_COLUMNS: &str =
    "seq, id, tenant_id, kind, payload, attempts, max_attempts, event_id, ordering_key";
#[derive(sqlx::FromRow)]
struct JobRow {
    seq: i64,
    id: String,
    tenant_id: String,
    kind: String,
    payload: String,
    attempts: i64,
    max_attempts: i64,
    event_id: Option<String>,
    ordering_key: Option<String>,
}

fn job_from(row: JobRow) -> Job {
    Job {
        seq: row.seq,
        id: row.id,
        tenant_id: row.tenant_id,
        kind: row.kind,
        payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
        attempt: row.attempts,
        max_attempts: row.max_attempts,
        event_id: row.event_id,
        ordering_key: row.ordering_key,
    }
}

/// A job (`t`, an alias of `jobs` or the table itself) that may be claimed as of
/// `now`: queued and due, or running with a lapsed lease; and first of its ordering
/// key (that check only matters when two replicas queued a key's first job at the
/// same moment). Waiting jobs are not looked at.
fn runnable(t: &str, now: &str, kinds: &str) -> String {
    format!(
        "{t}.kind IN ({kinds}) AND {t}.status IN ('{QUEUED}', '{RUNNING}') \
         AND (({t}.status = '{QUEUED}' AND {t}.run_at <= {now}) \
           OR ({t}.status = '{RUNNING}' AND {t}.locked_until < {now})) \
         AND ({t}.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM jobs o \
             WHERE o.ordering_key = {t}.ordering_key AND o.seq < {t}.seq \
             AND o.status IN {PENDING_SQL}))"
    )
}

/// The runnable jobs to claim, oldest first within each tenant's room: first the
/// candidates (the oldest of each tenant and kind, ranked in SQL so that a backlog
/// of one never hides another's jobs), then the chosen ones claimed by an update that checks
/// again that they are runnable.
async fn claim_heads(
    conn: &mut AnyConnection,
    backend: Backend,
    lease: &Lease<'_>,
    kinds: &[&str],
    shares: &Shares<'_>,
    limit: i64,
) -> Result<Vec<Job>> {
    let kinds_sql = (0..kinds.len())
        .map(|i| format!("${}", i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    let per_tenant = shares.per_tenant.min(limit.max(0) as usize) as i64;
    // On PostgreSQL the candidates are locked, skipping those another replica is
    // claiming right now, so that replicas claiming at once take different jobs.
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "SELECT seq, tenant_id, kind FROM jobs WHERE seq IN (SELECT seq FROM (SELECT j.seq, \
           ROW_NUMBER() OVER (PARTITION BY j.tenant_id, j.kind ORDER BY j.seq) AS turn \
           FROM jobs j WHERE {}) c \
         WHERE c.turn <= $2 ORDER BY c.seq LIMIT $3) ORDER BY seq {lock}",
        runnable("j", "$1", &kinds_sql)
    );
    let mut query = sqlx::query_as::<_, Candidate>(&sql)
        .bind(lease.now)
        .bind(per_tenant)
        .bind(limit.saturating_mul(4));
    for kind in kinds {
        query = query.bind(*kind);
    }
    let candidates = query.fetch_all(&mut *conn).await?;
    let chosen = choose(&candidates, shares, limit.max(0) as usize);
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    // The conditions are on the updated rows themselves: on PostgreSQL an update
    // that waited for another claim's row lock checks them again on the new row.
    let sql = format!(
        "UPDATE jobs SET status = '{RUNNING}', locked_by = $1, locked_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE jobs.seq IN ({}) AND {} RETURNING {JOB_COLUMNS}",
        seq_list(&chosen),
        runnable("jobs", "$3", &kinds_sql)
    );
    let mut query = sqlx::query_as::<_, JobRow>(&sql)
        .bind(lease.worker)
        .bind(lease.until)
        .bind(lease.now);
    for kind in kinds {
        query = query.bind(*kind);
    }
    let mut jobs: Vec<Job> = query
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(job_from)
        .collect();
    jobs.sort_by_key(|j| j.seq);
    Ok(jobs)
}

/// A runnable job that may be claimed: its seq, tenant and kind.
type Candidate = (i64, String, String);

/// Up to `limit` of the candidates, oldest first, each tenant within its room.
fn choose(candidates: &[Candidate], shares: &Shares<'_>, limit: usize) -> Vec<i64> {
    let mut taken: HashMap<&str, usize> = HashMap::new();
    let mut chosen = Vec::new();
    for (seq, tenant, kind) in candidates {
        if chosen.len() == limit {
            break;
        }
        if shares.exempt.contains(&kind.as_str()) {
            chosen.push(*seq);
            continue;
        }
        let count = taken.entry(tenant.as_str()).or_default();
        if *count < shares.room(tenant) {
            *count += 1;
            chosen.push(*seq);
        }
    }
    chosen
}

fn seq_list(seqs: &[i64]) -> String {
    seqs.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The waiting jobs right behind `head_seq` in `key`'s order, as long as they are of
/// the run's kinds, claimed with the same lease.
async fn claim_followers(
    conn: &mut AnyConnection,
    backend: Backend,
    lease: &Lease<'_>,
    key: &str,
    head_seq: i64,
    runs: &Runs<'_>,
) -> Result<Vec<Job>> {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE",
        Backend::Sqlite => "",
    };
    let behind: Vec<(i64, String, String, i64)> = sqlx::query_as(&format!(
        "SELECT seq, kind, status, run_at FROM jobs \
         WHERE ordering_key = $1 AND seq > $2 AND status IN {PENDING_SQL} \
         ORDER BY seq LIMIT $3 {lock}"
    ))
    .bind(key)
    .bind(head_seq)
    .bind(runs.max as i64 - 1)
    .fetch_all(&mut *conn)
    .await?;
    let seqs: Vec<i64> = behind
        .iter()
        .take_while(|(_, kind, status, run_at)| {
            status == WAITING && *run_at <= lease.now && runs.kinds.contains(&kind.as_str())
        })
        .map(|(seq, ..)| *seq)
        .collect();
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let mut jobs: Vec<Job> = sqlx::query_as::<_, JobRow>(&format!(
        "UPDATE jobs SET status = '{RUNNING}', locked_by = $1, locked_until = $2, \
         attempts = attempts + 1, updated_at = $3 \
         WHERE status = '{WAITING}' AND seq IN ({}) RETURNING {JOB_COLUMNS}",
        seq_list(&seqs)
    ))
    .bind(lease.worker)
    .bind(lease.until)
    .bind(lease.now)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(job_from)
    .collect();
    jobs.sort_by_key(|j| j.seq);
    Ok(jobs)
}

/// Moves up the first waiting job of every key that has no earlier pending job (a
/// key whose last job ended while another replica was queueing behind it). Returns
/// how many moved.
pub async fn promote_orphans(db: &Db) -> Result<u64> {
    let moved = sqlx::query(&format!(
        "UPDATE jobs SET status = '{QUEUED}', updated_at = $1 \
         WHERE status = '{WAITING}' AND NOT EXISTS (SELECT 1 FROM jobs o \
           WHERE o.ordering_key = jobs.ordering_key AND o.seq < jobs.seq \
           AND o.status IN {PENDING_SQL})"
    ))
    .bind(now_ms())
    .execute(&mut *db.background().await?)
    .await?;
    Ok(moved.rows_affected())
}

/// Extends the leases of these jobs (by `seq`), the ones this worker's live tasks
/// run: a job whose task ended without recording it (it panicked, or was stopped)
/// keeps its old lease, which lapses, and the job runs again.
pub async fn heartbeat(db: &Db, worker: &str, seqs: &[i64], lease_ms: i64) -> Result<()> {
    let mut conn = db.background().await?;
    for chunk in seqs.chunks(PER_STATEMENT) {
        sqlx::query(&format!(
            "UPDATE jobs SET locked_until = $1 WHERE locked_by = $2 AND status = $3 AND seq IN ({})",
            seq_list(chunk)
        ))
        .bind(now_ms().saturating_add(lease_ms))
        .bind(worker)
        .bind(RUNNING)
        .execute(&mut *conn)
        .await?;
    }
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
    /// Not run: it was claimed in a run behind a job that failed and will be
    /// retried, so it waits for that job again (the attempt does not count).
    Released,
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

/// Records one attempt and moves the job on, in its own transaction (the workers
/// record theirs in batches, [`finish_many_in`]): the queue's own tests. Does
/// nothing if the lease was lost to another worker meanwhile.
#[cfg(feature = "testing")]
pub async fn finish(
    db: &Db,
    job: &Job,
    worker: &str,
    started_at: i64,
    outcome: &Outcome,
) -> Result<()> {
    let mut conn = db.background().await?;
    let mut tx = conn.begin().await?;
    let ended = [Ended {
        job,
        started_at,
        outcome,
    }];
    if finish_many_in(&mut tx, worker, &ended).await?[0].is_some() {
        tx.commit().await?;
    }
    Ok(())
}

/// A job attempt that ended, to record.
pub struct Ended<'a> {
    pub job: &'a Job,
    pub started_at: i64,
    pub outcome: &'a Outcome,
}

/// A job on its way to its next state, with its place in the batch.
type Moving<'e, 'a> = (usize, &'e Ended<'a>, Next<'a>);

/// Where a job goes after an attempt (other than released).
struct Next<'a> {
    status: JobStatus,
    run_at: i64,
    error: Option<&'a str>,
}

/// [`finish_in`] for many jobs: their new states in multi-row updates, their attempts
/// in multi-row inserts, then one promotion per ordering key they free. Returns each
/// job's new status, in order.
pub async fn finish_many_in(
    conn: &mut AnyConnection,
    worker: &str,
    ended: &[Ended<'_>],
) -> Result<Vec<Option<JobStatus>>> {
    let now = now_ms();
    let mut statuses = vec![None; ended.len()];
    let mut moving = Vec::with_capacity(ended.len());
    for (i, e) in ended.iter().enumerate() {
        match next(e.job, e.outcome, now) {
            Some(next) => moving.push((i, e, next)),
            None => statuses[i] = release_in(conn, e.job, worker, now).await?,
        }
    }
    let moved = move_jobs(conn, worker, &moving, now).await?;
    let (moving, lost): (Vec<_>, Vec<_>) = moving
        .into_iter()
        .partition(|(_, e, _)| moved.contains(e.job.id.as_str()));
    for (_, e, _) in lost {
        tracing::warn!(job = %e.job.id, "lease lost before the job finished; leaving it to its new owner");
    }
    insert_attempts(conn, worker, &moving, now).await?;
    // In a stable order: on PostgreSQL promoting locks the key's rows.
    let freed: BTreeSet<&str> = moving
        .iter()
        .filter(|(_, _, next)| next.status != JobStatus::Queued)
        .filter_map(|(_, e, _)| e.job.ordering_key.as_deref())
        .collect();
    for key in freed {
        promote_next_in(conn, key, now).await?;
    }
    for (i, _, next) in &moving {
        statuses[*i] = Some(next.status);
    }
    Ok(statuses)
}

/// The job's next state after `outcome`: done, queued again after a backoff, or
/// dead; `None` for a released job.
fn next<'a>(job: &Job, outcome: &'a Outcome, now: i64) -> Option<Next<'a>> {
    let (status, run_at, error) = match outcome {
        Outcome::Released => return None,
        Outcome::Done => (JobStatus::Done, now, None),
        Outcome::Fatal { error } => (JobStatus::Dead, now, Some(error.as_str())),
        Outcome::Retry { error, .. } if job.attempt >= job.max_attempts => {
            (JobStatus::Dead, now, Some(error.as_str()))
        }
        Outcome::Retry {
            error,
            retry_after_ms,
        } => {
            let wait = retry_after_ms.unwrap_or_else(|| backoff_ms(job.attempt));
            (JobStatus::Queued, now + wait.max(0), Some(error.as_str()))
        }
    };
    Some(Next {
        status,
        run_at,
        error,
    })
}

/// Moves the jobs this worker still holds; returns the ids of those it did.
async fn move_jobs(
    conn: &mut AnyConnection,
    worker: &str,
    moving: &[Moving<'_, '_>],
    now: i64,
) -> Result<HashSet<String>> {
    const PER_ROW: usize = 4;
    let mut moved = HashSet::with_capacity(moving.len());
    for rows in moving.chunks(PER_STATEMENT) {
        let values: Vec<String> = (0..rows.len())
            .map(|r| format!("({})", params(3 + r * PER_ROW, PER_ROW)))
            .collect();
        // VALUES columns are column1.. on both backends.
        let sql = format!(
            "UPDATE jobs SET status = v.column2, run_at = v.column3, last_error = v.column4, \
             locked_by = NULL, locked_until = NULL, updated_at = $2 \
             FROM (VALUES {}) AS v WHERE jobs.id = v.column1 AND jobs.locked_by = $1 RETURNING id",
            values.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String,)>(&sql).bind(worker).bind(now);
        for (_, e, next) in rows {
            query = query
                .bind(e.job.id.as_str())
                .bind(next.status.as_str())
                .bind(next.run_at)
                .bind(next.error);
        }
        moved.extend(
            query
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(id,)| id),
        );
    }
    Ok(moved)
}

/// One `job_attempts` row per moved job; `$1` and `$2` (worker, time) are shared.
async fn insert_attempts(
    conn: &mut AnyConnection,
    worker: &str,
    moved: &[Moving<'_, '_>],
    now: i64,
) -> Result<()> {
    const PER_ROW: usize = 7;
    for rows in moved.chunks(PER_STATEMENT) {
        let values: Vec<String> = (0..rows.len())
            .map(|r| format!("($1, $2, {})", params(3 + r * PER_ROW, PER_ROW)))
            .collect();
        let sql = format!(
            "INSERT INTO job_attempts (worker, finished_at, id, job_id, tenant_id, attempt, \
             started_at, outcome, error) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(worker).bind(now);
        for (_, e, next) in rows {
            query = query
                .bind(new_id("att"))
                .bind(e.job.id.as_str())
                .bind(e.job.tenant_id.as_str())
                .bind(e.job.attempt)
                .bind(e.started_at)
                .bind(next.status.as_str())
                .bind(next.error);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// A released job waits again, with its attempt given back.
async fn release_in(
    conn: &mut AnyConnection,
    job: &Job,
    worker: &str,
    now: i64,
) -> Result<Option<JobStatus>> {
    let moved = sqlx::query(&format!(
        "UPDATE jobs SET status = '{WAITING}', attempts = attempts - 1, locked_by = NULL, \
         locked_until = NULL, updated_at = $1 WHERE id = $2 AND locked_by = $3"
    ))
    .bind(now)
    .bind(&job.id)
    .bind(worker)
    .execute(&mut *conn)
    .await?;
    Ok((moved.rows_affected() > 0).then_some(JobStatus::Waiting))
}

/// Once none of `key`'s jobs is queued or running, its first waiting job is next.
async fn promote_next_in(conn: &mut AnyConnection, key: &str, now: i64) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE jobs SET status = '{QUEUED}', updated_at = $1 \
         WHERE seq = (SELECT MIN(seq) FROM jobs WHERE ordering_key = $2 \
           AND status IN {PENDING_SQL} AND status = '{WAITING}') \
         AND NOT EXISTS (SELECT 1 FROM jobs WHERE ordering_key = $2 \
           AND status IN ('{QUEUED}', '{RUNNING}'))"
    ))
    .bind(now)
    .bind(key)
    .execute(&mut *conn)
    .await?;
    Ok(())
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

/// The queue's state for monitoring: unfinished jobs by kind and status, and the
/// age of the oldest job due but not yet started.
#[derive(Debug, Default)]
pub struct Backlog {
    /// (kind, status, count), for every kind and status with jobs.
    pub counts: Vec<(String, String, i64)>,
    pub oldest_due_ms: i64,
}

pub async fn backlog(db: &Db) -> Result<Backlog> {
    let counts = sqlx::query_as(&format!(
        "SELECT kind, status, COUNT(*) FROM jobs WHERE status IN {PENDING_SQL} \
         GROUP BY kind, status ORDER BY kind, status"
    ))
    .fetch_all(db.reader())
    .await?;
    let now = now_ms();
    // The `IN` term lets the partial index of queued and running jobs serve the query
    // (a bare `status = 'queued'` does not match its condition and scans the table).
    let (oldest,): (Option<i64>,) = sqlx::query_as(&format!(
        "SELECT MIN(run_at) FROM jobs WHERE status IN ('{QUEUED}', '{RUNNING}') \
         AND status = '{QUEUED}' AND run_at <= $1"
    ))
    .bind(now)
    .fetch_one(db.reader())
    .await?;
    Ok(Backlog {
        counts,
        oldest_due_ms: oldest.map_or(0, |run_at| now - run_at),
    })
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
