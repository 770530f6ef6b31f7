//! Delivering owed wallet refreshes: one `wallet.refresh` job per pass at a time,
//! started a moment after the first change so a burst of updates becomes one push
//! per device. Every push is a delivery with its attempts.

use std::collections::{HashMap, HashSet};

use sqlx::Connection;

use super::apns::PushResult;
use super::{credentials, google, pass_types, registrations};
use crate::core::Core;
use crate::deliveries::{self, Attempt, Channel, DeliveryStatus};
use crate::error::{DomainError, Result};
use crate::jobs::{self, Job, NewJob, Outcome};
use crate::passes;
use crate::sql::{params, PER_STATEMENT};
use crate::tasks::{self, Task, WalletRefresh};

fn refresh_job(tenant_id: &str, pass_id: &str) -> NewJob {
    Task::WalletRefresh(WalletRefresh {
        pass_id: pass_id.to_string(),
    })
    .job(tenant_id)
}

/// Records, in the caller's transaction, that the pass's wallets owe a refresh of
/// `version`, and queues the job that delivers it unless a live one exists.
///
/// The row is updated before anything is decided: on PostgreSQL that locks it, so a
/// finishing job's [`settle`] either sees the new version (and queues the next job)
/// or has already deleted the row (and this inserts a new one with its own job).
pub async fn owe(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    pass_id: &str,
    version: i64,
    significant: bool,
    message: Option<&str>,
) -> Result<()> {
    let owed = Owed {
        pass_id,
        version,
        significant,
        message,
    };
    owe_many(conn, tenant_id, &[owed]).await
}

/// One pass's owed refresh, for [`owe_many`].
#[derive(Clone, Copy, Debug)]
pub struct Owed<'a> {
    pub pass_id: &'a str,
    pub version: i64,
    pub significant: bool,
    pub message: Option<&'a str>,
}

/// [`owe`] for many updates at once, in order, in four statements: the owed rows
/// that exist are updated first (locking them, as in [`owe`]), the others inserted
/// with their jobs, and updated ones whose job died get a new one.
pub async fn owe_many(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    owed: &[Owed<'_>],
) -> Result<()> {
    let rows = collapse(owed);
    if rows.is_empty() {
        return Ok(());
    }
    let now = crate::clock::now_ms();
    let owed: Vec<&OwedRow> = rows.iter().collect();
    let updated = update_owed(conn, tenant_id, &owed, now).await?;
    let missing: Vec<&OwedRow> = owed
        .iter()
        .filter(|o| !updated.contains(o.pass_id))
        .copied()
        .collect();
    let mut need_job = insert_owed(conn, tenant_id, &missing, now).await?;
    // An owed row's job may have died since (dead-lettered): those need a new one.
    let keys: Vec<(String, &str)> = updated
        .iter()
        .map(|id| (tasks::refresh_order(tenant_id, id), id.as_str()))
        .collect();
    let key_refs: Vec<&str> = keys.iter().map(|(k, _)| k.as_str()).collect();
    let live = jobs::pending_among(conn, &key_refs).await?;
    need_job.extend(
        keys.iter()
            .filter(|(key, _)| !live.contains(key.as_str()))
            .map(|(_, id)| id.to_string()),
    );
    let jobs: Vec<NewJob> = need_job
        .iter()
        .map(|id| refresh_job(tenant_id, id))
        .collect();
    jobs::enqueue(conn, &jobs).await?;
    Ok(())
}

/// An owed row as successive [`owe`]s would leave it.
struct OwedRow<'a> {
    pass_id: &'a str,
    version: i64,
    /// The newest significant version (0: none).
    significant: i64,
    message: Option<&'a str>,
}

/// One row per pass: the newest version, the newest significant one, the newest
/// message.
fn collapse<'a>(owed: &[Owed<'a>]) -> Vec<OwedRow<'a>> {
    let mut rows: Vec<OwedRow<'a>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for o in owed {
        let i = *index.entry(o.pass_id).or_insert_with(|| {
            rows.push(OwedRow {
                pass_id: o.pass_id,
                version: 0,
                significant: 0,
                message: None,
            });
            rows.len() - 1
        });
        let row = &mut rows[i];
        row.version = o.version;
        if o.significant {
            row.significant = o.version;
        }
        row.message = o.message.or(row.message);
    }
    rows
}

