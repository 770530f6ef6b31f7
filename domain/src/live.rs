//! The live feed: what happens in each tenant (events stored or settled, passes
//! changed, deliveries attempted), as it happens, for the console.
//!
//! The feed lives with the storage adapter. [`Db::publish`] never blocks and never
//! fails its caller; [`Db::subscribe`] hands out a broadcast receiver of every
//! tenant's events (the subscriber filters).
//!
//! - **SQLite** (one process): publishing goes straight to an in-process broadcast.
//! - **PostgreSQL** (several replicas): publishing hands the event to a background
//!   task that sends it with `pg_notify('passhook_live', …)` (events queued meanwhile
//!   share one notification: a JSON array under 7 900 bytes). A `LISTEN` task,
//!   started on the first subscription, feeds every notification into the local
//!   broadcast, so each replica sees every replica's events, its own included.
//!
//! A ring of the last [`RING`] events (all tenants) lets a client that reconnects
//! catch up with [`Db::live_since`].
//!
//! [`Db::publish`]: crate::db::Db::publish
//! [`Db::subscribe`]: crate::db::Db::subscribe
//! [`Db::live_since`]: crate::db::Db::live_since

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use tokio::sync::{broadcast, mpsc, watch};

use crate::clock::now_ms;

/// The PostgreSQL channel the replicas share.
pub const CHANNEL: &str = "passhook_live";
/// Events kept for resuming.
pub const RING: usize = 2_000;
/// Events a slow subscriber may fall behind before it is told to reload.
pub const CAPACITY: usize = 1_024;
/// PostgreSQL refuses payloads of 8 000 bytes and more.
const MAX_PAYLOAD: usize = 7_900;
/// Events waiting for `pg_notify` at most; more are dropped (and logged).
const OUTBOX: usize = 16_384;
/// Free text (errors, reasons) is cut to this many characters.
const TEXT_LIMIT: usize = 300;

/// One thing that happened in a tenant.
///
/// JSON: `{"id":…,"tenantId":…,"at":<ms>,"type":"inbound"|"pass"|"delivery", …fields}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveEvent {
    /// Unique and sortable: 13 digits of milliseconds, a dash, 8 random characters.
    pub id: String,
    pub tenant_id: String,
    /// When it was published (UTC ms).
    pub at: i64,
    #[serde(flatten)]
    pub kind: LiveKind,
}

/// What happened, with its data (internally tagged by `type`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum LiveKind {
    /// An inbound event was stored or changed status (`accepted`, `rejected`,
    /// `processed`, `failed`).
    #[serde(rename_all = "camelCase")]
    Inbound {
        event_id: String,
        source: String,
        kind: String,
        status: String,
        reason: Option<String>,
        journey_id: Option<String>,
        key_value: Option<String>,
    },
    /// A pass update was applied.
    #[serde(rename_all = "camelCase")]
    Pass {
        pass_id: String,
        version: i64,
        event_id: Option<String>,
        significant: bool,
    },
    /// A delivery attempt was recorded.
    #[serde(rename_all = "camelCase")]
    Delivery {
        delivery_id: String,
        channel: String,
        pass_id: Option<String>,
        status: String,
        status_code: Option<i64>,
        latency_ms: i64,
        error: Option<String>,
    },
}

impl LiveKind {
    /// The `type` member: `inbound`, `pass` or `delivery`.
    pub fn name(&self) -> &'static str {
        match self {
            LiveKind::Inbound { .. } => "inbound",
            LiveKind::Pass { .. } => "pass",
            LiveKind::Delivery { .. } => "delivery",
        }
    }
}

impl LiveEvent {
    /// A new event of `tenant_id`, stamped now with a fresh id.
    pub fn new(tenant_id: &str, kind: LiveKind) -> LiveEvent {
        let at = now_ms();
        LiveEvent {
            id: new_live_id(at),
            tenant_id: tenant_id.to_string(),
            at,
            kind: kind.trimmed(),
        }
    }
}

