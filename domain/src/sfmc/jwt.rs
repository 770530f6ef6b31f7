//! Journey Builder sends its calls as compact JWTs signed with HS256 and the installed
//! package's signing secret. Only HS256 is accepted; `exp` is checked when present,
//! and a token issued (`iat`) longer ago than the dedupe window is refused, so a token
//! without `exp` cannot be replayed once its dedupe record is gone. A token with
//! neither is accepted and deduplicated (by `jti`, else its hash) within the window.

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// A tenant's signing key: the salt as raw bytes.
#[derive(Clone)]
pub struct SigningKey {
    pub id: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({}, ••••)", self.id)
    }
}

/// The shortest HMAC key accepted, in bytes once decoded: a shorter salt (`0x`, a
/// byte or two) would make tokens anyone can forge.
pub const MIN_SECRET_BYTES: usize = 16;

/// The salt's bytes, as SFMC shows it (`0x` + hexadecimal) or as the raw string,
/// without judging its length: for keys already stored (see [`verify`]).
pub fn decode_salt(text: &str) -> Result<Vec<u8>, String> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex_digits) => {
            hex::decode(hex_digits).map_err(|_| "the 0x… salt is not valid hexadecimal".to_string())
        }
        None if text.is_empty() => Err("the salt is empty".into()),
        None => Ok(text.as_bytes().to_vec()),
    }
}

/// A new salt's bytes: decoded, and at least [`MIN_SECRET_BYTES`] long.
pub fn secret_bytes(text: &str) -> Result<Vec<u8>, String> {
    let bytes = decode_salt(text)?;
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "must be at least {MIN_SECRET_BYTES} bytes once decoded (0x… counts two hexadecimal digits per byte); this one has {}: a shorter key lets anyone sign tokens",
            bytes.len()
        ));
    }
    Ok(bytes)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwtError {
    /// Not a compact JWT at all.
    Malformed,
    /// A JWT with another algorithm than HS256 (`none`, RS256, ES256…).
    WrongAlgorithm,
    /// No active key verifies the signature.
    BadSignature,
    Expired,
    /// The tenant has no signing key configured.
    NoKeys,
}

impl JwtError {
    pub fn code(&self) -> &'static str {
        match self {
            JwtError::Malformed => "MALFORMED_TOKEN",
            JwtError::WrongAlgorithm => "WRONG_ALGORITHM",
            JwtError::BadSignature => "BAD_SIGNATURE",
            JwtError::Expired => "TOKEN_EXPIRED",
            JwtError::NoKeys => "NO_SIGNING_KEY",
        }
    }

    pub fn detail(&self) -> &'static str {
        match self {
            JwtError::Malformed => "The body is not a compact JWT.",
            JwtError::WrongAlgorithm => "Only HS256-signed tokens are accepted.",
            JwtError::BadSignature => "No active signing key of this tenant verifies the token.",
            JwtError::Expired => "The token has expired.",
            JwtError::NoKeys => {
                "This tenant has no usable SFMC signing key configured (keys need at least 16 bytes)."
            }
        }
    }
}

/// The members of a JOSE header we read before any key check: a small typed struct,
/// never a tree of values of the caller's choosing (other members are skipped).
#[derive(serde::Deserialize)]
struct DeclaredHeader {
    alg: String,
    #[allow(dead_code)] // read for its type: a header whose kid is not text is malformed
    kid: Option<String>,
    #[allow(dead_code)]
    typ: Option<String>,
}

/// The `alg` a compact JWT's header declares.
fn declared_algorithm(token: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let (header, rest) = token.split_once('.')?;
    rest.contains('.').then_some(())?;
    let header: DeclaredHeader =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    Some(header.alg)
}

/// How old a token's `iat` may be: as long as its dedupe record is kept, so a token
/// is either recognised as a duplicate or refused as too old, never applied twice.
pub const MAX_TOKEN_AGE_SECONDS: i64 = crate::events::DEDUPE_WINDOW_MS / 1000;

