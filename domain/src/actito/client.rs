//! The Actito API client: token exchange (cached until shortly before expiry, one
//! refresh on 401) and profile reads. Timeouts are short; 5xx and 429 are reported
//! with their `Retry-After` so the job queue can wait as Actito asks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::crypto::sha256_hex;
use crate::excerpt;
use crate::outbound::{path_segment, retry_after_ms, Outbound, OutboundError, PrivateHosts};

/// A tenant's Actito settings as used: the key in clear, mappings in their order
/// (stored and read by [`super::settings`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ActitoSettings {
    pub api_base_url: String,
    pub entity: String,
    pub api_key: String,
    pub profile_table_id: String,
    /// Actito attribute → pass identifier, in the order they are tried.
    pub identifier_mapping: Vec<(String, String)>,
    /// Actito attribute → `additionalData` key.
    pub data_mapping: Vec<(String, String)>,
    pub callback_hosts: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ActitoError {
    /// Worth retrying: a 5xx, a 429, a timeout or a connection failure.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_ms: Option<i64>,
    },
    /// Not worth retrying: the API key is refused, the profile does not exist… The
    /// message is the status, a fixed description and a redacted quote of the answer
    /// (none for the console's connection test: see `Quote`).
    #[error("{0}")]
    Refused(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<Value>,
}

#[derive(Deserialize)]
struct ProfileAnswer {
    #[serde(default)]
    attributes: Vec<Attribute>,
}

#[derive(Deserialize)]
struct Attribute {
    name: String,
    #[serde(default)]
    value: Value,
}

