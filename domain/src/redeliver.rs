//! Sending failed deliveries again, by hand (the console's and the API's retry): an
//! Actito callback gets a fresh set of attempts; a wallet delivery makes its pass owe
//! its wallets a refresh of the current version.

use crate::actito::callbacks;
use crate::clock::now_ms;
use crate::core::Core;
use crate::deliveries::{Channel, DeliveryFilter, DeliveryStatus};
use crate::error::{DomainError, Result};
use crate::wallet::delivery;

/// Retries every failed delivery that matches `filter` (its status is ignored), up to
/// `limit` of them; returns how many were queued again.
pub async fn retry_failed(
    core: &Core,
    tenant_id: &str,
    filter: &DeliveryFilter,
    limit: u32,
) -> Result<usize> {
    let filter = DeliveryFilter {
        status: Some(DeliveryStatus::Failed.as_str().to_string()),
        ..filter.clone()
    };
    let w = filter.conditions(tenant_id);
    let sql = format!(
        "SELECT id FROM deliveries WHERE {} ORDER BY created_at, id LIMIT {limit}",
        w.sql
    );
    let ids = w
        .bind(sqlx::query_as::<_, (String,)>(&sql))
        .fetch_all(core.db.reader())
        .await?;
    let mut retried = 0;
    for (id,) in ids {
        match retry(core, tenant_id, &id).await {
            Ok(()) => retried += 1,
            // Settled meanwhile (another admin, a worker): nothing to do for it.
            Err(DomainError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(retried)
}

/// Sends one failed delivery again.
pub async fn retry(core: &Core, tenant_id: &str, delivery_id: &str) -> Result<()> {
    let row: Option<(String, Option<String>, String, String)> = sqlx::query_as(
        "SELECT channel, pass_id, target, status FROM deliveries WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(delivery_id)
    .fetch_optional(core.db.reader())
    .await?;
    let (channel, pass_id, target, status) = row.ok_or(DomainError::NotFound("delivery"))?;
    if status != DeliveryStatus::Failed.as_str() {
        return Err(DomainError::Conflict(format!(
            "only failed deliveries are retried; this one is {status}"
        )));
    }
    let channel = Channel::try_from(channel.as_str())?;
    let new_status = match channel {
        Channel::ActitoCallback => DeliveryStatus::Pending,
        Channel::Apple | Channel::Google => DeliveryStatus::Retried,
    };
    let mut tx = core.db.writer().begin().await?;
    sqlx::query("UPDATE deliveries SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(new_status.as_str())
        .bind(now_ms())
        .bind(delivery_id)
        .execute(&mut *tx)
        .await?;
    match (channel, pass_id) {
        (Channel::ActitoCallback, _) => {
            callbacks::requeue(&mut tx, tenant_id, delivery_id, &target).await?
        }
        (_, Some(pass_id)) => delivery::redeliver(&mut tx, tenant_id, &pass_id).await?,
        _ => {
            return Err(DomainError::Conflict(
                "this delivery cannot be retried".into(),
            ))
        }
    }
    tx.commit().await?;
    core.jobs_ready.notify_one();
    Ok(())
}
