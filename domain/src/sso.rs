//! Single sign-on with OpenID Connect: authorization code with PKCE, `state` and
//! `nonce` checked, the ID token verified against the provider's JWKS. The provider
//! is found by discovery (`{issuer}/.well-known/openid-configuration`).

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardRevocableToken, StandardTokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::Db;

/// How this deployment talks to its identity provider (from the environment).
#[derive(Clone, Debug)]
pub struct SsoConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Where the provider sends people back: `{public_url}/auth/sso/callback`.
    pub redirect_url: String,
    /// Accept ID tokens without an `email_verified` claim (some providers, such as
    /// Microsoft Entra ID, never send it and only hand out addresses they manage).
    /// An explicit `email_verified: false` is refused even then. Off by default.
    pub trust_unverified_email: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider's answer is not usable: {0}")]
    BadAnswer(String),
    #[error("the sign-in was refused: {0}")]
    Refused(String),
}

/// What the browser must bring back, kept (encrypted) in a cookie meanwhile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl Pending {
    /// Whether `state` is the one this sign-in sent (compared in constant time).
    pub fn state_matches(&self, state: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(state.as_bytes().ct_eq(self.state.as_bytes()))
    }
}

/// Notes that the sign-in with this `state` is being completed; false when it was
/// already (a replayed callback). Remembered until `until_ms`, which the caller sets
/// past the expiry of the pending sign-in it belongs to. Kept in the database so
/// that every replica knows it.
pub async fn claim_state(db: &Db, state: &str, until_ms: i64) -> crate::error::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO sso_used_states (state, expires_at) VALUES ($1, $2) \
         ON CONFLICT (state) DO NOTHING",
    )
    .bind(state)
    .bind(until_ms)
    .execute(db.writer())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets used states whose sign-in has expired; returns how many.
pub async fn delete_expired_states(db: &Db) -> crate::error::Result<u64> {
    let done = sqlx::query("DELETE FROM sso_used_states WHERE expires_at <= $1")
        .bind(crate::clock::now_ms())
        .execute(db.writer())
        .await?;
    Ok(done.rows_affected())
}

#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
struct IdTokenFields {
    id_token: String,
}
impl ExtraTokenFields for IdTokenFields {}

type TokenResponse = StandardTokenResponse<IdTokenFields, BasicTokenType>;
type NewClient = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
>;
type OidcClient = oauth2::Client<
    BasicErrorResponse,
    TokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The provider's endpoints and client, found by discovery.
pub struct Provider {
    config: SsoConfig,
    discovery: Discovery,
    client: OidcClient,
}

fn unreachable(e: impl std::fmt::Display) -> SsoError {
    SsoError::Unreachable(e.to_string())
}

fn bad(e: impl std::fmt::Display) -> SsoError {
    SsoError::BadAnswer(e.to_string())
}

impl Provider {
    pub async fn discover(config: SsoConfig, http: &reqwest::Client) -> Result<Self, SsoError> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            config.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = http
            .get(&url)
            .send()
            .await
            .map_err(unreachable)?
            .error_for_status()
            .map_err(unreachable)?
            .json()
            .await
            .map_err(bad)?;
        if discovery.issuer.trim_end_matches('/') != config.issuer.trim_end_matches('/') {
            return Err(bad("the discovery document names another issuer"));
        }
        let mut client = NewClient::new(ClientId::new(config.client_id.clone()))
            .set_auth_uri(AuthUrl::new(discovery.authorization_endpoint.clone()).map_err(bad)?)
            .set_token_uri(TokenUrl::new(discovery.token_endpoint.clone()).map_err(bad)?)
            .set_redirect_uri(RedirectUrl::new(config.redirect_url.clone()).map_err(bad)?);
        if let Some(secret) = &config.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.clone()));
        }
        Ok(Provider {
            config,
            discovery,
            client,
        })
    }

    /// Where to send the browser, and what to keep until it comes back.
    pub fn authorize(&self) -> (String, Pending) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let nonce = crate::crypto::random_token(24);
        let (url, state) = self
            .client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("openid".into()))
            .add_scope(Scope::new("email".into()))
            .add_extra_param("nonce", nonce.clone())
            .set_pkce_challenge(challenge)
            .url();
        let pending = Pending {
            state: state.secret().clone(),
            nonce,
            verifier: verifier.secret().clone(),
        };
        (url.to_string(), pending)
    }

    /// Redeems the code and returns the verified email of the person.
    pub async fn finish(
        &self,
        http: &reqwest::Client,
        pending: &Pending,
        state: &str,
        code: &str,
    ) -> Result<String, SsoError> {
        if !pending.state_matches(state) {
            return Err(SsoError::Refused(
                "the state does not match this browser's sign-in".into(),
            ));
        }
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
            .request_async(http)
            .await
            .map_err(|e| SsoError::Refused(format!("the code was not accepted: {e}")))?;
        let jwks: JwkSet = http
            .get(&self.discovery.jwks_uri)
            .send()
            .await
            .map_err(unreachable)?
            .json()
            .await
            .map_err(bad)?;
        let claims = verify_id_token(
            &token.extra_fields().id_token,
            &jwks,
            &self.discovery.issuer,
            &self.config.client_id,
        )?;
        if claims.get("nonce").and_then(Value::as_str) != Some(pending.nonce.as_str()) {
            return Err(SsoError::Refused(
                "the ID token's nonce does not match".into(),
            ));
        }
        verified_email(&claims, self.config.trust_unverified_email)
    }
}

