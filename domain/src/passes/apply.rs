//! The one way a pass's content changes: patch it, decide whether the change is
//! significant (a message, or a field its pass type notifies about), record in the
//! same transaction that its wallets owe a refresh, and publish the live event once
//! committed. Every flow (the API's PATCH, Actito, SFMC) comes through here.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::{patch_many, Cause, Data, Patched, Update};
use crate::db::Db;
use crate::error::{DomainError, Result};
use crate::live::{LiveEvent, LiveKind};
use crate::wallet::delivery::{self, Owed};
use crate::wallet::pass_types;

/// Applies one update in its own transaction and publishes it.
pub async fn apply(db: &Db, tenant_id: &str, pass_id: &str, update: Update<'_>) -> Result<Patched> {
    let mut tx = db.writer().begin().await?;
    let patched = apply_all(&mut tx, tenant_id, &[(pass_id, update)])
        .await?
        .pop()
        .flatten()
        .ok_or(DomainError::NotFound("pass"))?;
    tx.commit().await?;
    db.publish_all(live(tenant_id, &patched, update.cause.event_id.as_deref()));
    Ok(patched)
}

/// Applies many updates, in order, in the caller's transaction and in a few
/// statements (a BULK chunk, a run of custom actions); `None` for a pass that does
/// not exist. Updates to one pass coalesce into one owed refresh (the newest version,
/// significant if any of them was). Callers publish [`live`] of the results once
/// their transaction is committed.
pub async fn apply_all(
    conn: &mut AnyConnection,
    tenant_id: &str,
    updates: &[(&str, Update<'_>)],
) -> Result<Vec<Option<Patched>>> {
    let mut results = patch_many(conn, tenant_id, updates).await?;
    let mut types = PassTypes::default();
    let mut owed = Vec::new();
    for ((pass_id, update), patched) in updates.iter().zip(results.iter_mut()) {
        let Some(patched) = patched.as_mut().filter(|p| !p.changes.is_empty()) else {
            continue;
        };
        let changed: Vec<&str> = patched.changes.iter().map(|c| c.key.as_str()).collect();
        let worthy = types
            .notify_worthy(conn, tenant_id, &patched.pass.pass_type, &changed)
            .await?;
        patched.significant = patched.significant || worthy;
        owed.push(Owed {
            pass_id,
            version: patched.pass.version,
            significant: patched.significant,
            message: update.message,
        });
    }
    delivery::owe_many(conn, tenant_id, &owed).await?;
    Ok(results)
}

/// Pass types read at most once per batch (a BULK chunk touches many passes of few
/// types).
#[derive(Default)]
struct PassTypes(HashMap<String, Option<pass_types::PassType>>);

impl PassTypes {
    async fn notify_worthy(
        &mut self,
        conn: &mut AnyConnection,
        tenant_id: &str,
        pass_type: &str,
        changed: &[&str],
    ) -> Result<bool> {
        if !self.0.contains_key(pass_type) {
            let found = pass_types::get_in(conn, tenant_id, pass_type).await?;
            self.0.insert(pass_type.to_string(), found);
        }
        Ok(self.0[pass_type]
            .as_ref()
            .is_some_and(|t| t.notify_worthy(changed)))
    }
}

/// An update of one pass planned by a flow, owned until its run is applied.
pub struct Planned {
    pub pass_id: String,
    pub changes: Data,
    pub cause: Cause,
    pub message: Option<String>,
}

/// Applies planned updates together in the caller's transaction; returns the live
/// events to publish after the commit.
pub async fn apply_planned(
    conn: &mut AnyConnection,
    tenant_id: &str,
    planned: &[Planned],
) -> Result<Vec<LiveEvent>> {
    let updates: Vec<(&str, Update)> = planned
        .iter()
        .map(|p| {
            let update = Update {
                changes: &p.changes,
                cause: &p.cause,
                message: p.message.as_deref(),
            };
            (p.pass_id.as_str(), update)
        })
        .collect();
    let results = apply_all(conn, tenant_id, &updates).await?;
    Ok(results
        .iter()
        .zip(planned)
        .filter_map(|(patched, p)| live(tenant_id, patched.as_ref()?, p.cause.event_id.as_deref()))
        .collect())
}

/// The live-feed event of an applied update, if it changed the pass.
pub fn live(tenant_id: &str, patched: &Patched, event_id: Option<&str>) -> Option<LiveEvent> {
    (!patched.changes.is_empty()).then(|| {
        LiveEvent::new(
            tenant_id,
            LiveKind::Pass {
                pass_id: patched.pass.id.clone(),
                version: patched.pass.version,
                event_id: event_id.map(str::to_string),
                significant: patched.significant,
            },
        )
    })
}
