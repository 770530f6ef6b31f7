//! A loopback OpenID Connect provider: discovery, JWKS, an authorization endpoint
//! that hands out codes at once, and a token endpoint that answers with the ID token
//! the test chose. It checks requests the way a real provider does (client
//! authentication, PKCE, redirect URI, codes used once), so a test cannot pass by
//! agreeing with a mistake of ours.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

pub const CLIENT_ID: &str = "passhook-test-client";
pub const CLIENT_SECRET: &str = "fake-oidc-client-secret";
pub const KEY_ID: &str = "fake-key-1";

/// How the token endpoint signs the next ID tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signing {
    /// RS256 with the key the JWKS publishes.
    Rs256,
    /// RS256 with a key the JWKS does not publish (a forgery).
    Rs256UnknownKey,
    /// An unsecured JWT: `alg: none`, no signature.
    None,
    /// HS256 keyed with the client secret (the classic algorithm confusion).
    Hs256ClientSecret,
}

/// What the authorization endpoint received, and the code it gave for it.
#[derive(Clone, Debug)]
pub struct Grant {
    pub params: HashMap<String, String>,
    pub code: String,
    pub used: bool,
}

pub struct OidcState {
    pub issuer: String,
    pub grants: Mutex<Vec<Grant>>,
    /// Token requests answered with an ID token.
    pub tokens_issued: AtomicUsize,
    /// Why token requests were refused.
    pub refusals: Mutex<Vec<String>>,
    /// Changes to the next ID tokens' claims: each member replaces the default one,
    /// `null` removes it.
    pub claims: Mutex<Value>,
    pub signing: Mutex<Signing>,
    /// A lax provider that lets a code be redeemed again (real ones must not).
    pub reusable_codes: AtomicBool,
}

pub struct FakeOidc {
    pub url: String,
    pub state: Arc<OidcState>,
}

struct Keys {
    signing: EncodingKey,
    unknown: EncodingKey,
    jwks: Value,
}

/// RSA keys are slow to make: one pair per test binary.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let other = openssl::rsa::Rsa::generate(2048).unwrap();
        let b64 = |n: &openssl::bn::BigNumRef| URL_SAFE_NO_PAD.encode(n.to_vec());
        Keys {
            signing: EncodingKey::from_rsa_pem(&rsa.private_key_to_pem().unwrap()).unwrap(),
            unknown: EncodingKey::from_rsa_pem(&other.private_key_to_pem().unwrap()).unwrap(),
            jwks: json!({"keys": [{
                "kty": "RSA", "kid": KEY_ID, "use": "sig", "alg": "RS256",
                "n": b64(rsa.n()), "e": b64(rsa.e()),
            }]}),
        }
    })
}

impl FakeOidc {
    pub async fn start() -> FakeOidc {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(OidcState {
            issuer: url.clone(),
            grants: Mutex::default(),
            tokens_issued: AtomicUsize::new(0),
            refusals: Mutex::default(),
            claims: Mutex::new(json!({})),
            signing: Mutex::new(Signing::Rs256),
            reusable_codes: AtomicBool::new(false),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeOidc { url, state }
    }

    /// The configuration a server needs to use this provider, sending people back to
    /// `public_url`.
    pub fn config(&self, public_url: &str) -> server::config::SsoConfig {
        server::config::SsoConfig {
            issuer: self.url.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: Some(CLIENT_SECRET.into()),
            redirect_url: format!("{public_url}/auth/sso/callback"),
            trust_unverified_email: false,
        }
    }

    /// The next ID tokens carry these claims over the defaults (`null` removes one).
    pub fn set_claims(&self, changes: Value) {
        *self.state.claims.lock().unwrap() = changes;
    }

    pub fn set_signing(&self, signing: Signing) {
        *self.state.signing.lock().unwrap() = signing;
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.tokens_issued.load(Ordering::SeqCst)
    }

    pub fn refusals(&self) -> Vec<String> {
        self.state.refusals.lock().unwrap().clone()
    }

    pub fn grants(&self) -> Vec<Grant> {
        self.state.grants.lock().unwrap().clone()
    }
}

async fn discovery(State(state): State<Arc<OidcState>>) -> Json<Value> {
    let issuer = &state.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }))
}

async fn jwks() -> Json<Value> {
    Json(keys().jwks.clone())
}

