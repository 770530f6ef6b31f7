//! Deliveries: every outbound call on a tenant's behalf (Actito callbacks, Apple and
//! Google wallet pushes), one row per target with each attempt recorded.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Connection};

use crate::clock::{now_ms, rfc3339};
use crate::db::Db;
use crate::error::{DomainError, Result};
use crate::ids::new_id;
use crate::live::{LiveEvent, LiveKind};
use crate::sql::{self, params, Where, PER_STATEMENT};

/// Where a delivery goes: the `channel` column of `deliveries`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// An APNs push to one device.
    Apple,
    /// A Google Wallet object write.
    Google,
    /// A custom action's `notifyOK` or `notifyKO` call to Actito.
    ActitoCallback,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Apple, Channel::Google, Channel::ActitoCallback];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Apple => "apple",
            Channel::Google => "google",
            Channel::ActitoCallback => "actito-callback",
        }
    }
}

impl TryFrom<&str> for Channel {
    type Error = DomainError;

    fn try_from(text: &str) -> Result<Self> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| DomainError::Internal(format!("unknown delivery channel {text:?}")))
    }
}

/// What a list of deliveries may be narrowed to: one channel, or both wallets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChannelFilter {
    /// Apple and Google pushes.
    Wallet,
    Apple,
    Google,
    ActitoCallback,
}

impl ChannelFilter {
    pub const ALL: [ChannelFilter; 4] = [
        ChannelFilter::Wallet,
        ChannelFilter::Apple,
        ChannelFilter::Google,
        ChannelFilter::ActitoCallback,
    ];

    pub fn channels(self) -> &'static [Channel] {
        match self {
            ChannelFilter::Wallet => &[Channel::Apple, Channel::Google],
            ChannelFilter::Apple => &[Channel::Apple],
            ChannelFilter::Google => &[Channel::Google],
            ChannelFilter::ActitoCallback => &[Channel::ActitoCallback],
        }
    }

    /// The value in a query string: `wallet`, `apple`, `google`, `actito-callback`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelFilter::Wallet => "wallet",
            ChannelFilter::Apple => Channel::Apple.as_str(),
            ChannelFilter::Google => Channel::Google.as_str(),
            ChannelFilter::ActitoCallback => Channel::ActitoCallback.as_str(),
        }
    }

    /// As the console names it.
    pub const fn label(self) -> &'static str {
        match self {
            ChannelFilter::Wallet => "Apple and Google wallets",
            ChannelFilter::Apple => "Apple Wallet",
            ChannelFilter::Google => "Google Wallet",
            ChannelFilter::ActitoCallback => "Actito callback",
        }
    }

    pub fn parse(text: &str) -> Option<ChannelFilter> {
        ChannelFilter::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// `channel IN ('apple', 'google')`: constants of this vocabulary, never input.
    pub fn sql(self, column: &str) -> String {
        let names: Vec<String> = self
            .channels()
            .iter()
            .map(|c| format!("'{}'", c.as_str()))
            .collect();
        format!("{column} IN ({})", names.join(", "))
    }
}

/// Where a delivery stands: the `status` column of `deliveries`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Retrying,
    /// Gave up: refused for good, or out of attempts.
    Failed,
    /// Failed, then retried by hand as a new delivery.
    Retried,
}

impl DeliveryStatus {
    /// In the order the console offers them.
    pub const ALL: [DeliveryStatus; 5] = [
        DeliveryStatus::Delivered,
        DeliveryStatus::Pending,
        DeliveryStatus::Retrying,
        DeliveryStatus::Failed,
        DeliveryStatus::Retried,
    ];

    /// As the console names it.
    pub const fn label(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "Pending",
            DeliveryStatus::Delivered => "Delivered",
            DeliveryStatus::Retrying => "Retrying",
            DeliveryStatus::Failed => "Failed",
            DeliveryStatus::Retried => "Retried",
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Retrying => "retrying",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Retried => "retried",
        }
    }
}

impl TryFrom<&str> for DeliveryStatus {
    type Error = DomainError;

    fn try_from(text: &str) -> Result<Self> {
        DeliveryStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| DomainError::Internal(format!("unknown delivery status {text:?}")))
    }
}

/// One delivery to `target`; its id.
pub async fn create(
    conn: &mut AnyConnection,
    tenant_id: &str,
    channel: Channel,
    pass_id: Option<&str>,
    event_id: Option<&str>,
    target: &str,
) -> Result<String> {
    let new = NewDelivery {
        pass_id,
        event_id,
        target,
    };
    let ids = create_many(conn, tenant_id, channel, &[new]).await?;
    Ok(ids.into_iter().next().expect("one id per delivery"))
}

/// A delivery to create: where to, for which pass or event.
#[derive(Clone, Copy, Debug)]
pub struct NewDelivery<'a> {
    pub pass_id: Option<&'a str>,
    pub event_id: Option<&'a str>,
    pub target: &'a str,
}

