//! Configuration from flags and environment (CONTRACT §1).

use std::net::SocketAddr;

use domain::crypto::MasterKey;
use domain::db::{backend_of, sqlite_path, Backend};
pub use domain::outbound::PrivateHosts;
pub use domain::sso::SsoConfig;
pub use domain::worker::WorkerConfig;

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub addr: SocketAddr,
    /// Externally visible base URL, without a trailing slash.
    pub public_url: String,
    /// Where the built console assets (`pkg/`, favicon) are.
    pub site_root: String,
    pub worker: WorkerConfig,
    /// APNs base URL (`PASSHOOK_APNS_URL`, default Apple's production endpoint).
    pub apns_url: String,
    /// Google Wallet API base URL (`PASSHOOK_GOOGLE_API_URL`).
    pub google_api_url: String,
    /// Replaces Google's OAuth token endpoint (`PASSHOOK_GOOGLE_TOKEN_URL`). The
    /// `token_uri` of a tenant's service account is never called.
    pub google_token_url: Option<String>,
    /// Single sign-on, when `PASSHOOK_OIDC_ISSUER` and `PASSHOOK_OIDC_CLIENT_ID` are set.
    pub sso: Option<SsoConfig>,
    /// Non-public destinations tenants' Actito settings may reach
    /// (`PASSHOOK_ALLOW_PRIVATE_HOSTS`: host names, addresses, CIDR ranges; empty by
    /// default). Only the operator opens them, never a tenant setting.
    pub allow_private_hosts: PrivateHosts,
    /// Requests answered at once (`PASSHOOK_MAX_IN_FLIGHT`, default 512); beyond it,
    /// 503 with Retry-After at once rather than a queue.
    pub max_in_flight: usize,
}

/// Requests in flight at once unless `PASSHOOK_MAX_IN_FLIGHT` says otherwise.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 512;

fn max_in_flight_from_env() -> usize {
    std::env::var("PASSHOOK_MAX_IN_FLIGHT")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_IN_FLIGHT)
}

/// `PASSHOOK_OIDC_ISSUER`, `PASSHOOK_OIDC_CLIENT_ID` and (for confidential clients)
/// `PASSHOOK_OIDC_CLIENT_SECRET`; the redirect URL follows from the public URL.
/// `PASSHOOK_OIDC_TRUST_UNVERIFIED_EMAIL=true` accepts ID tokens without an
/// `email_verified` claim (strict by default).
fn sso_from_env(public_url: &str) -> Option<SsoConfig> {
    let var = |name| {
        std::env::var(name)
            .ok()
            .filter(|v: &String| !v.trim().is_empty())
    };
    Some(SsoConfig {
        issuer: var("PASSHOOK_OIDC_ISSUER")?,
        client_id: var("PASSHOOK_OIDC_CLIENT_ID")?,
        client_secret: var("PASSHOOK_OIDC_CLIENT_SECRET"),
        redirect_url: format!("{public_url}/auth/sso/callback"),
        trust_unverified_email: var("PASSHOOK_OIDC_TRUST_UNVERIFIED_EMAIL")
            .is_some_and(|v| is_yes(&v)),
    })
}

fn is_yes(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "yes"
    )
}

/// The worker's settings for the database's backend, with the lease from
/// `PASSHOOK_JOB_LEASE_MS` when set (how long a crashed replica's jobs wait before
/// another worker takes them over).
fn worker_from_env(database_url: &str) -> WorkerConfig {
    let backend = domain::db::backend_of(database_url).unwrap_or(domain::db::Backend::Sqlite);
    let mut worker = WorkerConfig::for_backend(backend);
    if let Some(ms) = std::env::var("PASSHOOK_JOB_LEASE_MS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|ms| *ms >= 300)
    {
        worker.lease_ms = ms;
    }
    worker
}

impl Config {
    pub fn new(database_url: String, addr: SocketAddr, public_url: Option<String>) -> Self {
        let public_url = public_url
            .unwrap_or_else(|| format!("http://{addr}"))
            .trim_end_matches('/')
            .to_string();
        let worker = worker_from_env(&database_url);
        Config {
            database_url,
            addr,
            public_url: public_url.clone(),
            site_root: default_site_root(),
            worker,
            apns_url: std::env::var("PASSHOOK_APNS_URL")
                .unwrap_or_else(|_| domain::wallet::apns::PRODUCTION_URL.to_string()),
            google_api_url: std::env::var("PASSHOOK_GOOGLE_API_URL")
                .unwrap_or_else(|_| domain::wallet::google::API_URL.to_string()),
            google_token_url: std::env::var("PASSHOOK_GOOGLE_TOKEN_URL").ok(),
            sso: sso_from_env(&public_url),
            max_in_flight: max_in_flight_from_env(),
            // A malformed value opens nothing here; `passhook` refuses to start with it
            // (see `cli::run`).
            allow_private_hosts: PrivateHosts::from_env().unwrap_or_default(),
        }
    }

    /// Whether the console is reached over HTTPS (cookies are then `Secure`).
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

/// `LEPTOS_SITE_ROOT` when set, else the workspace's `target/site` that
/// `cargo leptos build` writes, so `passhook serve` works from any directory.
fn default_site_root() -> String {
    std::env::var("LEPTOS_SITE_ROOT")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../target/site").to_string())
}

/// The master key: `PASSHOOK_MASTER_KEY`, else a key file beside the SQLite database
/// (created on first start). PostgreSQL deployments must set the variable, because
/// every replica needs the same key.
pub fn master_key(database_url: &str) -> anyhow::Result<MasterKey> {
    if let Ok(text) = std::env::var("PASSHOOK_MASTER_KEY") {
        return Ok(MasterKey::from_base64(&text)?);
    }
    match (backend_of(database_url), sqlite_path(database_url)) {
        (Some(Backend::Sqlite), Some(path)) => {
            let mut key_path = path.into_os_string();
            key_path.push(".key");
            Ok(MasterKey::load_or_create(std::path::Path::new(&key_path))?)
        }
        (Some(Backend::Postgres), _) => anyhow::bail!(
            "PASSHOOK_MASTER_KEY is required with PostgreSQL (base64 of 32 random bytes, the same on every replica)"
        ),
        _ => anyhow::bail!("PASSHOOK_MASTER_KEY is required for this database URL"),
    }
}