/// Updates the rows that exist (as [`owe`] does); returns their pass ids.
async fn update_owed(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    owed: &[&OwedRow<'_>],
    now: i64,
) -> Result<HashSet<String>> {
    // VALUES columns are column1.. on both backends.
    let statement = |values: &str| {
        format!(
            "UPDATE wallet_refreshes SET version = v.column2, \
             significant = CASE WHEN v.column3 > 0 THEN v.column3 ELSE wallet_refreshes.significant END, \
             message = COALESCE(v.column4, wallet_refreshes.message), requested_at = $2, job_pending = 1 \
             FROM (VALUES {values}) AS v \
             WHERE wallet_refreshes.tenant_id = $1 AND wallet_refreshes.pass_id = v.column1 \
             RETURNING wallet_refreshes.pass_id"
        )
    };
    let updated = owed_rows(conn, tenant_id, owed, now, |p| format!("({p})"), statement).await?;
    Ok(updated.into_iter().collect())
}

/// Inserts rows for passes that owed nothing; returns the pass ids it inserted (a
/// row inserted by another transaction meanwhile came with its own job).
async fn insert_owed(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    owed: &[&OwedRow<'_>],
    now: i64,
) -> Result<Vec<String>> {
    let statement = |values: &str| {
        format!(
            "INSERT INTO wallet_refreshes (tenant_id, pass_id, version, significant, message, requested_at, job_pending) \
             VALUES {values} ON CONFLICT (tenant_id, pass_id) DO NOTHING RETURNING pass_id"
        )
    };
    owed_rows(
        conn,
        tenant_id,
        owed,
        now,
        |p| format!("($1, {p}, $2, 1)"),
        statement,
    )
    .await
}

/// Runs `statement` over the owed rows, many per statement: `$1` is the tenant, `$2`
/// the time, and `row` places each row's pass, version, significant version and
/// message (given as their placeholders) in the `VALUES` list. Returns the pass ids
/// the statement returns.
async fn owed_rows(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    owed: &[&OwedRow<'_>],
    now: i64,
    row: impl Fn(&str) -> String,
    statement: impl Fn(&str) -> String,
) -> Result<Vec<String>> {
    const PER_ROW: usize = 4;
    let mut returned = Vec::new();
    for rows in owed.chunks(PER_STATEMENT) {
        let values: Vec<String> = (0..rows.len())
            .map(|r| row(&params(3 + r * PER_ROW, PER_ROW)))
            .collect();
        let sql = statement(&values.join(", "));
        let mut query = sqlx::query_as::<_, (String,)>(&sql)
            .bind(tenant_id)
            .bind(now);
        for owed in rows {
            query = query
                .bind(owed.pass_id)
                .bind(owed.version)
                .bind(owed.significant)
                .bind(owed.message);
        }
        returned.extend(
            query
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map(|(id,)| id),
        );
    }
    Ok(returned)
}

fn retry(error: String, retry_after_ms: Option<i64>) -> Outcome {
    Outcome::Retry {
        error,
        retry_after_ms,
    }
}

/// The worker's part: delivers the owed refresh of one pass to every channel it has.
pub async fn run(core: &Core, job: &Job, task: &WalletRefresh) -> Outcome {
    match deliver(core, job, &task.pass_id).await {
        Ok(outcome) => outcome,
        Err(e) => retry(e.to_string(), None),
    }
}

/// A wallet delivery retried by hand, in the caller's transaction: the channels
/// forget what they were given, and the pass owes them its current version again.
pub async fn redeliver(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    pass_id: &str,
) -> Result<()> {
    let pass = passes::get_in(conn, tenant_id, pass_id).await?;
    sqlx::query(
        "UPDATE apple_registrations SET pushed_version = 0 WHERE tenant_id = $1 AND pass_id = $2",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE google_objects SET delivered_version = 0 WHERE tenant_id = $1 AND pass_id = $2",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .execute(&mut *conn)
    .await?;
    owe(conn, tenant_id, pass_id, pass.version, false, None).await
}

async fn deliver(core: &Core, job: &Job, pass_id: &str) -> Result<Outcome> {
    let tenant_id = &job.tenant_id;
    let owed: Option<(i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT version, significant, message FROM wallet_refreshes WHERE tenant_id = $1 AND pass_id = $2",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .fetch_optional(core.db.reader())
    .await?;
    let Some((version, significant, message)) = owed else {
        return Ok(Outcome::Done);
    };
    let pass = match passes::get(&core.db, tenant_id, pass_id).await {
        Ok(pass) => pass,
        Err(DomainError::NotFound(_)) => {
            return settle(core, tenant_id, pass_id, version)
                .await
                .map(|_| Outcome::Done)
        }
        Err(e) => return Err(e),
    };
    let pass_type = pass_types::get(&core.db, tenant_id, &pass.pass_type).await?;
    let apple = pass_type.as_ref().and_then(|t| t.apple.as_ref());
    if let (Some(design), Some(creds)) = (apple, credentials::apple(core.vault(), tenant_id).await?)
    {
        if let Some(outcome) = push_apple(
            core,
            tenant_id,
            pass_id,
            version,
            &design.pass_type_identifier,
            &creds,
        )
        .await?
        {
            return Ok(outcome);
        }
    }
    let google = pass_type.as_ref().and_then(|t| t.google.as_ref());
    if let (Some(design), Some(account)) =
        (google, credentials::google(core.vault(), tenant_id).await?)
    {
        let notice = Notice {
            version,
            significant_version: significant,
            message: message.as_deref(),
        };
        if let Some(outcome) = push_google(core, tenant_id, &pass, notice, design, &account).await?
        {
            return Ok(outcome);
        }
    }
    settle(core, tenant_id, pass_id, version).await?;
    Ok(Outcome::Done)
}

/// What the owed refresh says about the change.
#[derive(Clone, Copy)]
struct Notice<'a> {
    version: i64,
    /// The newest significant version owed, 0 when none.
    significant_version: i64,
    message: Option<&'a str>,
}

/// Updates the Google object (and adds a message when significant) unless Google
/// already has this version; `Some(retry)` when it must be retried.
async fn push_google(
    core: &Core,
    tenant_id: &str,
    pass: &passes::Pass,
    notice: Notice<'_>,
    design: &pass_types::GoogleDesign,
    account: &serde_json::Value,
) -> Result<Option<Outcome>> {
    let object_id = google::object_id(design, &pass.id);
    let delivered: Option<(i64,)> = sqlx::query_as(
        "SELECT delivered_version FROM google_objects WHERE tenant_id = $1 AND pass_id = $2",
    )
    .bind(tenant_id)
    .bind(&pass.id)
    .fetch_optional(core.db.reader())
    .await?;
    let delivered = delivered.map_or(0, |(v,)| v);
    if delivered >= notice.version {
        return Ok(None);
    }
    // Notify only of a significant version Google has not been told about yet.
    let significant = notice.significant_version > delivered;
    let delivery = open_delivery_to(
        core,
        tenant_id,
        &pass.id,
        Channel::Google,
        &format!("object {object_id}"),
    )
    .await?;
    let started = std::time::Instant::now();
    let mut result = core
        .google
        .upsert_object(tenant_id, account, design, pass)
        .await;
    let mut message_note = None;
    if result.is_ok() && significant {
        let notify =
            notifications_today(core, tenant_id, &pass.id).await? < google::NOTIFICATIONS_PER_DAY;
        let text = notice.message.unwrap_or("Your pass was updated.");
        result = core
            .google
            .add_message(tenant_id, account, design, pass, text, notify)
            .await;
        if result.is_ok() {
            record_message(core, tenant_id, &pass.id, notify, text).await?;
            message_note = Some(if notify {
                "message TEXT_AND_NOTIFY"
            } else {
                "message TEXT (3 notifications in 24 h reached)"
            });
        }
    }
    let latency_ms = started.elapsed().as_millis() as i64;
    let (attempt, outcome, done) = match &result {
        Ok(status) => (
            Attempt {
                status_code: Some(*status),
                latency_ms,
                error: message_note.map(str::to_string),
                new_status: DeliveryStatus::Delivered,
            },
            None,
            true,
        ),
        Err(e @ google::GoogleError::Retry { retry_after_ms, .. }) => (
            Attempt {
                status_code: e.status(),
                latency_ms,
                error: Some(e.message().to_string()),
                new_status: DeliveryStatus::Retrying,
            },
            Some(retry(format!("Google: {}", e.message()), *retry_after_ms)),
            false,
        ),
        Err(e) => (
            Attempt {
                status_code: e.status(),
                latency_ms,
                error: Some(e.message().to_string()),
                new_status: DeliveryStatus::Failed,
            },
            None,
            true,
        ),
    };
    deliveries::record_attempt(&core.db, &delivery, &attempt).await?;
    if done {
        sqlx::query(
            "INSERT INTO google_objects (tenant_id, pass_id, object_id, delivered_version) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant_id, pass_id) DO UPDATE SET delivered_version = excluded.delivered_version",
        )
        .bind(tenant_id)
        .bind(&pass.id)
        .bind(&object_id)
        .bind(notice.version)
        .execute(&mut *core.db.background().await?)
        .await?;
    }
    Ok(outcome)
}

async fn notifications_today(core: &Core, tenant_id: &str, pass_id: &str) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM google_messages WHERE tenant_id = $1 AND pass_id = $2 AND notify = 1 AND sent_at > $3",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .bind(crate::clock::now_ms() - 24 * 3600 * 1000)
    .fetch_one(core.db.reader())
    .await?;
    Ok(n)
}

async fn record_message(
    core: &Core,
    tenant_id: &str,
    pass_id: &str,
    notify: bool,
    body: &str,
) -> Result<()> {
    sqlx::query("INSERT INTO google_messages (tenant_id, pass_id, sent_at, notify, body) VALUES ($1, $2, $3, $4, $5)")
        .bind(tenant_id)
        .bind(pass_id)
        .bind(crate::clock::now_ms())
        .bind(i64::from(notify))
        .bind(body)
        .execute(&mut *core.db.background().await?)
        .await?;
    Ok(())
}

/// Pushes every device not yet at `version`; `Some(retry)` when one must be retried.
async fn push_apple(
    core: &Core,
    tenant_id: &str,
    pass_id: &str,
    version: i64,
    topic: &str,
    creds: &credentials::AppleCredentials,
) -> Result<Option<Outcome>> {
    let devices: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT device_id, push_token, pushed_version FROM apple_registrations WHERE tenant_id = $1 AND pass_id = $2 ORDER BY device_id",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .fetch_all(core.db.reader())
    .await?;
    let mut outcome = None;
    for (device, token, _) in devices
        .into_iter()
        .filter(|(_, _, pushed)| *pushed < version)
    {
        let delivery = open_delivery_to(
            core,
            tenant_id,
            pass_id,
            Channel::Apple,
            &format!("device {device}"),
        )
        .await?;
        let result = core.apns.push(tenant_id, creds, topic, &token).await;
        let (status, latency_ms, error, new_status) = match &result {
            PushResult::Delivered { latency_ms } => {
                (Some(200), *latency_ms, None, DeliveryStatus::Delivered)
            }
            PushResult::Gone {
                status,
                reason,
                latency_ms,
            } => {
                registrations::forget_push_token(&core.db, tenant_id, &token).await?;
                (
                    Some(*status),
                    *latency_ms,
                    Some(format!("{reason}: registration removed")),
                    DeliveryStatus::Failed,
                )
            }
            PushResult::Retry {
                status,
                reason,
                retry_after_ms,
                latency_ms,
            } => {
                outcome = Some(retry(format!("APNs: {status:?} {reason}"), *retry_after_ms));
                (
                    *status,
                    *latency_ms,
                    Some(reason.clone()),
                    DeliveryStatus::Retrying,
                )
            }
            PushResult::Failed {
                status,
                reason,
                latency_ms,
            } => (
                *status,
                *latency_ms,
                Some(reason.clone()),
                DeliveryStatus::Failed,
            ),
        };
        let attempt = Attempt {
            status_code: status,
            latency_ms,
            error,
            new_status,
        };
        deliveries::record_attempt(&core.db, &delivery, &attempt).await?;
        if matches!(
            result,
            PushResult::Delivered { .. } | PushResult::Failed { .. }
        ) {
            sqlx::query("UPDATE apple_registrations SET pushed_version = $1 WHERE tenant_id = $2 AND device_id = $3 AND pass_id = $4")
                .bind(version)
                .bind(tenant_id)
                .bind(&device)
                .bind(pass_id)
                .execute(&mut *core.db.background().await?)
                .await?;
        }
    }
    Ok(outcome)
}

/// The open delivery to this target (one being retried), or a new one.
async fn open_delivery_to(
    core: &Core,
    tenant_id: &str,
    pass_id: &str,
    channel: Channel,
    target: &str,
) -> Result<String> {
    let open: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM deliveries WHERE tenant_id = $1 AND channel = $2 AND pass_id = $3 AND target = $4 AND status = $5",
    )
    .bind(tenant_id)
    .bind(channel.as_str())
    .bind(pass_id)
    .bind(target)
    .bind(DeliveryStatus::Retrying.as_str())
    .fetch_optional(core.db.reader())
    .await?;
    if let Some((id,)) = open {
        return Ok(id);
    }
    let mut conn = core.db.background().await?;
    deliveries::create(&mut conn, tenant_id, channel, Some(pass_id), None, target).await
}

/// The refresh of `version` is delivered: forget it, unless a newer version is owed
/// meanwhile, which gets its own job.
async fn settle(core: &Core, tenant_id: &str, pass_id: &str, version: i64) -> Result<()> {
    let mut conn = core.db.background().await?;
    let mut tx = conn.begin().await?;
    let done = sqlx::query(
        "DELETE FROM wallet_refreshes WHERE tenant_id = $1 AND pass_id = $2 AND version = $3",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        jobs::enqueue(&mut tx, &[refresh_job(tenant_id, pass_id)]).await?;
    }
    tx.commit().await?;
    core.jobs_ready.notify_one();
    Ok(())
}