impl LiveKind {
    /// Cuts free text, so an event always fits in a notification.
    fn trimmed(mut self) -> LiveKind {
        let cut = |text: &mut Option<String>| {
            if let Some(t) = text {
                if t.chars().count() > TEXT_LIMIT {
                    *t = t.chars().take(TEXT_LIMIT).collect::<String>() + "…";
                }
            }
        };
        match &mut self {
            LiveKind::Inbound { reason, .. } => cut(reason),
            LiveKind::Delivery { error, .. } => cut(error),
            LiveKind::Pass { .. } => {}
        }
        self
    }
}

/// `{ms:013}-{8 random characters}`: string order is time order to the millisecond.
pub fn new_live_id(at_ms: i64) -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let suffix: String = (0..8)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{at_ms:013}-{suffix}")
}

/// The feed of one process: the broadcast, the ring, and on PostgreSQL the tasks
/// that carry events through NOTIFY. Cheap to clone.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    sender: broadcast::Sender<LiveEvent>,
    ring: Mutex<VecDeque<LiveEvent>>,
    postgres: Option<Postgres>,
}

struct Postgres {
    url: String,
    pool: AnyPool,
    outbox: OnceLock<mpsc::Sender<LiveEvent>>,
    /// `true` once LISTEN is in place; the sender is made on the first subscription.
    listening: OnceLock<watch::Receiver<bool>>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live")
            .field("postgres", &self.inner.postgres.is_some())
            .finish_non_exhaustive()
    }
}

impl Live {
    /// An in-process feed (SQLite).
    pub fn local() -> Live {
        Live::build(None)
    }

    /// A feed carried by NOTIFY on the database at `url`, sent through `pool`.
    pub fn postgres(url: &str, pool: AnyPool) -> Live {
        Live::build(Some(Postgres {
            url: url.to_string(),
            pool,
            outbox: OnceLock::new(),
            listening: OnceLock::new(),
        }))
    }

    fn build(postgres: Option<Postgres>) -> Live {
        let (sender, _) = broadcast::channel(CAPACITY);
        Live {
            inner: Arc::new(Inner {
                sender,
                ring: Mutex::new(VecDeque::with_capacity(RING)),
                postgres,
            }),
        }
    }

    /// Publishes an event; never blocks, never fails (a full outbox drops it).
    pub fn publish(&self, event: LiveEvent) {
        let Some(pg) = &self.inner.postgres else {
            self.deliver(event);
            return;
        };
        let outbox = pg.outbox.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(OUTBOX);
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(notify(pg.pool.clone(), receiver));
                }
                Err(_) => tracing::warn!("live feed: no runtime, events are dropped"),
            }
            sender
        });
        if let Err(e) = outbox.try_send(event) {
            tracing::warn!(error = %e, "live feed: an event was dropped");
        }
    }

    /// Publishes several events.
    pub fn publish_all(&self, events: impl IntoIterator<Item = LiveEvent>) {
        for event in events {
            self.publish(event);
        }
    }

    /// Every tenant's events from now on (on PostgreSQL, from when LISTEN is in
    /// place: await [`Live::listening`] to be sure).
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        let receiver = self.inner.sender.subscribe();
        if let Some(pg) = &self.inner.postgres {
            pg.listening.get_or_init(|| {
                let (ready, listening) = watch::channel(false);
                match tokio::runtime::Handle::try_current() {
                    Ok(handle) => {
                        handle.spawn(listen(pg.url.clone(), Arc::downgrade(&self.inner), ready));
                    }
                    Err(_) => tracing::warn!("live feed: no runtime, nothing is received"),
                }
                listening
            });
        }
        receiver
    }

    /// Waits (at most `timeout`) until subscribers receive events: at once on
    /// SQLite; on PostgreSQL once LISTEN is in place. False on timeout.
    pub async fn listening(&self, timeout: Duration) -> bool {
        let Some(pg) = &self.inner.postgres else {
            return true;
        };
        let Some(listening) = pg.listening.get() else {
            return false;
        };
        let mut listening = listening.clone();
        tokio::time::timeout(timeout, listening.wait_for(|ready| *ready))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Events of `tenant_id` in the ring that came after `last_event_id`: those
    /// received after it when this process saw it, else those whose id sorts after
    /// it. Clients should ignore ids they already have.
    pub fn since(&self, tenant_id: &str, last_event_id: &str) -> Vec<LiveEvent> {
        let ring = self
            .inner
            .ring
            .lock()
            .expect("the live ring is never poisoned");
        let position = ring.iter().rposition(|e| e.id == last_event_id);
        ring.iter()
            .enumerate()
            .filter(|(i, e)| match position {
                Some(p) => *i > p,
                None => e.id.as_str() > last_event_id,
            })
            .map(|(_, e)| e)
            .filter(|e| e.tenant_id == tenant_id)
            .cloned()
            .collect()
    }

    fn deliver(&self, event: LiveEvent) {
        self.inner.deliver(event);
    }
}