/// The ID token's email, when the provider vouches for it: `email_verified` must be
/// true (a boolean, or the string "true" some providers send). Without the claim the
/// email is refused unless `trust_unverified` (the deployment's explicit choice); an
/// explicit false is always refused.
fn verified_email(claims: &Value, trust_unverified: bool) -> Result<String, SsoError> {
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s == "true" => Some(true),
        Some(Value::String(s)) if s == "false" => Some(false),
        None | Some(Value::Null) => None,
        Some(_) => Some(false),
    };
    match verified {
        Some(true) => {}
        None if trust_unverified => {}
        None => {
            return Err(SsoError::Refused(
                "the ID token does not say the email is verified".into(),
            ))
        }
        Some(false) => {
            return Err(SsoError::Refused(
                "the provider has not verified this email".into(),
            ))
        }
    }
    claims
        .get("email")
        .and_then(Value::as_str)
        .map(crate::users::normalize_email)
        .filter(|email| !email.is_empty())
        .ok_or_else(|| SsoError::Refused("the ID token carries no email".into()))
}

/// Checks the signature (an asymmetric algorithm, a key of the provider's JWKS),
/// the issuer, the audience and the expiry.
pub fn verify_id_token(
    token: &str,
    jwks: &JwkSet,
    issuer: &str,
    client_id: &str,
) -> Result<Value, SsoError> {
    let header = decode_header(token).map_err(|e| SsoError::Refused(e.to_string()))?;
    let allowed = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    if !allowed.contains(&header.alg) {
        return Err(SsoError::Refused(format!(
            "{:?} ID tokens are not accepted",
            header.alg
        )));
    }
    let jwk = match &header.kid {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(|| SsoError::Refused("no key of the provider signed this ID token".into()))?;
    let key = DecodingKey::from_jwk(jwk).map_err(bad)?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[client_id]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    decode::<Value>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| SsoError::Refused(format!("the ID token is not valid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    /// A provider key: the private half for signing, the public half as a JWKS.
    fn provider_key() -> (EncodingKey, JwkSet) {
        let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
        let pem = rsa.private_key_to_pem().unwrap();
        let b64 = |n: &openssl::bn::BigNumRef| URL_SAFE_NO_PAD.encode(n.to_vec());
        let jwks = serde_json::from_value(json!({"keys": [{
            "kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
            "n": b64(rsa.n()), "e": b64(rsa.e()),
        }]}))
        .unwrap();
        (EncodingKey::from_rsa_pem(&pem).unwrap(), jwks)
    }

    fn token(key: &EncodingKey, claims: Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("k1".into());
        encode(&header, &claims, key).unwrap()
    }

    fn claims(iss: &str, aud: &str) -> Value {
        let exp = chrono::Utc::now().timestamp() + 300;
        json!({"iss": iss, "aud": aud, "exp": exp, "email": "a@x.io", "nonce": "n"})
    }

    #[test]
    fn only_verified_emails_sign_in_unless_the_deployment_trusts_its_provider() {
        let with = |verified: Value| {
            let mut claims = json!({"email": "A@X.io"});
            if !verified.is_null() {
                claims["email_verified"] = verified;
            }
            claims
        };
        for trust in [false, true] {
            assert_eq!(verified_email(&with(json!(true)), trust).unwrap(), "a@x.io");
            assert_eq!(
                verified_email(&with(json!("true")), trust).unwrap(),
                "a@x.io"
            );
            for refused in [json!(false), json!("false"), json!(1), json!("yes")] {
                assert!(verified_email(&with(refused), trust).is_err());
            }
        }
        assert!(verified_email(&with(Value::Null), false).is_err());
        assert_eq!(verified_email(&with(Value::Null), true).unwrap(), "a@x.io");
        assert!(verified_email(&json!({"email_verified": true}), true).is_err());
    }

    #[test]
    fn id_tokens_are_checked_for_key_issuer_audience_and_algorithm() {
        let (key, jwks) = provider_key();
        let good = token(&key, claims("https://idp", "passhook"));
        let verified = verify_id_token(&good, &jwks, "https://idp", "passhook").unwrap();
        assert_eq!(verified["email"], "a@x.io");

        for bad in [
            token(&key, claims("https://other-idp", "passhook")),
            token(&key, claims("https://idp", "another-client")),
        ] {
            assert!(verify_id_token(&bad, &jwks, "https://idp", "passhook").is_err());
        }
        let (other_key, _) = provider_key();
        let forged = token(&other_key, claims("https://idp", "passhook"));
        assert!(verify_id_token(&forged, &jwks, "https://idp", "passhook").is_err());
        let symmetric = encode(
            &Header::new(Algorithm::HS256),
            &claims("https://idp", "passhook"),
            &EncodingKey::from_secret(b"guessable"),
        )
        .unwrap();
        assert!(verify_id_token(&symmetric, &jwks, "https://idp", "passhook").is_err());
    }
}
