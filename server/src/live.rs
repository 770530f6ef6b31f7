//! `GET /console/live`: the console's live feed as server-sent events.
//!
//! Signed-in people (admins and marketers) receive every [`LiveEvent`] of the
//! tenant their session acts for, one SSE event each:
//!
//! ```text
//! id: 1717171717171-k3j4h5g6
//! event: inbound            (or pass, delivery)
//! data: {"id":"1717171717171-k3j4h5g6","tenantId":"acme","at":1717171717171,"type":"inbound",…}
//! ```
//!
//! A keep-alive comment goes out every 15 s. A client reconnecting with
//! `Last-Event-ID` first gets what it missed (from this process's recent events).
//! When the client falls too far behind, it gets `event: reset` with `data: {}`:
//! it should reload what it shows, and the stream carries on. The session is checked
//! again every minute; once it is no longer valid the stream ends. Streams also end
//! when the server shuts down.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use domain::live::LiveEvent;
use tokio::sync::broadcast::{error::RecvError, Receiver};
use tokio::time::Instant;
use tower_sessions::Session;

use crate::problem::Problem;
use crate::state::AppState;

pub const PATH: &str = "/console/live";
const KEEP_ALIVE: Duration = Duration::from_secs(15);
const RECHECK: Duration = Duration::from_secs(60);

pub fn router() -> Router<AppState> {
    Router::new().route(PATH, get(live))
}

/// The tenant the session acts for, if it is signed in with an enabled account, was
/// not signed out everywhere, and still belongs to a tenant.
async fn session_tenant(db: &domain::db::Db, session: &Session) -> Result<Option<String>, Problem> {
    let internal = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "cannot read the console session");
        Problem::internal()
    };
    let caller = app::ssr::caller_of(db, session)
        .await
        .map_err(|e| internal(&e))?;
    Ok(caller.map(|c| c.tenant.tenant_id))
}

fn unauthenticated() -> Problem {
    Problem::new(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "Sign in to the console to follow its live feed.",
    )
}

async fn live(
    State(state): State<AppState>,
    session: Session,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let db = state.core.db.clone();
    let Some(tenant_id) = session_tenant(&db, &session).await? else {
        return Err(unauthenticated());
    };
    let receiver = db.subscribe();
    // On PostgreSQL the first subscription starts LISTEN; answer once it is in place,
    // so a client that saw the headers misses nothing after them.
    if !db.live_ready(Duration::from_secs(5)).await {
        tracing::warn!("the live feed is not listening yet");
    }
    let replay: VecDeque<LiveEvent> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|last| db.live_since(&tenant_id, last.trim()).into())
        .unwrap_or_default();
    let feed = Feed {
        replayed: replay.iter().map(|e| e.id.clone()).collect(),
        replay,
        receiver,
        tenant_id,
        db,
        session,
        recheck_at: Instant::now() + RECHECK,
        stopping: state.stopping.clone(),
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok::<_, Infallible>(event), feed))
    });
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// One subscriber's position in the feed.
struct Feed {
    tenant_id: String,
    receiver: Receiver<LiveEvent>,
    /// Missed events to send first, and their ids (skipped when they come live).
    replay: VecDeque<LiveEvent>,
    replayed: HashSet<String>,
    db: domain::db::Db,
    session: Session,
    recheck_at: Instant,
    /// The server is shutting down: the stream ends (the client reconnects elsewhere).
    stopping: tokio_util::sync::CancellationToken,
}

impl Feed {
    /// The next SSE event, or `None` to end the stream.
    async fn next(&mut self) -> Option<Event> {
        if let Some(event) = self.replay.pop_front() {
            return Some(sse(&event));
        }
        loop {
            tokio::select! {
                _ = self.stopping.cancelled() => return None,
                received = self.receiver.recv() => match received {
                    Ok(event) if event.tenant_id == self.tenant_id => {
                        if !self.replayed.is_empty() && self.replayed.remove(&event.id) {
                            continue;
                        }
                        return Some(sse(&event));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "a live subscriber fell behind");
                        return Some(Event::default().event("reset").data("{}"));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = tokio::time::sleep_until(self.recheck_at) => {
                    self.recheck_at = Instant::now() + RECHECK;
                    match session_tenant(&self.db, &self.session).await {
                        Ok(Some(tenant)) if tenant == self.tenant_id => {}
                        // Signed out, disabled, or moved to another tenant: the
                        // client reconnects and is answered afresh.
                        Ok(_) => return None,
                        Err(_) => {}
                    }
                }
            }
        }
    }
}

fn sse(event: &LiveEvent) -> Event {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".into());
    Event::default()
        .id(event.id.clone())
        .event(event.kind.name())
        .data(data)
}
