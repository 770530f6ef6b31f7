//! Starts the real server on a loopback port against a fresh database.
#![allow(dead_code)]

pub mod fakes;
pub mod oidc;

use domain::api_keys::{self, Scope};
use domain::crypto::MasterKey;
use domain::testing::TestDb;
use domain::{tenants, Core};
use server::config::{PrivateHosts, WorkerConfig};
use server::{AppState, Config};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub url: String,
    pub db: TestDb,
    pub key: MasterKey,
    pub http: reqwest::Client,
    /// The operator's allow-list the server runs with (`PASSHOOK_ALLOW_PRIVATE_HOSTS`).
    pub allow_private_hosts: PrivateHosts,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// The operator opens loopback (`PASSHOOK_ALLOW_PRIVATE_HOSTS=127.0.0.1`), for tests
/// whose Actito fake or callback sink listens there. Tenant settings alone never can.
pub fn allow_loopback(config: &mut Config) {
    config.allow_private_hosts = PrivateHosts::parse("127.0.0.1").unwrap();
}

impl TestServer {
    pub async fn start(db: TestDb) -> TestServer {
        Self::start_with_key(db, MasterKey::generate()).await
    }

    /// Starts on `db` with this master key (a restarted server keeps its key).
    pub async fn start_with_key(db: TestDb, key: MasterKey) -> TestServer {
        Self::start_with(db, key, |_| {}).await
    }

    /// Starts with a configuration adjusted by `adjust` (outside services' URLs…).
    pub async fn start_with(
        db: TestDb,
        key: MasterKey,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .with_test_writer()
            .try_init();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = Config::new(db.url.clone(), addr, None);
        // Short leases and polls: a crashed worker's jobs come back quickly in tests.
        config.worker = WorkerConfig {
            lease_ms: 1_500,
            poll: std::time::Duration::from_millis(50),
            ..WorkerConfig::default()
        };
        adjust(&mut config);
        let allow_private_hosts = config.allow_private_hosts.clone();
        let state = AppState::new(Core::new(db.db.clone(), key.clone()), config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server::serve(state, listener, shutdown.clone()));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestServer {
            url: format!("http://{addr}"),
            db,
            key,
            http,
            allow_private_hosts,
            shutdown,
            task,
        }
    }

    /// A domain handle on the server's database, key and operator allow-list.
    pub fn core(&self) -> Core {
        let mut core = Core::new(self.db.db.clone(), self.key.clone());
        core.set_outbound(domain::outbound::Outbound::new(
            self.allow_private_hosts.clone(),
        ));
        core
    }

    /// Stops at once, as a crash would: in-flight jobs are dropped mid-way.
    /// Returns the database for a restart.
    pub async fn crash(self) -> (TestDb, MasterKey) {
        self.task.abort();
        let _ = self.task.await;
        (self.db, self.key)
    }

    /// One server per backend this run can test.
    pub async fn all() -> Vec<TestServer> {
        Self::all_with(|_| {}).await
    }

    /// One server per backend, each with a configuration adjusted by `adjust`.
    pub async fn all_with(adjust: impl Fn(&mut Config)) -> Vec<TestServer> {
        let mut servers = Vec::new();
        for db in TestDb::all().await {
            servers.push(TestServer::start_with(db, MasterKey::generate(), &adjust).await);
        }
        servers
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The body of an unauthenticated GET of `path`, as text.
    pub async fn get_text(&self, path: &str) -> String {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        response.text().await.unwrap()
    }

    pub fn backend(&self) -> domain::db::Backend {
        self.db.backend()
    }

    pub async fn tenant(&self, id: &str) {
        tenants::create(&self.db.db, id, id).await.unwrap();
    }

    pub async fn key(&self, tenant: &str, scopes: &[Scope]) -> String {
        api_keys::create(&self.db.db, tenant, "test", scopes, None)
            .await
            .unwrap()
            .1
    }

    /// An admin of `tenant` signed in to the console: the session cookie to send.
    pub async fn admin_session(&self, tenant: &str) -> String {
        const PASSWORD: &str = "test-admin-password";
        let email = format!("admin@{tenant}.test");
        domain::users::upsert(
            &self.db.db,
            tenant,
            &email,
            domain::users::Role::Admin,
            PASSWORD,
        )
        .await
        .unwrap();
        self.sign_in(&email, PASSWORD)
            .await
            .expect("a session cookie")
    }

    /// Signs in through the console's login function: the session cookie to send, or
    /// `None` when the sign-in was refused.
    pub async fn sign_in(&self, email: &str, password: &str) -> Option<String> {
        sign_in_at(&self.http, &self.url, email, password).await
    }

    /// Calls a console server function with a JSON body as `cookie`'s session; the
    /// status and the answer's text.
    pub async fn server_fn(
        &self,
        cookie: &str,
        name: &str,
        body: serde_json::Value,
    ) -> (u16, String) {
        let response = self
            .http
            .post(self.url(&format!("/console/fn/{name}")))
            .header("cookie", cookie)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// Signs in at the server on `base` (a replica of several): the session cookie, or
/// `None` when the sign-in was refused.
pub async fn sign_in_at(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> Option<String> {
    let response = http
        .post(format!("{base}/console/fn/login"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_redirection() || response.status().is_success(),
        "login answered {}",
        response.status()
    );
    session_cookie(&response)
}

/// The `passhook_session=…` cookie a response sets, ready for a `cookie` header.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("passhook_session="))
        .map(|v| v.split(';').next().unwrap().to_string())
}

/// Reads a response that must be a problem document with this status.
pub async fn problem(response: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status of {}",
        response.url()
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    for member in ["type", "title", "detail"] {
        assert!(
            body[member].is_string(),
            "problem member {member} in {body}"
        );
    }
    body
}

/// One of the Actito samples in `fixtures/actito` (copied from the product
/// documentation).
pub fn actito_sample(name: &str) -> serde_json::Value {
    let path = format!("{}/../fixtures/actito/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}
