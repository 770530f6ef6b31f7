//! Delivering owed wallet refreshes: one `wallet.refresh` job per pass at a time,
//! started a moment after the first change so a burst of updates becomes one push
//! per device. Every push is a delivery with its attempts.

use serde_json::json;
use sqlx::Connection;

use super::apns::PushResult;
use super::{credentials, pass_types, registrations};
use crate::core::Core;
use crate::deliveries::{self, Attempt};
use crate::error::{DomainError, Result};
use crate::jobs::{self, Job, NewJob, Outcome};
use crate::passes;

pub const WALLET_REFRESH: &str = "wallet.refresh";
pub const APPLE_CHANNEL: &str = "apple";
/// Changes to a pass within this window go out as one refresh.
pub const COALESCE_MS: i64 = 1_000;

pub fn refresh_job(tenant_id: &str, pass_id: &str) -> NewJob {
    NewJob::new(tenant_id, WALLET_REFRESH, json!({ "passId": pass_id }))
        .ordered_by(format!("pass:{tenant_id}:{pass_id}"))
        .delayed(COALESCE_MS)
        .attempts(10)
}

/// Records, in the caller's transaction, that the pass's wallets owe a refresh of
/// `version`, and queues the job that delivers it unless one is queued already.
pub async fn owe(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    pass_id: &str,
    version: i64,
    significant: bool,
    message: Option<&str>,
) -> Result<()> {
    let pending: Option<(i64,)> = sqlx::query_as(
        "SELECT job_pending FROM wallet_refreshes WHERE tenant_id = $1 AND pass_id = $2",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .fetch_optional(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO wallet_refreshes (tenant_id, pass_id, version, significant, message, requested_at, job_pending) \
         VALUES ($1, $2, $3, $4, $5, $6, 1) ON CONFLICT (tenant_id, pass_id) DO UPDATE SET \
         version = excluded.version, \
         significant = CASE WHEN excluded.significant = 1 THEN 1 ELSE wallet_refreshes.significant END, \
         message = COALESCE(excluded.message, wallet_refreshes.message), requested_at = excluded.requested_at, \
         job_pending = 1",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .bind(version)
    .bind(i64::from(significant))
    .bind(message)
    .bind(crate::clock::now_ms())
    .execute(&mut *conn)
    .await?;
    if pending != Some((1,)) {
        jobs::enqueue(conn, &[refresh_job(tenant_id, pass_id)]).await?;
    }
    Ok(())
}

fn retry(error: String, retry_after_ms: Option<i64>) -> Outcome {
    Outcome::Retry {
        error,
        retry_after_ms,
    }
}

/// Delivers the owed refresh of one pass to every channel it has.
pub async fn run(core: &Core, job: &Job) -> Outcome {
    match deliver(core, job).await {
        Ok(outcome) => outcome,
        Err(e) => retry(e.to_string(), None),
    }
}

async fn deliver(core: &Core, job: &Job) -> Result<Outcome> {
    let tenant_id = &job.tenant_id;
    let pass_id = job.payload["passId"].as_str().unwrap_or_default();
    let owed: Option<(i64,)> = sqlx::query_as(
        "SELECT version FROM wallet_refreshes WHERE tenant_id = $1 AND pass_id = $2",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .fetch_optional(core.db.reader())
    .await?;
    let Some((version,)) = owed else {
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
    if let (Some(design), Some(creds)) = (apple, credentials::apple(core, tenant_id).await?) {
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
    settle(core, tenant_id, pass_id, version).await?;
    Ok(Outcome::Done)
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
        let delivery = open_delivery(core, tenant_id, pass_id, &device).await?;
        let result = core.apns.push(creds, topic, &token).await;
        let (status, latency_ms, error, new_status) = match &result {
            PushResult::Delivered { latency_ms } => {
                (Some(200), *latency_ms, None, deliveries::DELIVERED)
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
                    deliveries::FAILED,
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
                    deliveries::RETRYING,
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
                deliveries::FAILED,
            ),
        };
        let attempt = Attempt {
            status_code: status,
            latency_ms,
            error: error.as_deref(),
            new_status,
        };
        deliveries::record_attempt(&core.db, &delivery, attempt).await?;
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

/// The open delivery to this device (one being retried), or a new one.
async fn open_delivery(
    core: &Core,
    tenant_id: &str,
    pass_id: &str,
    device: &str,
) -> Result<String> {
    let target = format!("device {device}");
    let open: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM deliveries WHERE tenant_id = $1 AND channel = $2 AND pass_id = $3 AND target = $4 AND status = $5",
    )
    .bind(tenant_id)
    .bind(APPLE_CHANNEL)
    .bind(pass_id)
    .bind(&target)
    .bind(deliveries::RETRYING)
    .fetch_optional(core.db.reader())
    .await?;
    if let Some((id,)) = open {
        return Ok(id);
    }
    let mut conn = core.db.background().await?;
    deliveries::create(
        &mut conn,
        tenant_id,
        APPLE_CHANNEL,
        Some(pass_id),
        None,
        &target,
    )
    .await
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
