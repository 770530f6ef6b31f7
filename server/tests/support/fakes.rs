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
/// Put in the body of the fake Actito's error answers: it must reach nobody.
pub const ACTITO_BODY_MARKER: &str = "fake-actito-body-marker-7f3a";

/// A request the fake Actito received.
#[derive(Clone, Debug)]
pub struct ActitoRequest {
    pub at: std::time::Instant,
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
}

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
    /// Every request, whatever its route.
    pub requests: Mutex<Vec<ActitoRequest>>,
    /// The token answer's `expiresIn` (default `"900s"`).
    pub expires_in: Mutex<Option<Value>>,
    /// The body of the profile endpoint's error answers (default: none).
    pub error_body: Mutex<Option<Value>>,
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
            .layer(axum::middleware::from_fn_with_state(
                state.clone(),
                record_actito_request,
            ))
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

    pub fn requests(&self) -> Vec<ActitoRequest> {
        self.state.requests.lock().unwrap().clone()
    }
}

async fn record_actito_request(
    State(state): State<Arc<ActitoState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    state.requests.lock().unwrap().push(ActitoRequest {
        at: std::time::Instant::now(),
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
        authorization: request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    });
    next.run(request).await
}

async fn token(State(state): State<Arc<ActitoState>>, headers: HeaderMap) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(ACTITO_API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": format!("bad api key {ACTITO_BODY_MARKER}")})),
        )
            .into_response();
    }
    let n = state.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
    let expires_in = state
        .expires_in
        .lock()
        .unwrap()
        .clone()
        .unwrap_or(json!("900s"));
    Json(json!({"accessToken": format!("token-{n}"), "tokenType": "bearer", "expiresIn": expires_in}))
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
    let error = |status: StatusCode| match state.error_body.lock().unwrap().clone() {
        Some(body) => (status, Json(body)).into_response(),
        None => status.into_response(),
    };
    if let Some((status, retry_after)) = state.profile_failures.lock().unwrap().pop() {
        let mut response = error(StatusCode::from_u16(status).unwrap());
        if let Some(after) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", after.parse().unwrap());
        }
        return response;
    }
    match state.profiles.lock().unwrap().get(&id) {
        Some(p) => Json(p.clone()).into_response(),
        None => error(StatusCode::NOT_FOUND),
    }
}

async fn callback(State(state): State<Arc<ActitoState>>, Path(code): Path<String>) -> StatusCode {
    state.callbacks.lock().unwrap().push(code);
    StatusCode::from_u16(state.callback_status.load(Ordering::SeqCst)).unwrap()
}

/// Polls `check` until it holds or 30 s pass (generous: a loaded CI machine is slow,
/// and a check that holds returns at once).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
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
    pub at: std::time::Instant,
}

#[derive(Default)]
pub struct ApnsState {
    pub pushes: Mutex<Vec<Push>>,
    /// Statuses to answer a token with, in order, before answering 200.
    pub scripted: Mutex<HashMap<String, Vec<u16>>>,
    /// `Retry-After` sent with scripted failures, when set.
    pub retry_after: Mutex<Option<&'static str>>,
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
        at: std::time::Instant::now(),
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
        Some(code) => {
            let reason = if code == 429 {
                "TooManyRequests"
            } else {
                "ServiceUnavailable"
            };
            let mut response = (
                StatusCode::from_u16(code).unwrap(),
                Json(json!({"reason": reason})),
            )
                .into_response();
            if let Some(after) = *state.retry_after.lock().unwrap() {
                response
                    .headers_mut()
                    .insert("retry-after", after.parse().unwrap());
            }
            response
        }
    }
}

#[derive(Default)]
pub struct GoogleState {
    /// The URL the token endpoint answers at: assertions must name it as `aud`.
    pub token_url: Mutex<String>,
    /// Service accounts Google knows: `client_email` → public key PEM. A token is
    /// issued only for an assertion signed by the key of the account it names.
    pub accounts: Mutex<HashMap<String, String>>,
    /// Access tokens issued, with the account each was issued to.
    pub issued: Mutex<HashMap<String, String>>,
    pub token_calls: AtomicUsize,
    /// Token requests refused (unknown account, bad signature, wrong claims), with why.
    pub token_refusals: Mutex<Vec<String>>,
    pub objects: Mutex<HashMap<String, Value>>,
    /// Every object write and message accepted: (account of the token, object id, body).
    pub writes: Mutex<Vec<(String, String, Value)>>,
    /// (object id, messageType, body)
    pub messages: Mutex<Vec<(String, String, String)>>,
    /// Statuses to answer PATCHes with, in order, before behaving normally.
    pub patch_failures: Mutex<Vec<u16>>,
    pub patches: AtomicUsize,
    /// The token answer's `expires_in` (default 3600).
    pub expires_in: Mutex<Option<Value>>,
}

