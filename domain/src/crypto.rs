//! Secrets at rest: AES-256-GCM under the master key, plus hashing of API keys.

use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const VERSION: &str = "v1";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("PASSHOOK_MASTER_KEY must be base64 of exactly 32 bytes")]
    BadMasterKey,
    #[error("cannot read or create the master key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("a secret could not be decrypted (wrong master key or damaged data)")]
    Decrypt,
}

/// The key that encrypts secrets at rest.
#[derive(Clone)]
pub struct MasterKey(Key<Aes256Gcm>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(••••)")
    }
}

impl MasterKey {
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::BadMasterKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadMasterKey)?;
        Ok(MasterKey(bytes.into()))
    }

    pub fn generate() -> Self {
        MasterKey(Aes256Gcm::generate_key(OsRng))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.as_slice())
    }

    /// Reads the key file, creating it (mode 0600) with a fresh key when missing.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                write_private(path, &key.to_base64()).map_err(io)?;
                Ok(key)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Encrypts `plaintext`; `context` (e.g. "tenant/actito.apiKey") is bound as
    /// associated data so a ciphertext cannot be moved to another field or tenant.
    pub fn encrypt(&self, plaintext: &str, context: &str) -> String {
        let cipher = Aes256Gcm::new(&self.0);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{VERSION}:{}", STANDARD.encode(out))
    }

    /// A token derived from the master key for `context` (HMAC-SHA256, URL-safe):
    /// the same every time, so it need not be stored, and unguessable without the key.
    pub fn derive_token(&self, context: &str) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes any key length");
        mac.update(context.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// A 32-byte key derived from the master key for `context` (HMAC-SHA256 as the
    /// pseudo-random function), for uses that need their own key, such as the
    /// single sign-on cookie: a key for one purpose says nothing about another.
    pub fn derive_key(&self, context: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes any key length");
        mac.update(b"passhook derived key\0");
        mac.update(context.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn decrypt(&self, sealed: &str, context: &str) -> Result<String, KeyError> {
        let body = sealed
            .strip_prefix("v1:")
            .ok_or(KeyError::Decrypt)
            .and_then(|b| STANDARD.decode(b).map_err(|_| KeyError::Decrypt))?;
        if body.len() < 12 {
            return Err(KeyError::Decrypt);
        }
        let (nonce, ciphertext) = body.split_at(12);
        let plain = Aes256Gcm::new(&self.0)
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Decrypt)?;
        String::from_utf8(plain).map_err(|_| KeyError::Decrypt)
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// A random token of `bytes` bytes, URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// SHA-256 hex digest. Fit for high-entropy secrets (API keys), not for passwords.
pub fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_are_bound_to_their_context() {
        let key = MasterKey::generate();
        let sealed = key.encrypt("s3cret", "acme/actito.apiKey");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(
            key.decrypt(&sealed, "acme/actito.apiKey").unwrap(),
            "s3cret"
        );
        assert!(key.decrypt(&sealed, "other/actito.apiKey").is_err());
        assert!(MasterKey::generate()
            .decrypt(&sealed, "acme/actito.apiKey")
            .is_err());
    }

    #[test]
    fn same_plaintext_encrypts_differently() {
        let key = MasterKey::generate();
        assert_ne!(key.encrypt("x", "c"), key.encrypt("x", "c"));
    }

    #[test]
    fn derived_keys_depend_on_the_master_key_and_the_context() {
        let key = MasterKey::generate();
        assert_eq!(key.derive_key("sso"), key.derive_key("sso"));
        assert_ne!(key.derive_key("sso"), key.derive_key("other"));
        assert_ne!(
            key.derive_key("sso"),
            MasterKey::generate().derive_key("sso")
        );
        // Not the bytes behind the token of the same context.
        let token = URL_SAFE_NO_PAD.decode(key.derive_token("sso")).unwrap();
        assert_ne!(token.as_slice(), key.derive_key("sso").as_slice());
    }

    #[test]
    fn master_key_must_be_32_bytes() {
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(MasterKey::from_base64(&STANDARD.encode([7u8; 16])).is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
    }

    #[test]
    fn key_file_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let first = MasterKey::load_or_create(&path).unwrap();
        let second = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(first.to_base64(), second.to_base64());
    }
}
