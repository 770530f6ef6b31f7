use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;

use axum::extract::FromRef;
use domain::Core;
use leptos::prelude::LeptosOptions;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::tenant_rate::TenantRate;

/// What every handler can reach: one shared allocation, since axum clones the state
/// for every extractor and middleware that asks for it.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub struct Shared {
    pub core: Core,
    pub config: Arc<Config>,
    pub leptos_options: LeptosOptions,
    pub metrics: Arc<Metrics>,
    /// When each SFMC signing key was last noted as verified, and each API key's use:
    /// written now and then, not on every request.
    pub marks: Arc<Marks>,
    /// The identity provider, discovered on first use (when SSO is configured).
    pub sso: Arc<tokio::sync::OnceCell<Arc<domain::sso::Provider>>>,
    /// Each tenant's budget of PassKit device-log requests.
    pub device_logs: Arc<TenantRate>,
    /// Each tenant's budget of unsigned Journey Builder lifecycle calls.
    pub unsigned_calls: Arc<TenantRate>,
    /// Cancelled when the server starts shutting down: long-lived responses (the
    /// live feed) end then, so the graceful shutdown does not wait for them.
    pub stopping: CancellationToken,
}

impl AppState {
    pub fn new(mut core: Core, config: Config) -> Self {
        core.set_outbound(domain::outbound::Outbound::new(
            config.allow_private_hosts.clone(),
        ));
        core.apns = Arc::new(domain::wallet::apns::ApnsClient::new(&config.apns_url));
        core.google = Arc::new(domain::wallet::google::GoogleClient::new(
            core.http.clone(),
            &config.google_api_url,
            config.google_token_url.clone(),
        ));
        let leptos_options = LeptosOptions::builder()
            .output_name("passhook")
            .site_root(config.site_root.clone())
            .site_pkg_dir("pkg")
            .site_addr(config.addr)
            .build();
        AppState(Arc::new(Shared {
            core,
            config: Arc::new(config),
            leptos_options,
            metrics: Arc::new(Metrics::default()),
            marks: Arc::default(),
            sso: Arc::default(),
            device_logs: Arc::new(TenantRate::per_minute(
                crate::tenant_rate::LOG_REQUESTS_PER_MINUTE,
            )),
            unsigned_calls: Arc::new(TenantRate::per_minute(
                crate::tenant_rate::UNSIGNED_CALLS_PER_MINUTE,
            )),
            stopping: CancellationToken::new(),
        }))
    }

    /// The job workers and housekeeping, until shutdown.
    pub async fn run_background(&self, shutdown: CancellationToken) {
        let worker = domain::worker::run(
            self.core.clone(),
            self.config.worker.clone(),
            std::sync::Arc::new(domain::processing::Flows),
            shutdown.clone(),
        );
        tokio::join!(
            worker,
            housekeeping(self.core.db.clone(), shutdown.clone()),
            retention(self.core.db.clone(), shutdown),
        );
    }
}

/// The retention purge: once shortly after start-up, then every hour.
async fn retention(db: domain::db::Db, shutdown: CancellationToken) {
    let start = tokio::time::Instant::now() + RETENTION_FIRST_RUN;
    let mut tick = tokio::time::interval_at(start, RETENTION_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let purge = domain::retention::purge(&db, domain::clock::now_ms());
                // A purge under way finishes its current batch's transaction or none.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    result = purge => if let Err(e) = result {
                        tracing::warn!(error = %e, "the retention purge failed");
                    },
                }
            }
        }
    }
}

const RETENTION_FIRST_RUN: Duration = Duration::from_secs(30);
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

async fn housekeeping(db: domain::db::Db, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                if let Err(e) = domain::sessions::delete_expired(&db).await {
                    tracing::warn!(error = %e, "could not delete expired sessions");
                }
                if let Err(e) = domain::sso::delete_expired_states(&db).await {
                    tracing::warn!(error = %e, "could not forget expired sign-in states");
                }
            }
        }
    }
}

/// Remembers when something was last noted, so a burst of requests writes it once.
#[derive(Default)]
pub struct Marks(Mutex<HashMap<String, Instant>>);

impl Marks {
    /// True when `mark` was not noted within `every` (and notes it now).
    pub fn due(&self, mark: &str, every: Duration) -> bool {
        let mut marks = self.0.lock().expect("marks lock");
        let due = marks.get(mark).is_none_or(|at| at.elapsed() >= every);
        if due {
            marks.insert(mark.to_string(), Instant::now());
        }
        due
    }
}
