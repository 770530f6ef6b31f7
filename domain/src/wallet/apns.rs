//! APNs: an empty push to each device registered for a pass, with the pass type
//! identifier as topic, so the device fetches the new version. Token authentication
//! (ES256 JWT, reused ~50 minutes) when the tenant uploaded a `.p8` key, else the
//! Pass Type ID certificate (mutual TLS). One HTTP/2 client per tenant credentials,
//! so connections are reused. Clients and tokens are cached per tenant and per
//! credential (a hash of the whole credential), never by a key id or certificate
//! another tenant could upload too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio::sync::Mutex;

use super::credentials::AppleCredentials;
use crate::crypto::sha256_hex;

pub const PRODUCTION_URL: &str = "https://api.push.apple.com";
const TOKEN_LIFETIME: Duration = Duration::from_secs(50 * 60);

/// How one push went.
#[derive(Clone, Debug, PartialEq)]
pub enum PushResult {
    Delivered {
        latency_ms: i64,
    },
    /// The device token is no longer valid (410 Unregistered, 400 BadDeviceToken):
    /// forget the registration.
    Gone {
        status: u16,
        reason: String,
        latency_ms: i64,
    },
    /// Worth retrying (429, 5xx, network).
    Retry {
        status: Option<u16>,
        reason: String,
        retry_after_ms: Option<i64>,
        latency_ms: i64,
    },
    /// Refused for good (bad credentials, wrong topic…).
    Failed {
        status: Option<u16>,
        reason: String,
        latency_ms: i64,
    },
}

/// The longest push token accepted (APNs tokens are 64 hexadecimal digits today;
/// Apple may lengthen them).
pub const MAX_PUSH_TOKEN_LEN: usize = 200;

/// Whether `token` can be a device's push token: 1 to [`MAX_PUSH_TOKEN_LEN`]
/// hexadecimal digits. It goes into the URL path, so nothing else may pass.
pub fn is_push_token(token: &str) -> bool {
    (1..=MAX_PUSH_TOKEN_LEN).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_hexdigit())
}

