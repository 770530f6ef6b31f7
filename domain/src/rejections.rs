//! The audit's bounded sample of refused listener requests, in front of
//! [`events::reject`]: a refusal for a tenant that does not exist, or whose sample for
//! the hour is full, is not stored, and knowing so must not cost a database read per
//! request (a flood of bad requests would otherwise load the database it is kept
//! from).

use std::time::Duration;

use crate::db::Db;
use crate::error::Result;
use crate::events::{self, Rejection};
use crate::recent::Recent;
use crate::tenants::KnownTenants;

/// How long a full sample is believed full before it is counted again (it frees up
/// as refusals older than the hour's window fall out).
pub const FULL_FOR: Duration = Duration::from_secs(10);

/// Which tenants' samples are full, per budget (credentialed refusals have their own).
#[derive(Default)]
pub struct RejectionSample {
    full_anonymous: Recent<String, ()>,
    full_credentialed: Recent<String, ()>,
}

impl RejectionSample {
    fn full(&self, credentialed: bool) -> &Recent<String, ()> {
        if credentialed {
            &self.full_credentialed
        } else {
            &self.full_anonymous
        }
    }

    /// Whether a refusal would surely not be stored, known without the database (its
    /// tenant is known not to exist, or its sample is full): the caller need not
    /// even build it.
    pub fn surely_dropped(
        &self,
        tenants: &KnownTenants,
        tenant_id: &str,
        credentialed: bool,
    ) -> bool {
        tenants.known(tenant_id) == Some(false) || self.full(credentialed).get(tenant_id).is_some()
    }

    /// Stores the refusal if its tenant exists and its sample has room; its id then.
    pub async fn record(
        &self,
        db: &Db,
        tenants: &KnownTenants,
        rejection: &Rejection,
    ) -> Result<Option<String>> {
        if !tenants.exists(db, &rejection.tenant_id).await? {
            return Ok(None);
        }
        let full = self.full(rejection.credentialed());
        if full.get(&rejection.tenant_id).is_some() {
            return Ok(None);
        }
        let stored = events::reject(db, rejection).await?;
        if stored.is_none() {
            full.put(rejection.tenant_id.clone(), (), FULL_FOR);
        }
        Ok(stored)
    }
}
