//! The life of an Actito profile CREATE/UPDATE event: the listener checks the event
//! is for the profile table the tenant configured and stores it with one job per
//! profile ([`accept`]); a worker reads the full profile from Actito's API, keeps it
//! as the customer, and applies the mapped attributes to the customer's passes
//! ([`run`]).

use std::time::Duration;

use serde_json::Value;
use sqlx::Connection;

use super::client::ActitoError;
use super::envelope::{self, scalar_text, EnvelopeError};
use super::settings;
use crate::core::Core;
use crate::crypto::sha256_hex;
use crate::customers;
use crate::error::DomainError;
use crate::events::{Inbound, Ingested};
use crate::jobs::Job;
use crate::passes::apply::{apply_all, live};
use crate::passes::{self, Cause, Data, Update};
use crate::tasks::{Failure, Profile, Task};

/// A profile event, as the listener received it.
pub struct Request {
    pub tenant_id: String,
    pub key_id: String,
    /// The path's event type.
    pub event_type: String,
    /// The request's headers as the audit keeps them.
    pub headers: Value,
    pub body: Vec<u8>,
}

/// An event stored with its jobs.
pub struct Accepted {
    pub ingested: Ingested,
    pub profiles: usize,
}

/// Why an event was not stored. The body comes back for the audit.
pub enum Refusal {
    /// The path names an event type other than CREATE and UPDATE.
    UnsupportedEvent {
        event_type: String,
        body: Vec<u8>,
    },
    Envelope {
        error: EnvelopeError,
        body: Vec<u8>,
    },
    /// The event is for another table than the one Passhook reads: reading the
    /// configured table instead would update passes from another table's profiles.
    OtherTable {
        table_id: String,
        configured: String,
        body: Vec<u8>,
    },
    /// Actito is not configured for the tenant, so no profile can be read.
    NotConfigured {
        body: Vec<u8>,
    },
    Store(DomainError),
}

/// The listener's part.
pub async fn accept(core: &Core, request: Request) -> Result<Accepted, Refusal> {
    let Request {
        tenant_id,
        key_id,
        event_type,
        headers,
        body,
    } = request;
    if !matches!(event_type.as_str(), "CREATE" | "UPDATE") {
        return Err(Refusal::UnsupportedEvent { event_type, body });
    }
    let (envelope_id, event) = match envelope::parse(&body)
        .and_then(|e| Ok((e.id.clone(), envelope::profile_event(&e, &event_type)?)))
    {
        Ok(parsed) => parsed,
        Err(error) => return Err(Refusal::Envelope { error, body }),
    };
    match settings::get(core.vault(), &tenant_id).await {
        Ok(Some(s)) if !event.table_id.is_empty() && event.table_id != s.profile_table_id => {
            return Err(Refusal::OtherTable {
                table_id: event.table_id,
                configured: s.profile_table_id,
                body,
            })
        }
        Ok(Some(_)) => {}
        Ok(None) => return Err(Refusal::NotConfigured { body }),
        Err(e) => return Err(Refusal::Store(e)),
    }
    let jobs = event
        .profile_ids
        .iter()
        .map(|id| {
            Task::Profile(Profile {
                profile_id: id.clone(),
            })
            .job(&tenant_id)
        })
        .collect();
    let inbound = Inbound {
        tenant_id,
        source: "actito",
        kind: format!("profile.{event_type}"),
        headers,
        body: String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        // Actito's ONE_BY_ONE and BULK pushes may share an envelope id (the seed's
        // samples do): the profiles are part of what makes a push the same.
        dedupe_key: Some(format!(
            "profile.{event_type}:{envelope_id}:{}",
            sha256_hex(&event.profile_ids.join(","))
        )),
        key_id: Some(key_id),
        items: event.profile_ids.len() as i64,
        ..Default::default()
    };
    let ingested = core
        .ingestor
        .ingest(inbound, None, jobs)
        .await
        .map_err(Refusal::Store)?;
    core.jobs_ready.notify_one();
    Ok(Accepted {
        ingested,
        profiles: event.profile_ids.len(),
    })
}

/// The worker's part: reads the profile (waiting as long as Actito's `Retry-After`
/// asks when it is busy), keeps it as the customer and, when a mapped attribute
/// changed, applies the mapped data to every pass the profile's identifiers find.
pub async fn run(core: &Core, job: &Job, task: &Profile) -> Result<(), Failure> {
    let tenant_id = &job.tenant_id;
    let settings = settings::get(core.vault(), tenant_id)
        .await?
        .ok_or_else(|| Failure::Fatal("Actito is not configured for this tenant".into()))?;
    let attributes = match core.actito.profile(&settings, &task.profile_id).await {
        Ok(attributes) => attributes,
        Err(ActitoError::Refused(message)) => return Err(Failure::Fatal(message)),
        Err(ActitoError::Unavailable {
            message,
            retry_after_ms,
        }) => {
            return Err(Failure::Retry {
                after: retry_after_ms.map(|ms| Duration::from_millis(ms.max(0) as u64)),
                why: message,
            })
        }
    };
    let identifiers: Vec<(String, String)> = settings
        .identifier_mapping
        .iter()
        .filter_map(|(attr, ident)| Some((ident.clone(), scalar_text(attributes.get(attr)?)?)))
        .collect();
    let data: Data = settings
        .data_mapping
        .iter()
        .filter_map(|(attr, key)| Some((key.clone(), attributes.get(attr)?.clone())))
        .map(|(k, v)| (k, flat(v)))
        .collect();
    let mut conn = core.db.background().await?;
    let mut tx = conn.begin().await?;
    let mut applied = Vec::new();
    let before = customers::upsert(&mut tx, tenant_id, &task.profile_id, &attributes).await?;
    let mapped_changed = before.is_empty()
        || settings
            .data_mapping
            .iter()
            .any(|(attr, _)| before.get(attr) != attributes.get(attr));
    if mapped_changed && !data.is_empty() {
        let cause = Cause {
            source: "actito".into(),
            actor: Some(format!("profile {}", task.profile_id)),
            event_id: job.event_id.clone(),
            ..Default::default()
        };
        let update = Update {
            changes: &data,
            cause: &cause,
            message: None,
        };
        let found = passes::find_any(&mut tx, tenant_id, &identifiers, None).await?;
        let updates: Vec<(&str, Update)> = found.iter().map(|id| (id.as_str(), update)).collect();
        let results = apply_all(&mut tx, tenant_id, &updates).await?;
        applied.extend(
            results
                .iter()
                .flatten()
                .filter_map(|patched| live(tenant_id, patched, job.event_id.as_deref())),
        );
    }
    tx.commit().await?;
    drop(conn);
    core.db.publish_all(applied);
    Ok(())
}

/// A pass field holds a scalar: a list or an object goes on as its JSON text.
fn flat(value: Value) -> Value {
    if value.is_array() || value.is_object() {
        Value::String(value.to_string())
    } else {
        value
    }
}
