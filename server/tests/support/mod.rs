//! Starts the real server on a loopback port against a fresh database.
#![allow(dead_code)]

use domain::api_keys::{self, Scope};
use domain::crypto::MasterKey;
use domain::testing::TestDb;
use domain::{tenants, Core};
use server::{AppState, Config};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub url: String,
    pub db: TestDb,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(db: TestDb) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Config::new(db.url.clone(), addr, None);
        let state = AppState::new(Core::new(db.db.clone(), MasterKey::generate()), config);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server::serve(state, listener, shutdown.clone()));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestServer {
            url: format!("http://{addr}"),
            db,
            http,
            shutdown,
            task,
        }
    }

    /// One server per backend this run can test.
    pub async fn all() -> Vec<TestServer> {
        let mut servers = Vec::new();
        for db in TestDb::all().await {
            servers.push(TestServer::start(db).await);
        }
        servers
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
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

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
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