/// Records the request and, when it is a well-formed code request with PKCE,
/// sends the browser back at once with a fresh code (the person "signed in").
async fn authorize(
    State(state): State<Arc<OidcState>>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str);
    let problem = if param("response_type") != Some("code") {
        Some("response_type must be code")
    } else if param("client_id") != Some(CLIENT_ID) {
        Some("unknown client_id")
    } else if !param("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid")) {
        Some("scope must include openid")
    } else if param("code_challenge_method") != Some("S256")
        || param("code_challenge").is_none_or(str::is_empty)
    {
        Some("PKCE with S256 is required")
    } else if [param("state"), param("nonce"), param("redirect_uri")]
        .iter()
        .any(|p| p.is_none_or(str::is_empty))
    {
        Some("state, nonce and redirect_uri are required")
    } else {
        None
    };
    if let Some(problem) = problem {
        return (StatusCode::BAD_REQUEST, problem).into_response();
    }
    let code = format!("code-{}", domain::crypto::random_token(16));
    let mut back = reqwest::Url::parse(param("redirect_uri").unwrap()).unwrap();
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", param("state").unwrap());
    state.grants.lock().unwrap().push(Grant {
        params: params.clone(),
        code,
        used: false,
    });
    Redirect::to(back.as_str()).into_response()
}

fn token_error(state: &OidcState, status: StatusCode, error: &str, why: &str) -> Response {
    state.refusals.lock().unwrap().push(why.to_string());
    (
        status,
        Json(json!({"error": error, "error_description": why})),
    )
        .into_response()
}

/// Percent-decoding of `application/x-www-form-urlencoded` text.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The client's credentials: HTTP Basic (`client_secret_basic`, each part
/// form-encoded, RFC 6749 §2.3.1) or the form (`client_secret_post`), not both.
fn client_credentials(
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Option<(String, String)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|pair| {
            let (id, secret) = pair.split_once(':')?;
            Some((form_decode(id), form_decode(secret)))
        });
    let posted = form.get("client_secret").map(|secret| {
        (
            form.get("client_id").cloned().unwrap_or_default(),
            secret.clone(),
        )
    });
    match (basic, posted) {
        (Some(creds), None) | (None, Some(creds)) => Some(creds),
        _ => None,
    }
}

async fn token(
    State(state): State<Arc<OidcState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("authorization_code") {
        return token_error(
            &state,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code",
        );
    }
    match client_credentials(&headers, &form) {
        Some((id, secret)) if id == CLIENT_ID && secret == CLIENT_SECRET => {}
        _ => {
            return token_error(
                &state,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication failed",
            )
        }
    }
    if field("client_id").is_some_and(|id| id != CLIENT_ID) {
        return token_error(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "client_id differs",
        );
    }
    let (Some(code), Some(redirect_uri), Some(verifier)) =
        (field("code"), field("redirect_uri"), field("code_verifier"))
    else {
        return token_error(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code, redirect_uri and code_verifier are required",
        );
    };
    let grant = {
        let mut grants = state.grants.lock().unwrap();
        let Some(grant) = grants.iter_mut().find(|g| g.code == code) else {
            drop(grants);
            return token_error(
                &state,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "unknown code",
            );
        };
        if grant.used && !state.reusable_codes.load(Ordering::SeqCst) {
            drop(grants);
            return token_error(
                &state,
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "code already used",
            );
        }
        grant.used = true;
        grant.clone()
    };
    if grant.params.get("redirect_uri").map(String::as_str) != Some(redirect_uri) {
        return token_error(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        );
    }
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if grant.params.get("code_challenge") != Some(&challenge) {
        return token_error(
            &state,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "code_verifier does not match the code_challenge",
        );
    }
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": state.issuer,
        "aud": CLIENT_ID,
        "sub": "fake-subject-1",
        "email": "someone@example.com",
        "email_verified": true,
        "nonce": grant.params["nonce"],
        "iat": now,
        "exp": now + 300,
    });
    for (name, value) in state.claims.lock().unwrap().as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    let signing = *state.signing.lock().unwrap();
    let id_token = sign(&claims, signing);
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "access_token": format!("access-{}", domain::crypto::random_token(16)),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    }))
    .into_response()
}

fn sign(claims: &Value, signing: Signing) -> String {
    let with_kid = |alg| {
        let mut header = Header::new(alg);
        header.kid = Some(KEY_ID.into());
        header
    };
    match signing {
        Signing::Rs256 => {
            jsonwebtoken::encode(&with_kid(Algorithm::RS256), claims, &keys().signing).unwrap()
        }
        Signing::Rs256UnknownKey => {
            jsonwebtoken::encode(&with_kid(Algorithm::RS256), claims, &keys().unknown).unwrap()
        }
        Signing::Hs256ClientSecret => jsonwebtoken::encode(
            &with_kid(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(CLIENT_SECRET.as_bytes()),
        )
        .unwrap(),
        Signing::None => {
            let part = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
            let header = json!({"alg": "none", "typ": "JWT", "kid": KEY_ID});
            format!("{}.{}.", part(&header), part(claims))
        }
    }
}
