//! The handle every caller holds: the database, the key that seals secrets, the
//! shared clients for outside services, and this process's caches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::actito::client::ActitoClient;
use crate::crypto::MasterKey;
use crate::db::Db;
use crate::ingest::Ingestor;
use crate::key_cache::KeyCache;
use crate::outbound::{Outbound, PrivateHosts};
use crate::rejections::RejectionSample;
use crate::tenants::KnownTenants;
use crate::vault::Vault;
use crate::wallet::apns::ApnsClient;
use crate::wallet::google::GoogleClient;

#[derive(Clone)]
pub struct Core {
    pub db: Db,
    pub master_key: Arc<MasterKey>,
    /// For calls to URLs the operator sets (APNs, Google, the OIDC issuer, our own
    /// listeners): short timeouts, no redirects followed.
    pub http: reqwest::Client,
    /// For calls to destinations a tenant chooses (Actito's API and callbacks): only
    /// public addresses, unless the operator opens more. Set with [`Core::set_outbound`].
    pub outbound: Outbound,
    /// Actito's API, through [`Core::outbound`].
    pub actito: Arc<ActitoClient>,
    /// Signalled when jobs are enqueued, so workers need not wait for their next poll.
    pub jobs_ready: Arc<Notify>,
    /// Stores inbound events with group commit.
    pub ingestor: Ingestor,
    /// Apple push notifications (its base URL is configurable for tests).
    pub apns: Arc<ApnsClient>,
    /// Google Wallet (base URLs configurable for tests).
    pub google: Arc<GoogleClient>,
    /// Recently read API keys (see [`crate::key_cache`]), shared by every clone so a
    /// revocation through one clears it for all.
    pub key_cache: Arc<KeyCache>,
    /// Which tenants exist, remembered (see [`KnownTenants`]).
    pub tenants: Arc<KnownTenants>,
    /// The audit's sample of refused requests (see [`RejectionSample`]).
    pub rejections: Arc<RejectionSample>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Must be called inside a Tokio runtime: it starts the event writer. Tenant-chosen
    /// destinations are limited to public addresses (see [`Core::set_outbound`]).
    pub fn new(db: Db, master_key: MasterKey) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Passhook/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's settings are valid");
        let outbound = Outbound::new(PrivateHosts::default());
        Core {
            ingestor: Ingestor::start(db.clone()),
            apns: Arc::new(ApnsClient::new(crate::wallet::apns::PRODUCTION_URL)),
            google: Arc::new(GoogleClient::new(
                http.clone(),
                crate::wallet::google::API_URL,
                None,
            )),
            db,
            master_key: Arc::new(master_key),
            actito: Arc::new(ActitoClient::new(outbound.clone())),
            outbound,
            http,
            jobs_ready: Arc::new(Notify::new()),
            key_cache: Arc::default(),
            tenants: Arc::default(),
            rejections: Arc::default(),
        }
    }

    /// The database and the master key, for the stores of sealed secrets.
    pub fn vault(&self) -> Vault<'_> {
        Vault {
            db: &self.db,
            master_key: &self.master_key,
        }
    }

    /// Uses this guarded client for every tenant-chosen destination (the operator's
    /// `PASSHOOK_ALLOW_PRIVATE_HOSTS`, or a test's resolver).
    pub fn set_outbound(&mut self, outbound: Outbound) {
        self.actito = Arc::new(ActitoClient::new(outbound.clone()));
        self.outbound = outbound;
    }
}
