//! Loopback fakes of outside services, recording what they receive.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const ACTITO_API_KEY: &str = "actito-test-api-key";

#[derive(Default)]
pub struct ActitoState {
    pub token_calls: AtomicUsize,
    pub profile_calls: AtomicUsize,
    /// Status the callback receiver answers with (default 200).
    pub callback_status: AtomicU16,
    /// Status the profile endpoint answers with before serving (0: serve normally).
    pub profile_failures: Mutex<Vec<(u16, Option<&'static str>)>>,
    pub profiles: Mutex<HashMap<String, Value>>,
    pub callbacks: Mutex<Vec<String>>,
}

/// A fake Actito: token exchange, profile reads and the notifyOK/KO receiver.
pub struct FakeActito {
    pub url: String,
    pub state: Arc<ActitoState>,
}

impl FakeActito {
    pub async fn start() -> FakeActito {
        let state = Arc::new(ActitoState {
            callback_status: AtomicU16::new(200),
            ..Default::default()
        });
        let app = Router::new()
            .route("/auth/token", get(token))
            .route(
                "/v4/entity/{entity}/table/{table}/profile/{id}",
                get(profile),
            )
            .route("/ca/{code}", post(callback))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeActito { url, state }
    }

    pub fn set_profile(&self, id: &str, attributes: Value) {
        let list: Vec<Value> = attributes
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect();
        self.state
            .profiles
            .lock()
            .unwrap()
            .insert(id.into(), json!({"profileId": id, "attributes": list}));
    }

    pub fn callbacks(&self) -> Vec<String> {
        self.state.callbacks.lock().unwrap().clone()
    }

    pub fn tokens(&self) -> usize {
        self.state.token_calls.load(Ordering::SeqCst)
    }
}

async fn token(State(state): State<Arc<ActitoState>>, headers: HeaderMap) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(ACTITO_API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "bad api key"})),
        )
            .into_response();
    }
    let n = state.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
    Json(json!({"accessToken": format!("token-{n}"), "tokenType": "bearer", "expiresIn": "900s"}))
        .into_response()
}

async fn profile(
    State(state): State<Arc<ActitoState>>,
    Path((_entity, _table, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    state.profile_calls.fetch_add(1, Ordering::SeqCst);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !bearer.starts_with("Bearer token-") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if let Some((status, retry_after)) = state.profile_failures.lock().unwrap().pop() {
        let mut response = StatusCode::from_u16(status).unwrap().into_response();
        if let Some(after) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", after.parse().unwrap());
        }
        return response;
    }
    match state.profiles.lock().unwrap().get(&id) {
        Some(p) => Json(p.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn callback(State(state): State<Arc<ActitoState>>, Path(code): Path<String>) -> StatusCode {
    state.callbacks.lock().unwrap().push(code);
    StatusCode::from_u16(state.callback_status.load(Ordering::SeqCst)).unwrap()
}

/// Polls `check` until it holds or 10 s pass.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A push APNs received.
#[derive(Clone, Debug)]
pub struct Push {
    pub token: String,
    pub topic: String,
    pub authorization: Option<String>,
    pub http2: bool,
}

#[derive(Default)]
pub struct ApnsState {
    pub pushes: Mutex<Vec<Push>>,
    /// Statuses to answer a token with, in order, before answering 200.
    pub scripted: Mutex<HashMap<String, Vec<u16>>>,
}

/// A fake APNs speaking HTTP/2 without TLS (h2c), as the client does for http:// URLs.
pub struct FakeApns {
    pub url: String,
    pub state: Arc<ApnsState>,
}

impl FakeApns {
    pub async fn start() -> FakeApns {
        let state = Arc::new(ApnsState::default());
        let app = Router::new()
            .route("/3/device/{token}", post(apns_push))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeApns { url, state }
    }

    pub fn pushes(&self) -> Vec<Push> {
        self.state.pushes.lock().unwrap().clone()
    }

    pub fn script(&self, token: &str, statuses: &[u16]) {
        self.state
            .scripted
            .lock()
            .unwrap()
            .insert(token.into(), statuses.to_vec());
    }
}

async fn apns_push(
    State(state): State<Arc<ApnsState>>,
    Path(token): Path<String>,
    version: axum::http::Version,
    headers: HeaderMap,
) -> Response {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    state.pushes.lock().unwrap().push(Push {
        token: token.clone(),
        topic: text("apns-topic").unwrap_or_default(),
        authorization: text("authorization"),
        http2: version == axum::http::Version::HTTP_2,
    });
    let status = {
        let mut scripted = state.scripted.lock().unwrap();
        scripted.get_mut(&token).and_then(|s| {
            if s.is_empty() {
                None
            } else {
                Some(s.remove(0))
            }
        })
    };
    match status {
        None | Some(200) => StatusCode::OK.into_response(),
        Some(410) => (StatusCode::GONE, Json(json!({"reason": "Unregistered"}))).into_response(),
        Some(code) => (
            StatusCode::from_u16(code).unwrap(),
            Json(json!({"reason": "ServiceUnavailable"})),
        )
            .into_response(),
    }
}