/// Shared by all tenants; tokens are cached per API host and key. Every call goes
/// through the guarded client: the API host is the tenant's choice.
pub struct ActitoClient {
    http: Outbound,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

/// Whether an error message quotes the answer's body. The console's connection test
/// doesn't: its host and key are typed by the admin, and quoting what any host answers
/// would turn the button into a reader of other servers' pages. Jobs quote, so the
/// event page says why Actito refused.
#[derive(Clone, Copy, PartialEq)]
enum Quote {
    Answer,
    StatusOnly,
}

/// Tokens are renewed this long before Actito says they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

impl ActitoClient {
    pub fn new(http: Outbound) -> Self {
        ActitoClient {
            http,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The operator's allow-list of non-public hosts this client may reach.
    pub fn private_hosts(&self) -> &PrivateHosts {
        self.http.private_hosts()
    }

    fn cache_key(settings: &ActitoSettings) -> String {
        format!(
            "{}|{}",
            settings.api_base_url,
            sha256_hex(&settings.api_key)
        )
    }

    /// A valid access token, from the cache when it has one.
    pub async fn token(&self, settings: &ActitoSettings) -> Result<String, ActitoError> {
        self.token_quoting(settings, Quote::Answer).await
    }

    async fn token_quoting(
        &self,
        settings: &ActitoSettings,
        quote: Quote,
    ) -> Result<String, ActitoError> {
        let key = Self::cache_key(settings);
        if let Some((token, until)) = self.tokens.lock().await.get(&key) {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let url = format!("{}/auth/token", settings.api_base_url);
        let response = self
            .http
            .get(&url)
            .header("Authorization", &settings.api_key)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(transport)?;
        let secrets = match quote {
            Quote::Answer => Some(&[settings.api_key.as_str()][..]),
            Quote::StatusOnly => None,
        };
        let response = check(response, secrets).await?;
        let answer: TokenAnswer = response
            .json()
            .await
            .map_err(|_| ActitoError::Refused("Actito's token answer was unreadable".into()))?;
        let lifetime = answer
            .expires_in
            .as_ref()
            .and_then(parse_seconds)
            .unwrap_or(Duration::from_secs(900));
        let until = crate::clock::expiry(lifetime.saturating_sub(TOKEN_MARGIN));
        self.tokens
            .lock()
            .await
            .insert(key, (answer.access_token.clone(), until));
        Ok(answer.access_token)
    }

    async fn forget_token(&self, settings: &ActitoSettings) {
        self.tokens.lock().await.remove(&Self::cache_key(settings));
    }

    /// The profile's attributes, by name.
    pub async fn profile(
        &self,
        settings: &ActitoSettings,
        profile_id: &str,
    ) -> Result<Map<String, Value>, ActitoError> {
        let url = format!(
            "{}/v4/entity/{}/table/{}/profile/{}",
            settings.api_base_url,
            path_segment(&settings.entity),
            path_segment(&settings.profile_table_id),
            path_segment(profile_id)
        );
        let mut refreshed = false;
        loop {
            let token = self.token(settings).await?;
            let response = self
                .http
                .get(&url)
                .bearer_auth(&token)
                .header("Accept", "application/json")
                .send()
                .await
                .map_err(transport)?;
            if response.status() == StatusCode::UNAUTHORIZED && !refreshed {
                // The token may have been revoked early: get a new one, once.
                self.forget_token(settings).await;
                refreshed = true;
                continue;
            }
            let sent = [settings.api_key.as_str(), token.as_str()];
            let answer: ProfileAnswer =
                check(response, Some(&sent))
                    .await?
                    .json()
                    .await
                    .map_err(|_| {
                        ActitoError::Refused("Actito's profile answer was unreadable".into())
                    })?;
            return Ok(answer
                .attributes
                .into_iter()
                .map(|a| (a.name, a.value))
                .collect());
        }
    }

    /// An authorised JSON call (one token refresh on 401); an empty answer is `null`.
    pub(crate) async fn call(
        &self,
        settings: &ActitoSettings,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ActitoError> {
        let mut refreshed = false;
        loop {
            let token = self.token(settings).await?;
            let mut request = self
                .http
                .request(method.clone(), url)
                .bearer_auth(&token)
                .header("Accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(transport)?;
            if response.status() == StatusCode::UNAUTHORIZED && !refreshed {
                self.forget_token(settings).await;
                refreshed = true;
                continue;
            }
            let sent = [settings.api_key.as_str(), token.as_str()];
            let text = check(response, Some(&sent))
                .await?
                .text()
                .await
                .map_err(|e| transport(e.into()))?;
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .map_err(|_| ActitoError::Refused("Actito's answer was unreadable".into()));
        }
    }

    /// Checks the API key by exchanging it for a token (for the console's test button).
    /// The caller decides which key may go to which host: see the settings'
    /// `test_connection`.
    pub async fn test_connection(&self, settings: &ActitoSettings) -> Result<(), ActitoError> {
        self.forget_token(settings).await;
        self.token_quoting(settings, Quote::StatusOnly)
            .await
            .map(|_| ())
    }
}

/// `"900s"`, `"900"` or `900`.
fn parse_seconds(value: &Value) -> Option<Duration> {
    match value {
        Value::Number(n) => n.as_u64().map(Duration::from_secs),
        Value::String(s) => s
            .trim()
            .trim_end_matches('s')
            .parse()
            .ok()
            .map(Duration::from_secs),
        _ => None,
    }
}

/// A refused destination is for good; anything else on the way is worth retrying.
fn transport(err: OutboundError) -> ActitoError {
    let err = match err {
        OutboundError::Refused(why) => {
            return ActitoError::Refused(format!("Actito may not be called there: {why}"))
        }
        OutboundError::Http(err) => err,
    };
    ActitoError::Unavailable {
        message: if err.is_timeout() {
            "Actito could not be reached: timed out".into()
        } else {
            format!("Actito could not be reached: {err}")
        },
        retry_after_ms: None,
    }
}

/// What an error status means, in fixed words.
fn describe(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "the request was not accepted",
        401 => "the key was refused",
        403 => "the key may not do this",
        404 => "not found",
        409 => "conflict with the current state",
        429 => "too many requests",
        500..=599 => "Actito is unavailable",
        _ => "the request was refused",
    }
}

/// `Actito answered 401: the key was refused`: the status and a fixed description.
pub fn answer_message(status: StatusCode) -> String {
    format!("Actito answered {}: {}", status.as_u16(), describe(status))
}

/// The response when it succeeded; otherwise its error, quoting the answer (with the
/// `secrets` we sent masked) unless `secrets` is `None`.
async fn check(
    response: reqwest::Response,
    secrets: Option<&[&str]>,
) -> Result<reqwest::Response, ActitoError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after_ms = retry_after_ms(response.headers());
    let mut message = answer_message(status);
    if let Some(secrets) = secrets {
        let body = excerpt::read_bounded(response).await;
        if let Some(quote) = excerpt::excerpt(&body, secrets) {
            message = format!("{message}. It said: {quote}");
        }
    }
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Err(ActitoError::Unavailable {
            message,
            retry_after_ms,
        })
    } else {
        Err(ActitoError::Refused(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_lifetimes_are_read_in_every_form() {
        assert_eq!(
            parse_seconds(&json!("900s")),
            Some(Duration::from_secs(900))
        );
        assert_eq!(parse_seconds(&json!("60")), Some(Duration::from_secs(60)));
        assert_eq!(parse_seconds(&json!(30)), Some(Duration::from_secs(30)));
        assert_eq!(parse_seconds(&json!(null)), None);
    }
}
