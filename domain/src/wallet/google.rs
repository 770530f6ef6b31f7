//! Google Wallet: service-account OAuth (JWT bearer grant, token cached until shortly
//! before it expires), object PATCH (insert when missing), `addMessage` for
//! significant changes within Google's three notifications per pass per 24 h, and
//! signed "Add to Google Wallet" links.
//!
//! Tokens are cached per tenant and per service account (a hash of the whole key
//! file), never by a name another tenant can type: a tenant that uploads a key file
//! naming someone else's `client_email` gets a token only if Google accepts its own
//! signature. The token endpoint is Google's (or the operator's
//! `PASSHOOK_GOOGLE_TOKEN_URL`), never the key file's `token_uri`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::pass_types::GoogleDesign;
use crate::crypto::sha256_hex;
use crate::passes::Pass;

pub const API_URL: &str = "https://walletobjects.googleapis.com/walletobjects/v1";
/// Google's OAuth token endpoint.
pub const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
pub const SCOPE: &str = "https://www.googleapis.com/auth/wallet_object.issuer";
/// Google lets a pass notify its holder this many times per 24 hours.
pub const NOTIFICATIONS_PER_DAY: i64 = 3;

#[derive(Debug, PartialEq)]
pub enum GoogleError {
    /// Worth retrying: 429, 5xx, network.
    Retry {
        status: Option<u16>,
        message: String,
        retry_after_ms: Option<i64>,
    },
    /// Refused for good.
    Failed {
        status: Option<u16>,
        message: String,
    },
}

impl GoogleError {
    pub fn status(&self) -> Option<u16> {
        match self {
            GoogleError::Retry { status, .. } | GoogleError::Failed { status, .. } => *status,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            GoogleError::Retry { message, .. } | GoogleError::Failed { message, .. } => message,
        }
    }
}

pub struct GoogleClient {
    http: reqwest::Client,
    api_url: String,
    /// Google's token endpoint, or the operator's replacement (tests point it at a
    /// fake). A service account's own `token_uri` is never called.
    token_url: String,
    /// Access tokens by [`token_cache_key`].
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

/// The object type of a kind: `loyalty` → `loyaltyObject`.
pub fn object_type(design: &GoogleDesign) -> String {
    format!("{}Object", design.object_kind)
}

/// The object id of a pass: issuer id, a dot, and the pass id in allowed characters.
pub fn object_id(design: &GoogleDesign, pass_id: &str) -> String {
    let suffix: String = pass_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}.{suffix}", design.issuer_id)
}

/// The object as Google stores it: one text module per bound field.
pub fn object(design: &GoogleDesign, pass: &Pass) -> Value {
    let modules: Vec<Value> = design
        .fields
        .iter()
        .filter_map(|f| {
            let value = f.resolve(&pass.additional_data)?;
            let body = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
            Some(json!({ "id": f.key, "header": f.label.clone().unwrap_or_else(|| f.key.clone()), "body": body }))
        })
        .collect();
    json!({
        "id": object_id(design, &pass.id),
        "classId": design.class_id,
        "state": "ACTIVE",
        "textModulesData": modules,
        "barcode": { "type": "QR_CODE", "value": pass.id },
    })
}

fn signing_key(account: &Value) -> Result<(EncodingKey, Header), GoogleError> {
    let failed = |m: String| GoogleError::Failed {
        status: None,
        message: m,
    };
    let pem = account["private_key"]
        .as_str()
        .ok_or_else(|| failed("the service account has no private_key".into()))?;
    let key = EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|e| failed(format!("service account key: {e}")))?;
    let mut header = Header::new(Algorithm::RS256);
    header.kid = account["private_key_id"].as_str().map(str::to_string);
    Ok((key, header))
}

/// Where a tenant's token for `account` is cached: the tenant and a hash of the whole
/// service account, so that neither another tenant nor another key file naming the
/// same `client_email` can pick it up or replace it.
fn token_cache_key(tenant_id: &str, account: &Value) -> String {
    format!("{tenant_id}|{}", sha256_hex(&account.to_string()))
}

fn classify(status: u16, message: String, retry_after_ms: Option<i64>) -> GoogleError {
    if status == 429 || status >= 500 {
        GoogleError::Retry {
            status: Some(status),
            message,
            retry_after_ms,
        }
    } else {
        GoogleError::Failed {
            status: Some(status),
            message,
        }
    }
}