/// A fake Google: the OAuth token endpoint (strict: it checks each assertion's RS256
/// signature against the key of the account it names, as Google does) and Wallet
/// objects, which take only tokens it issued.
pub struct FakeGoogle {
    pub url: String,
    pub state: Arc<GoogleState>,
}

impl FakeGoogle {
    pub async fn start() -> FakeGoogle {
        let state = Arc::new(GoogleState::default());
        let app = Router::new()
            .route("/token", post(google_token))
            .route("/walletobjects/v1/{kind}", post(google_insert))
            .route(
                "/walletobjects/v1/{kind}/{id}",
                axum::routing::patch(google_patch),
            )
            .route(
                "/walletobjects/v1/{kind}/{id}/addMessage",
                post(google_message),
            )
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        *state.token_url.lock().unwrap() = format!("{url}/token");
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeGoogle { url, state }
    }

    /// Makes a service account known, as creating it in Google Cloud does.
    pub fn register(&self, client_email: &str, private_key_pem: &str) {
        self.state.accounts.lock().unwrap().insert(
            client_email.into(),
            domain::wallet::certs::public_pem_of(private_key_pem),
        );
    }

    pub fn messages(&self) -> Vec<(String, String, String)> {
        self.state.messages.lock().unwrap().clone()
    }

    pub fn object(&self, id: &str) -> Option<Value> {
        self.state.objects.lock().unwrap().get(id).cloned()
    }

    pub fn writes(&self) -> Vec<(String, String, Value)> {
        self.state.writes.lock().unwrap().clone()
    }

    pub fn token_refusals(&self) -> Vec<String> {
        self.state.token_refusals.lock().unwrap().clone()
    }
}

/// Checks a JWT bearer grant as Google does; the account it was signed for.
fn google_grant(state: &GoogleState, form: &HashMap<String, String>) -> Result<String, String> {
    use base64::Engine;
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return Err("unsupported grant_type".into());
    }
    let assertion = form.get("assertion").ok_or("no assertion")?;
    let payload = assertion.split('.').nth(1).ok_or("not a JWT")?;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| "payload is not base64url")?,
    )
    .map_err(|_| "payload is not JSON")?;
    let email = claims["iss"].as_str().ok_or("no iss")?.to_string();
    let public = state
        .accounts
        .lock()
        .unwrap()
        .get(&email)
        .cloned()
        .ok_or_else(|| format!("unknown account {email}"))?;
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[state.token_url.lock().unwrap().clone()]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let verified = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| format!("assertion for {email} refused: {e}"))?;
    if verified.claims["scope"] != domain::wallet::google::SCOPE {
        return Err("wrong scope".into());
    }
    Ok(email)
}