impl Inner {
    /// Into the ring and out to this process's subscribers.
    fn deliver(&self, event: LiveEvent) {
        {
            let mut ring = self.ring.lock().expect("the live ring is never poisoned");
            if ring.len() == RING {
                ring.pop_front();
            }
            ring.push_back(event.clone());
        }
        // No subscriber is not an error.
        let _ = self.sender.send(event);
    }
}

/// JSON arrays of events, each under [`MAX_PAYLOAD`] bytes.
fn payloads(events: &[LiveEvent]) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::from("[");
    for event in events {
        let Ok(json) = serde_json::to_string(event) else {
            continue;
        };
        if json.len() + 2 > MAX_PAYLOAD {
            tracing::warn!(id = %event.id, "live feed: an event too large to notify was dropped");
            continue;
        }
        if current.len() > 1 && current.len() + json.len() + 2 > MAX_PAYLOAD {
            current.push(']');
            out.push(std::mem::replace(&mut current, String::from("[")));
        }
        if current.len() > 1 {
            current.push(',');
        }
        current.push_str(&json);
    }
    if current.len() > 1 {
        current.push(']');
        out.push(current);
    }
    out
}

impl Live {
    /// Whether events travel by NOTIFY (PostgreSQL) rather than in-process.
    pub fn notifies(&self) -> bool {
        self.inner.postgres.is_some()
    }
}

/// Queues `events` as notifications of the caller's transaction: PostgreSQL delivers
/// them when (and only if) it commits, so a process killed right after the commit
/// loses none of them.
pub async fn notify_in(
    conn: &mut sqlx::AnyConnection,
    events: &[LiveEvent],
) -> Result<(), sqlx::Error> {
    for payload in payloads(events) {
        pg_notify(&payload).execute(&mut *conn).await?;
    }
    Ok(())
}

fn pg_notify(payload: &str) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
}

/// Sends queued events with `pg_notify`, batching what queued up meanwhile.
async fn notify(pool: AnyPool, mut receiver: mpsc::Receiver<LiveEvent>) {
    let mut batch = Vec::with_capacity(256);
    while receiver.recv_many(&mut batch, 256).await > 0 {
        for payload in payloads(&batch) {
            let sent = pg_notify(&payload).execute(&pool).await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "live feed: cannot notify");
            }
        }
        batch.clear();
    }
}

/// LISTENs and feeds every notification into the local broadcast; reconnects with
/// backoff (events sent while disconnected are missed).
async fn listen(url: String, live: Weak<Inner>, ready: watch::Sender<bool>) {
    let mut backoff = Duration::from_millis(100);
    // When the last connection was lost: notifications sent since then were missed.
    let mut lost_at: Option<i64> = None;
    // Ends once the feed is gone (its database handle was dropped).
    while live.strong_count() > 0 {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect(&url).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "live feed: cannot LISTEN");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        if let Some(since) = lost_at {
            // Listening again: what happened while deaf comes from the database
            // (anything later arrives as notifications, so nothing falls between).
            match missed_events(&mut listener, since).await {
                Ok(events) => {
                    let Some(live) = live.upgrade() else { return };
                    events.into_iter().for_each(|e| live.deliver(e));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live feed: cannot catch up; reconnecting");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
        }
        let _ = ready.send(true);
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<Vec<LiveEvent>>(notification.payload()) {
                        Ok(events) => {
                            let Some(live) = live.upgrade() else { return };
                            events.into_iter().for_each(|e| live.deliver(e));
                        }
                        Err(e) => tracing::warn!(error = %e, "live feed: unreadable notification"),
                    }
                }
                Ok(None) => {
                    tracing::warn!("live feed: the LISTEN connection was lost; reconnecting");
                    lost_at = Some(now_ms());
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "live feed: LISTEN failed; reconnecting");
                    lost_at = Some(now_ms());
                    let _ = ready.send(false);
                    tokio::time::sleep(backoff).await;
                    break;
                }
            }
        }
    }
}

