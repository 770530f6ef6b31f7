//! Group commit for inbound events. Listeners hand their events to one writer task,
//! which stores whatever has queued up meanwhile in a single transaction: one
//! durable commit (one fsync on SQLite) acknowledges many requests, and no request
//! waits for a timer, since a batch is simply what arrived during the last commit.

use serde_json::Value;
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
use crate::error::{DomainError, Result};
use crate::events::{self, Inbound, Ingested};
use crate::ids::new_id;
use crate::jobs::{self, NewJob};
use crate::live::LiveEvent;

/// Events stored per commit at most.
const MAX_BATCH: usize = 256;

struct Request {
    inbound: Inbound,
    response: Option<Value>,
    jobs: Vec<NewJob>,
    reply: oneshot::Sender<Result<Ingested>>,
}

/// The handle listeners store events through; cheap to clone.
#[derive(Clone)]
pub struct Ingestor {
    sender: mpsc::Sender<Request>,
}

impl Ingestor {
    /// Starts the writer task (it ends when the last handle is dropped).
    pub fn start(db: Db) -> Ingestor {
        let (sender, receiver) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(write_batches(db, receiver));
        Ingestor { sender }
    }

    /// Stores the event with its jobs; returns once they are committed.
    pub async fn ingest(
        &self,
        inbound: Inbound,
        response: Option<Value>,
        jobs: Vec<NewJob>,
    ) -> Result<Ingested> {
        let (reply, answer) = oneshot::channel();
        let request = Request {
            inbound,
            response,
            jobs,
            reply,
        };
        self.sender
            .send(request)
            .await
            .map_err(|_| DomainError::Internal("the event writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| DomainError::Internal("the event writer dropped a request".into()))?
    }
}

async fn write_batches(db: Db, mut receiver: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write(&db, &batch).await {
            Ok((results, live)) => {
                db.publish_all(live);
                for (request, result) in batch.drain(..).zip(results) {
                    let _ = request.reply.send(Ok(result));
                }
            }
            // The database is unreachable: storing one by one would only make every
            // caller wait for its own timeout in turn. Each gets its 503 now.
            Err(e) if e.is_unavailable() => {
                tracing::warn!(error = %e, events = batch.len(), "cannot store inbound events");
                for request in batch.drain(..) {
                    let error = std::io::Error::other(e.to_string());
                    let _ = request
                        .reply
                        .send(Err(DomainError::Db(sqlx::Error::Io(error))));
                }
            }
            // One bad event must not fail the others: store them one by one (each
            // published by `events::ingest`).
            Err(_) => {
                for request in batch.drain(..) {
                    let result = events::ingest(
                        &db,
                        &request.inbound,
                        request.response.as_ref(),
                        request.jobs,
                    )
                    .await;
                    let _ = request.reply.send(result);
                }
            }
        }
    }
}

/// Stores a batch in one transaction: the events in multi-row INSERTs, then every new
/// event's jobs in multi-row INSERTs. Requests whose dedupe key was taken (a
/// duplicate, possibly within this batch, or a key past its window) go one by one.
async fn write(db: &Db, batch: &[Request]) -> Result<(Vec<Ingested>, Vec<LiveEvent>)> {
    let mut conn = db.priority().await?;
    let mut tx = conn.begin().await?;
    let ids: Vec<String> = batch.iter().map(|_| new_id("evt")).collect();
    let rows: Vec<_> = batch
        .iter()
        .zip(&ids)
        .map(|(r, id)| (&r.inbound, r.response.as_ref(), id.as_str()))
        .collect();
    let inserted = events::insert_new(&mut tx, &rows).await?;
    let mut results = Vec::with_capacity(batch.len());
    let mut jobs = Vec::new();
    for (request, id) in batch.iter().zip(ids) {
        if inserted.contains(&id) {
            jobs.extend(request.jobs.iter().map(|j| j.clone().for_event(&id)));
            results.push(Ingested::New { event_id: id });
        } else {
            let ingested = events::ingest_in(
                &mut tx,
                &request.inbound,
                request.response.as_ref(),
                request.jobs.clone(),
            )
            .await?;
            results.push(ingested);
        }
    }
    jobs::enqueue(&mut tx, &jobs).await?;
    // Accepted now (not duplicates): on the live feed with the commit.
    let mut live: Vec<LiveEvent> = batch
        .iter()
        .zip(&results)
        .filter_map(|(request, result)| match result {
            Ingested::New { event_id } => Some(request.inbound.live(event_id)),
            Ingested::Duplicate { .. } => None,
        })
        .collect();
    if db.notify_in(&mut tx, &live).await? {
        live.clear();
    }
    tx.commit().await?;
    Ok((results, live))
}