/// Whether the claims' `iat` (when present) is older than [`MAX_TOKEN_AGE_SECONDS`].
fn issued_too_long_ago(claims: &Value, now_seconds: i64) -> bool {
    claims
        .get("iat")
        .and_then(Value::as_f64)
        .is_some_and(|iat| (iat as i64) < now_seconds - MAX_TOKEN_AGE_SECONDS)
}

/// Signs claims as Journey Builder does (HS256 with the salt's bytes): for the
/// console's test tool and for tests.
pub fn sign(claims: &Value, key: &SigningKey) -> String {
    use jsonwebtoken::{encode, EncodingKey, Header};
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(&key.secret),
    )
    .expect("HS256 signing of JSON claims cannot fail")
}

/// Verifies `token` with each key in turn; returns the key that verified and the claims.
pub fn verify(token: &str, keys: &[SigningKey]) -> Result<(String, Value), JwtError> {
    let token = token.trim();
    // Read `alg` ourselves first: `none` and unknown names are not even parseable
    // as a header by the library, and they must be told apart from garbage.
    match declared_algorithm(token) {
        None => return Err(JwtError::Malformed),
        Some(alg) if alg != "HS256" => return Err(JwtError::WrongAlgorithm),
        Some(_) => {}
    }
    let header = decode_header(token).map_err(|_| JwtError::Malformed)?;
    if header.alg != Algorithm::HS256 {
        return Err(JwtError::WrongAlgorithm);
    }
    // A key shorter than the minimum (stored before it was enforced) verifies nothing:
    // with an empty key, anyone can sign.
    let keys: Vec<&SigningKey> = keys
        .iter()
        .filter(|k| k.secret.len() >= MIN_SECRET_BYTES)
        .collect();
    if keys.is_empty() {
        return Err(JwtError::NoKeys);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.required_spec_claims.clear();
    validation.validate_aud = false;
    validation.leeway = 30;
    let mut outcome = Err(JwtError::BadSignature);
    for key in keys {
        match decode::<Value>(token, &DecodingKey::from_secret(&key.secret), &validation) {
            Ok(data) if issued_too_long_ago(&data.claims, chrono::Utc::now().timestamp()) => {
                return Err(JwtError::Expired)
            }
            Ok(data) => return Ok((key.id.clone(), data.claims)),
            Err(e) => match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    outcome = Err(JwtError::Expired)
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {}
                _ if outcome == Err(JwtError::BadSignature) => outcome = Err(JwtError::Malformed),
                _ => {}
            },
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn key(id: &str, secret: &str) -> SigningKey {
        SigningKey {
            id: id.into(),
            secret: secret_bytes(secret).unwrap(),
        }
    }

    fn sign(claims: &Value, secret: &[u8]) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    const SIXTEEN_HEX: &str = "0x000102030405060708090a0b0c0d0e0f";

    #[test]
    fn salts_are_read_as_hex_or_raw() {
        assert_eq!(
            secret_bytes(SIXTEEN_HEX).unwrap(),
            (0u8..16).collect::<Vec<_>>()
        );
        assert_eq!(
            secret_bytes("0xAbCd0000000000000000000000000000").unwrap()[..2],
            [0xab, 0xcd]
        );
        assert_eq!(
            secret_bytes("a-plain-salt-of-22-by").unwrap(),
            b"a-plain-salt-of-22-by"
        );
        assert!(secret_bytes("0xzz").is_err());
        assert!(secret_bytes("").is_err());
    }

    #[test]
    fn short_salts_are_refused_with_the_reason() {
        for short in ["0x", "0x41", "0x4142", "fifteen-bytes!!"] {
            let error = secret_bytes(short).unwrap_err();
            assert!(error.contains("at least 16 bytes"), "{short}: {error}");
        }
        assert_eq!(decode_salt("0x").unwrap(), Vec::<u8>::new());
        assert!(secret_bytes("sixteen-bytes!!!").is_ok());
    }

    #[test]
    fn short_stored_keys_verify_nothing() {
        let empty = SigningKey {
            id: "empty".into(),
            secret: Vec::new(),
        };
        let one = SigningKey {
            id: "one".into(),
            secret: vec![7],
        };
        let forged = sign(&json!({"a": 1}), b"");
        assert_eq!(
            verify(&forged, &[empty.clone(), one.clone()]),
            Err(JwtError::NoKeys)
        );
        assert_eq!(
            verify(
                &sign(&json!({}), &[7]),
                &[empty, one, key("k", SIXTEEN_HEX)]
            ),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn any_active_key_verifies_and_is_named() {
        let keys = [key("old", SIXTEEN_HEX), key("new", "new-signing-secret")];
        let token = sign(&json!({"journeyId": "j"}), b"new-signing-secret");
        let (id, claims) = verify(&token, &keys).unwrap();
        assert_eq!((id.as_str(), &claims["journeyId"]), ("new", &json!("j")));
        let token = sign(&json!({}), &(0u8..16).collect::<Vec<_>>());
        assert_eq!(verify(&token, &keys).unwrap().0, "old");
    }

    #[test]
    fn attacks_are_refused() {
        let keys = [key("k", "a-signing-secret")];
        let good = sign(&json!({"a": 1}), b"a-signing-secret");
        assert_eq!(
            verify(&sign(&json!({}), b"other"), &keys),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            verify(&good[..good.len() - 4], &keys),
            Err(JwtError::BadSignature)
        );
        assert_eq!(verify("not a jwt", &keys), Err(JwtError::Malformed));
        assert_eq!(verify(&good, &[]), Err(JwtError::NoKeys));

        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"a":1}"#)
        );
        assert_eq!(verify(&unsigned, &keys), Err(JwtError::WrongAlgorithm));
        let rs256 = format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"a":1}"#)
        );
        assert_eq!(verify(&rs256, &keys), Err(JwtError::WrongAlgorithm));

        let expired = sign(&json!({"exp": 1_000_000_000}), b"a-signing-secret");
        assert_eq!(verify(&expired, &keys), Err(JwtError::Expired));
        let fresh = sign(
            &json!({"exp": chrono::Utc::now().timestamp() + 60}),
            b"a-signing-secret",
        );
        assert!(verify(&fresh, &keys).is_ok());
    }

    #[test]
    fn tokens_issued_before_the_dedupe_window_are_expired() {
        let keys = [key("k", "a-signing-secret")];
        let now = chrono::Utc::now().timestamp();
        let old = sign(
            &json!({"iat": now - MAX_TOKEN_AGE_SECONDS - 60}),
            b"a-signing-secret",
        );
        assert_eq!(verify(&old, &keys), Err(JwtError::Expired));
        let recent = sign(&json!({"iat": now - 3600}), b"a-signing-secret");
        assert!(verify(&recent, &keys).is_ok());
        let neither = sign(&json!({"jti": "j"}), b"a-signing-secret");
        assert!(verify(&neither, &keys).is_ok(), "no exp nor iat: accepted");
    }

    #[test]
    fn the_header_is_read_into_a_typed_struct() {
        let header = |json: &str| format!("{}.e30.sig", URL_SAFE_NO_PAD.encode(json));
        assert_eq!(
            declared_algorithm(&header(r#"{"alg":"HS256","typ":"JWT","x":[1,{"y":2}]}"#)),
            Some("HS256".into())
        );
        assert_eq!(declared_algorithm(&header(r#"{"alg":7}"#)), None);
        assert_eq!(
            declared_algorithm(&header(r#"{"alg":"HS256","kid":[]}"#)),
            None
        );
        let deep = format!(
            "{{\"alg\":\"HS256\",\"x\":{}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(
            declared_algorithm(&header(&deep)),
            Some("HS256".into()),
            "unknown members are skipped, however deep, without building a tree"
        );
    }
}