impl GoogleClient {
    /// `token_url`: the operator's replacement for Google's token endpoint, if any.
    pub fn new(http: reqwest::Client, api_url: &str, token_url: Option<String>) -> Self {
        GoogleClient {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            token_url: token_url
                .filter(|u| !u.trim().is_empty())
                .unwrap_or_else(|| TOKEN_URL.into()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    async fn token(&self, tenant_id: &str, account: &Value) -> Result<String, GoogleError> {
        let cache_key = token_cache_key(tenant_id, account);
        if let Some((token, until)) = self.tokens.lock().await.get(&cache_key) {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let email = account["client_email"].as_str().unwrap_or_default();
        let token_url = &self.token_url;
        let now = chrono::Utc::now().timestamp();
        let claims = json!({ "iss": email, "scope": SCOPE, "aud": token_url, "iat": now, "exp": now + 3600 });
        let (key, header) = signing_key(account)?;
        let assertion = encode(&header, &claims, &key).map_err(|e| GoogleError::Failed {
            status: None,
            message: e.to_string(),
        })?;
        let response = self
            .http
            .post(token_url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| GoogleError::Retry {
                status: None,
                message: e.to_string(),
                retry_after_ms: None,
            })?;
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = crate::outbound::retry_after_ms(response.headers());
            return Err(classify(
                status,
                format!("token: HTTP {status}"),
                retry_after,
            ));
        }
        let body: Value = response.json().await.map_err(|e| GoogleError::Failed {
            status: Some(status),
            message: e.to_string(),
        })?;
        let token = body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let lifetime = body["expires_in"].as_u64().unwrap_or(3600);
        let until = crate::clock::expiry(Duration::from_secs(lifetime.saturating_sub(60)));
        self.tokens
            .lock()
            .await
            .insert(cache_key, (token.clone(), until));
        Ok(token)
    }

    async fn call(
        &self,
        tenant_id: &str,
        account: &Value,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> Result<u16, GoogleError> {
        let token = self.token(tenant_id, account).await?;
        let response = self
            .http
            .request(method, format!("{}/{path}", self.api_url))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .map_err(|e| GoogleError::Retry {
                status: None,
                message: e.to_string(),
                retry_after_ms: None,
            })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) || status == 404 {
            return Ok(status);
        }
        let retry_after = crate::outbound::retry_after_ms(response.headers());
        let text: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(300)
            .collect();
        Err(classify(
            status,
            format!("HTTP {status} {text}"),
            retry_after,
        ))
    }

    /// Updates the pass's object, creating it when Google does not have it yet.
    pub async fn upsert_object(
        &self,
        tenant_id: &str,
        account: &Value,
        design: &GoogleDesign,
        pass: &Pass,
    ) -> Result<u16, GoogleError> {
        let object = object(design, pass);
        let kind = object_type(design);
        let id = object_id(design, &pass.id);
        match self
            .call(
                tenant_id,
                account,
                reqwest::Method::PATCH,
                &format!("{kind}/{id}"),
                &object,
            )
            .await?
        {
            404 => match self
                .call(tenant_id, account, reqwest::Method::POST, &kind, &object)
                .await?
            {
                404 => Err(GoogleError::Failed {
                    status: Some(404),
                    message: "the class does not exist".into(),
                }),
                status => Ok(status),
            },
            status => Ok(status),
        }
    }

    /// Adds a message to the object: `TEXT_AND_NOTIFY`, or plain `TEXT` when `notify` is false.
    pub async fn add_message(
        &self,
        tenant_id: &str,
        account: &Value,
        design: &GoogleDesign,
        pass: &Pass,
        text: &str,
        notify: bool,
    ) -> Result<u16, GoogleError> {
        let body = json!({ "message": {
            "id": crate::ids::new_id("msg"),
            "header": "Update",
            "body": text,
            "messageType": if notify { "TEXT_AND_NOTIFY" } else { "TEXT" },
        }});
        let path = format!(
            "{}/{}/addMessage",
            object_type(design),
            object_id(design, &pass.id)
        );
        self.call(tenant_id, account, reqwest::Method::POST, &path, &body)
            .await
    }
}

/// The "Add to Google Wallet" link for a pass: a JWT signed by the service account.
pub fn save_url(
    account: &Value,
    design: &GoogleDesign,
    pass: &Pass,
) -> Result<String, GoogleError> {
    let (key, header) = signing_key(account)?;
    let claims = json!({
        "iss": account["client_email"],
        "aud": "google",
        "typ": "savetowallet",
        "iat": chrono::Utc::now().timestamp(),
        "origins": [],
        "payload": { format!("{}s", object_type(design)): [object(design, pass)] },
    });
    let jwt = encode(&header, &claims, &key).map_err(|e| GoogleError::Failed {
        status: None,
        message: e.to_string(),
    })?;
    Ok(format!("https://pay.google.com/gp/v/save/{jwt}"))
}