async fn google_token(
    State(state): State<Arc<GoogleState>>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let email = match google_grant(&state, &form) {
        Ok(email) => email,
        Err(why) => {
            state.token_refusals.lock().unwrap().push(why);
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})),
            )
                .into_response();
        }
    };
    let n = state.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("gtoken-{n}");
    state.issued.lock().unwrap().insert(token.clone(), email);
    let expires_in = state
        .expires_in
        .lock()
        .unwrap()
        .clone()
        .unwrap_or(json!(3600));
    Json(json!({"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}))
        .into_response()
}

/// The account the request's bearer token was issued to, if it is one of ours.
fn google_caller(state: &GoogleState, headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())?
        .strip_prefix("Bearer ")?;
    state.issued.lock().unwrap().get(token).cloned()
}

async fn google_insert(
    State(state): State<Arc<GoogleState>>,
    headers: HeaderMap,
    Json(object): Json<Value>,
) -> StatusCode {
    let Some(caller) = google_caller(&state, &headers) else {
        return StatusCode::UNAUTHORIZED;
    };
    let id = object["id"].as_str().unwrap_or_default().to_string();
    state
        .writes
        .lock()
        .unwrap()
        .push((caller, id.clone(), object.clone()));
    state.objects.lock().unwrap().insert(id, object);
    StatusCode::OK
}

async fn google_patch(
    State(state): State<Arc<GoogleState>>,
    Path((_kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(object): Json<Value>,
) -> StatusCode {
    let Some(caller) = google_caller(&state, &headers) else {
        return StatusCode::UNAUTHORIZED;
    };
    state.patches.fetch_add(1, Ordering::SeqCst);
    if let Some(status) = {
        let mut f = state.patch_failures.lock().unwrap();
        if f.is_empty() {
            None
        } else {
            Some(f.remove(0))
        }
    } {
        return StatusCode::from_u16(status).unwrap();
    }
    let mut objects = state.objects.lock().unwrap();
    match objects.get_mut(&id) {
        Some(stored) => {
            state
                .writes
                .lock()
                .unwrap()
                .push((caller, id, object.clone()));
            *stored = object;
            StatusCode::OK
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn google_message(
    State(state): State<Arc<GoogleState>>,
    Path((_kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let Some(caller) = google_caller(&state, &headers) else {
        return StatusCode::UNAUTHORIZED;
    };
    let message = &body["message"];
    state
        .writes
        .lock()
        .unwrap()
        .push((caller, id.clone(), body.clone()));
    state.messages.lock().unwrap().push((
        id,
        message["messageType"].as_str().unwrap_or_default().into(),
        message["body"].as_str().unwrap_or_default().into(),
    ));
    StatusCode::OK
}

/// How [`FlakyPeer`] answers one request.
#[derive(Clone, Debug)]
pub enum Answer {
    /// This status, with `Retry-After` when given.
    Status(u16, Option<&'static str>),
    /// Reads the request, then closes the connection without answering.
    Close,
    /// Reads the request, then says nothing for this long.
    Hang(std::time::Duration),
}

#[derive(Default)]
pub struct FlakyState {
    /// Answers for the next requests, in order; then `otherwise`.
    pub script: Mutex<std::collections::VecDeque<Answer>>,
    /// The answer once the script is used up (200 when unset).
    pub otherwise: Mutex<Option<Answer>>,
    /// Each request's path and when it arrived.
    pub requests: Mutex<Vec<(String, std::time::Instant)>>,
}

/// An outside service that misbehaves on demand (times out, fails with 5xx or 429 and
/// `Retry-After`, or drops the connection), speaking raw HTTP/1.1 so that it can.
pub struct FlakyPeer {
    pub url: String,
    pub state: Arc<FlakyState>,
}

impl FlakyPeer {
    pub async fn start() -> FlakyPeer {
        let state = Arc::new(FlakyState::default());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(flaky_answer(stream, shared.clone()));
            }
        });
        FlakyPeer { url, state }
    }

    pub fn script(&self, answers: &[Answer]) {
        self.state
            .script
            .lock()
            .unwrap()
            .extend(answers.iter().cloned());
    }

    pub fn otherwise(&self, answer: Answer) {
        *self.state.otherwise.lock().unwrap() = Some(answer);
    }

    pub fn requests(&self) -> Vec<(String, std::time::Instant)> {
        self.state.requests.lock().unwrap().clone()
    }
}

async fn flaky_answer(mut stream: tokio::net::TcpStream, state: Arc<FlakyState>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65_536 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let path = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    state
        .requests
        .lock()
        .unwrap()
        .push((path, std::time::Instant::now()));
    let answer = {
        let next = state.script.lock().unwrap().pop_front();
        next.or_else(|| state.otherwise.lock().unwrap().clone())
    };
    match answer.unwrap_or(Answer::Status(200, None)) {
        Answer::Close => {}
        Answer::Hang(how_long) => tokio::time::sleep(how_long).await,
        Answer::Status(status, retry_after) => {
            let retry = retry_after
                .map(|s| format!("Retry-After: {s}\r\n"))
                .unwrap_or_default();
            let head = format!(
                "HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n{retry}\r\n"
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    }
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually_within<F, Fut>(what: &str, within: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}