/// Inbound events stored or settled since `since` (with a margin for clocks and
/// in-flight commits), as live events; at most [`RING`].
async fn missed_events(
    listener: &mut sqlx::postgres::PgListener,
    since: i64,
) -> Result<Vec<LiveEvent>, sqlx::Error> {
    type Row = (
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, tenant_id, source, kind, status, reason, journey_id, key_value \
         FROM inbound_events WHERE received_at >= $1 OR processed_at >= $1 \
         ORDER BY received_at LIMIT $2",
    )
    .bind(since - 5_000)
    .bind(RING as i64)
    .fetch_all(&mut *listener)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(event_id, tenant_id, source, kind, status, reason, journey_id, key_value)| {
                LiveEvent::new(
                    &tenant_id,
                    LiveKind::Inbound {
                        event_id,
                        source,
                        kind,
                        status,
                        reason,
                        journey_id,
                        key_value,
                    },
                )
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(tenant: &str, version: i64) -> LiveEvent {
        LiveEvent::new(
            tenant,
            LiveKind::Pass {
                pass_id: "pass_1".into(),
                version,
                event_id: None,
                significant: false,
            },
        )
    }

    #[test]
    fn events_serialise_flat_with_their_type() {
        let event = LiveEvent {
            id: "0000000000001-abcdefgh".into(),
            tenant_id: "acme".into(),
            at: 1,
            kind: LiveKind::Inbound {
                event_id: "evt_1".into(),
                source: "actito".into(),
                kind: "custom-action.updatePass".into(),
                status: "rejected".into(),
                reason: Some("UNAUTHENTICATED".into()),
                journey_id: None,
                key_value: None,
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "0000000000001-abcdefgh", "tenantId": "acme", "at": 1,
                "type": "inbound", "eventId": "evt_1", "source": "actito",
                "kind": "custom-action.updatePass", "status": "rejected",
                "reason": "UNAUTHENTICATED", "journeyId": null, "keyValue": null})
        );
        assert_eq!(serde_json::from_value::<LiveEvent>(json).unwrap(), event);
    }

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let a = new_live_id(1_700_000_000_000);
        let b = new_live_id(1_700_000_000_001);
        assert_eq!(a.len(), 22);
        assert!(a < b);
        assert_ne!(new_live_id(5), new_live_id(5));
    }

    #[test]
    fn payloads_stay_under_the_notify_limit() {
        let events: Vec<LiveEvent> = (0..200).map(|v| pass("acme", v)).collect();
        let payloads = payloads(&events);
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() < MAX_PAYLOAD);
            back.extend(serde_json::from_str::<Vec<LiveEvent>>(p).unwrap());
        }
        assert_eq!(back, events);
    }

    #[tokio::test]
    async fn the_ring_resumes_in_order_for_one_tenant() {
        let live = Live::local();
        let mut receiver = live.subscribe();
        let events: Vec<LiveEvent> = (0..10)
            .map(|v| pass(if v % 2 == 0 { "acme" } else { "other" }, v))
            .collect();
        live.publish_all(events.clone());
        assert_eq!(receiver.recv().await.unwrap(), events[0]);
        let since = live.since("acme", &events[3].id);
        let versions: Vec<i64> = since
            .iter()
            .map(|e| match e.kind {
                LiveKind::Pass { version, .. } => version,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(versions, vec![4, 6, 8]);
        // An id this process never saw: whatever sorts after it.
        assert_eq!(live.since("acme", "0").len(), 5);
        assert!(live.since("acme", "9999999999999").is_empty());
    }

    #[test]
    fn the_ring_keeps_the_newest() {
        let live = Live::local();
        for v in 0..(RING as i64 + 10) {
            live.publish(pass("acme", v));
        }
        let all = live.since("acme", "0");
        assert_eq!(all.len(), RING);
        assert!(matches!(all[0].kind, LiveKind::Pass { version: 10, .. }));
    }
}