/// Deliveries of one channel, many rows per statement; their ids in the same order.
pub async fn create_many(
    conn: &mut AnyConnection,
    tenant_id: &str,
    channel: Channel,
    new: &[NewDelivery<'_>],
) -> Result<Vec<String>> {
    const PER_ROW: usize = 9;
    let now = now_ms();
    let ids: Vec<String> = new.iter().map(|_| new_id("dlv")).collect();
    for (ids, rows) in ids.chunks(PER_STATEMENT).zip(new.chunks(PER_STATEMENT)) {
        let mut marks = sql::Marks::new(conn);
        let values: Vec<String> = (0..rows.len())
            .map(|_| format!("({})", marks.list(PER_ROW)))
            .collect();
        let sql = format!(
            "INSERT INTO deliveries (tenant_id, channel, status, created_at, updated_at, id, pass_id, event_id, target) \
             VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (id, row) in ids.iter().zip(rows) {
            query = query
                .bind(tenant_id)
                .bind(channel.as_str())
                .bind(DeliveryStatus::Pending.as_str())
                .bind(now)
                .bind(now)
                .bind(id.as_str())
                .bind(row.pass_id)
                .bind(row.event_id)
                .bind(row.target);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(ids)
}

/// One attempt's result, and the delivery's status after it.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub new_status: DeliveryStatus,
}

/// Records an attempt and the delivery's new status, then publishes the attempt to
/// the live feed.
pub async fn record_attempt(db: &Db, delivery_id: &str, attempt: &Attempt) -> Result<()> {
    let mut conn = db.background().await?;
    let mut tx = conn.begin().await?;
    let live = record_attempt_in(&mut tx, delivery_id, attempt).await?;
    tx.commit().await?;
    drop(conn);
    db.publish_all(live);
    Ok(())
}

/// [`record_attempt`] on a connection; returns the live event to publish after the
/// commit (the delivery's tenant, channel and pass come back from the same UPDATE, so
/// this costs no extra query).
pub async fn record_attempt_in(
    conn: &mut AnyConnection,
    delivery_id: &str,
    attempt: &Attempt,
) -> Result<Option<LiveEvent>> {
    Ok(record_attempts_in(conn, &[(delivery_id, attempt)])
        .await?
        .pop())
}

/// [`record_attempt_in`] for many deliveries, in multi-row statements; returns the
/// live events to publish after the commit.
pub async fn record_attempts_in(
    conn: &mut AnyConnection,
    attempts: &[(&str, &Attempt)],
) -> Result<Vec<LiveEvent>> {
    let now = now_ms();
    let mut live = Vec::with_capacity(attempts.len());
    // One UPDATE … FROM changes a row once: a delivery twice in a batch is split.
    for rows in sql::distinct_chunks(attempts, |(id, _)| id) {
        insert_attempts(conn, rows, now).await?;
        live.extend(update_deliveries(conn, rows, now).await?);
    }
    Ok(live)
}

/// `delivery_attempts` rows; `$1` (the time) is shared.
async fn insert_attempts(
    conn: &mut AnyConnection,
    rows: &[(&str, &Attempt)],
    now: i64,
) -> Result<()> {
    const PER_ROW: usize = 5;
    let values: Vec<String> = (0..rows.len())
        .map(|r| format!("($1, {})", params(2 + r * PER_ROW, PER_ROW)))
        .collect();
    let sql = format!(
        "INSERT INTO delivery_attempts (attempted_at, id, delivery_id, status_code, latency_ms, error) \
         VALUES {}",
        values.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(now);
    for (delivery_id, attempt) in rows {
        query = query
            .bind(new_id("dat"))
            .bind(*delivery_id)
            .bind(attempt.status_code.map(i64::from))
            .bind(attempt.latency_ms)
            .bind(attempt.error.as_deref());
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Each delivery's new status; returns the attempts for the live feed.
async fn update_deliveries(
    conn: &mut AnyConnection,
    rows: &[(&str, &Attempt)],
    now: i64,
) -> Result<Vec<LiveEvent>> {
    const PER_ROW: usize = 4;
    let values: Vec<String> = (0..rows.len())
        .map(|r| format!("({})", params(2 + r * PER_ROW, PER_ROW)))
        .collect();
    // VALUES columns are column1.. on both backends.
    let sql = format!(
        "UPDATE deliveries SET status = v.column2, attempts = attempts + 1, \
         last_status = v.column3, last_error = v.column4, updated_at = $1 \
         FROM (VALUES {}) AS v WHERE deliveries.id = v.column1 \
         RETURNING id, tenant_id, channel, pass_id",
        values.join(", ")
    );
    let mut query = sqlx::query_as::<_, (String, String, String, Option<String>)>(&sql).bind(now);
    for (delivery_id, attempt) in rows {
        query = query
            .bind(*delivery_id)
            .bind(attempt.new_status.as_str())
            .bind(attempt.status_code.map(i64::from))
            .bind(attempt.error.as_deref());
    }
    let updated: HashMap<String, (String, String, Option<String>)> = query
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, tenant_id, channel, pass_id)| (id, (tenant_id, channel, pass_id)))
        .collect();
    // In the order attempted.
    Ok(rows
        .iter()
        .filter_map(|(delivery_id, attempt)| {
            let (tenant_id, channel, pass_id) = updated.get(*delivery_id)?;
            Some(LiveEvent::new(
                tenant_id,
                LiveKind::Delivery {
                    delivery_id: delivery_id.to_string(),
                    channel: channel.clone(),
                    pass_id: pass_id.clone(),
                    status: attempt.new_status.as_str().to_string(),
                    status_code: attempt.status_code.map(i64::from),
                    latency_ms: attempt.latency_ms,
                    error: attempt.error.clone(),
                },
            ))
        })
        .collect())
}

/// Sets a delivery's status without an attempt: a test's way to reach any state.
#[cfg(feature = "testing")]
pub async fn set_status(
    db: &Db,
    delivery_id: &str,
    status: DeliveryStatus,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE deliveries SET status = $1, last_error = COALESCE($2, last_error), updated_at = $3 WHERE id = $4")
        .bind(status.as_str())
        .bind(error)
        .bind(now_ms())
        .bind(delivery_id)
        .execute(&mut *db.background().await?)
        .await?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryAttempt {
    pub attempted_at: String,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    pub id: String,
    pub channel: String,
    pub pass_id: Option<String>,
    pub event_id: Option<String>,
    pub target: String,
    pub status: String,
    pub attempts: Vec<DeliveryAttempt>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryPage {
    pub items: Vec<Delivery>,
    pub next: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryFilter {
    pub pass_id: Option<String>,
    pub event_id: Option<String>,
    pub channel: Option<ChannelFilter>,
    pub status: Option<String>,
    /// Created at or after (ms).
    pub from_ms: Option<i64>,
    /// Created before (ms).
    pub to_ms: Option<i64>,
    /// Part of the pass id, the target or the last error.
    pub text: Option<String>,
}

impl DeliveryFilter {
    pub(crate) fn conditions(&self, tenant_id: &str) -> Where {
        let mut w = Where::new("tenant_id", tenant_id);
        w.equal(&[
            ("pass_id", &self.pass_id),
            ("event_id", &self.event_id),
            ("status", &self.status),
        ]);
        if let Some(channel) = self.channel {
            w.and(&channel.sql("channel"));
        }
        w.between("created_at", self.from_ms, self.to_ms);
        w.contains(&["pass_id", "target", "last_error"], self.text.as_deref());
        w
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    channel: String,
    pass_id: Option<String>,
    event_id: Option<String>,
    target: String,
    status: String,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// Deliveries newest first, with their attempts.
pub async fn list(
    db: &Db,
    tenant_id: &str,
    filter: &DeliveryFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<DeliveryPage> {
    let limit = limit.clamp(1, 500) as usize;
    let mut w = filter.conditions(tenant_id);
    w.before("created_at", "id", cursor)?;
    let sql = format!(
        "SELECT id, channel, pass_id, event_id, target, status, last_error, created_at, updated_at \
         FROM deliveries WHERE {} ORDER BY created_at DESC, id DESC LIMIT {}",
        w.sql,
        limit + 1
    );
    let query = w.bind(sqlx::query_as::<_, Row>(&sql));
    let mut rows = query.fetch_all(db.reader()).await?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| sql::cursor(r.created_at, &r.id))
    } else {
        None
    };
    let mut attempts = attempts_of(db, rows.iter().map(|r| r.id.as_str())).await?;
    let items = rows
        .into_iter()
        .map(|r| Delivery {
            attempts: attempts.remove(&r.id).unwrap_or_default(),
            id: r.id,
            channel: r.channel,
            pass_id: r.pass_id,
            event_id: r.event_id,
            target: r.target,
            status: r.status,
            last_error: r.last_error,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        })
        .collect();
    Ok(DeliveryPage { items, next })
}

/// The attempts of several deliveries in one query, oldest first per delivery.
async fn attempts_of<'a>(
    db: &Db,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, Vec<DeliveryAttempt>>> {
    let ids: Vec<&str> = ids.collect();
    let mut out: HashMap<String, Vec<DeliveryAttempt>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT delivery_id, attempted_at, status_code, latency_ms, error FROM delivery_attempts \
         WHERE delivery_id IN ({}) ORDER BY attempted_at, id",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, (String, i64, Option<i64>, i64, Option<String>)>(&sql);
    for id in ids {
        query = query.bind(id);
    }
    for (delivery_id, at, status_code, latency_ms, error) in query.fetch_all(db.reader()).await? {
        out.entry(delivery_id).or_default().push(DeliveryAttempt {
            attempted_at: rfc3339(at),
            status_code,
            latency_ms,
            error,
        });
    }
    Ok(out)
}