pub struct ApnsClient {
    base_url: String,
    /// By [`cache_key`], as are the tokens.
    clients: Mutex<HashMap<String, reqwest::Client>>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

/// Where a tenant's client and token for `credentials` are cached: the tenant and a
/// hash of the whole credential.
fn cache_key(tenant_id: &str, credentials: &AppleCredentials) -> String {
    let whole = serde_json::to_string(credentials).expect("credentials serialise");
    format!("{tenant_id}|{}", sha256_hex(&whole))
}

impl ApnsClient {
    pub fn new(base_url: &str) -> Self {
        ApnsClient {
            base_url: base_url.trim_end_matches('/').to_string(),
            clients: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    async fn client(
        &self,
        key: &str,
        credentials: &AppleCredentials,
    ) -> Result<reqwest::Client, String> {
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(key) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(600));
        if self.base_url.starts_with("http://") {
            // A loopback APNs stand-in speaks HTTP/2 without TLS.
            builder = builder.http2_prior_knowledge();
        } else {
            if credentials.apns.is_none() {
                let identity = format!(
                    "{}\n{}",
                    credentials.certificate_pem, credentials.private_key_pem
                );
                builder = builder.identity(
                    reqwest::Identity::from_pem(identity.as_bytes()).map_err(|e| e.to_string())?,
                );
            }
            builder = builder.http2_adaptive_window(true);
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        clients.insert(key.to_string(), client.clone());
        Ok(client)
    }

    async fn bearer(
        &self,
        key: &str,
        credentials: &AppleCredentials,
    ) -> Result<Option<String>, String> {
        let Some(apns) = &credentials.apns else {
            return Ok(None);
        };
        let mut tokens = self.tokens.lock().await;
        if let Some((token, made)) = tokens.get(key) {
            if made.elapsed() < TOKEN_LIFETIME {
                return Ok(Some(token.clone()));
            }
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(apns.key_id.clone());
        let claims = json!({ "iss": apns.team_id, "iat": chrono::Utc::now().timestamp() });
        let signing = EncodingKey::from_ec_pem(apns.key_p8.as_bytes())
            .map_err(|e| format!("APNs key: {e}"))?;
        let token = encode(&header, &claims, &signing).map_err(|e| format!("APNs token: {e}"))?;
        tokens.insert(key.to_string(), (token.clone(), Instant::now()));
        Ok(Some(token))
    }

    /// Sends the empty update push to one device.
    pub async fn push(
        &self,
        tenant_id: &str,
        credentials: &AppleCredentials,
        topic: &str,
        push_token: &str,
    ) -> PushResult {
        if !is_push_token(push_token) {
            // Registration refuses such tokens; one stored before that is never sent.
            return PushResult::Failed {
                status: None,
                reason: "the push token is not hexadecimal: not sent".into(),
                latency_ms: 0,
            };
        }
        let started = Instant::now();
        let elapsed = || started.elapsed().as_millis() as i64;
        let key = cache_key(tenant_id, credentials);
        let (client, bearer) = match (
            self.client(&key, credentials).await,
            self.bearer(&key, credentials).await,
        ) {
            (Ok(c), Ok(b)) => (c, b),
            (Err(e), _) | (_, Err(e)) => {
                return PushResult::Failed {
                    status: None,
                    reason: e,
                    latency_ms: 0,
                }
            }
        };
        let mut request = client
            .post(format!("{}/3/device/{push_token}", self.base_url))
            .header("apns-topic", topic)
            .header("apns-push-type", "background")
            .header("content-type", "application/json")
            .body("{}");
        if let Some(token) = bearer {
            request = request.header("authorization", format!("bearer {token}"));
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return PushResult::Retry {
                    status: None,
                    reason: e.to_string(),
                    retry_after_ms: None,
                    latency_ms: elapsed(),
                }
            }
        };
        let status = response.status().as_u16();
        let retry_after_ms = crate::outbound::retry_after_ms(response.headers());
        let reason = response
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["reason"].as_str().map(str::to_string))
            .unwrap_or_default();
        let latency_ms = elapsed();
        match status {
            200 => PushResult::Delivered { latency_ms },
            410 => PushResult::Gone {
                status,
                reason,
                latency_ms,
            },
            400 if reason == "BadDeviceToken" || reason == "DeviceTokenNotForTopic" => {
                PushResult::Gone {
                    status,
                    reason,
                    latency_ms,
                }
            }
            429 | 500..=599 => PushResult::Retry {
                status: Some(status),
                reason,
                retry_after_ms,
                latency_ms,
            },
            _ => PushResult::Failed {
                status: Some(status),
                reason,
                latency_ms,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_tokens_are_hexadecimal() {
        assert!(is_push_token(&"0123456789abcdefABCDEF".repeat(2)));
        assert!(is_push_token(&"a".repeat(MAX_PUSH_TOKEN_LEN)));
        assert!(!is_push_token(&"a".repeat(MAX_PUSH_TOKEN_LEN + 1)));
        for bad in [
            "",
            "push-token",
            "ab/../cd",
            "ab?x=1",
            "ab%2F",
            "ab cd",
            "ab#",
        ] {
            assert!(!is_push_token(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_stored_non_hex_token_is_never_put_into_a_url() {
        // Nothing listens there: a request would come back as Retry, not Failed.
        let client = ApnsClient::new("http://127.0.0.1:9");
        let credentials = AppleCredentials {
            certificate_pem: String::new(),
            private_key_pem: String::new(),
            wwdr_pem: String::new(),
            apns: None,
        };
        let result = client
            .push("acme", &credentials, "pass.example", "../../other?x=")
            .await;
        assert!(
            matches!(result, PushResult::Failed { status: None, .. }),
            "{result:?}"
        );
    }
}
