//! A tenant's wallet credentials, sealed at rest: the Apple Pass Type ID certificate
//! and key with Apple's WWDR intermediate (and optionally an APNs token key), and the
//! Google service account.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::PKey;
use openssl::x509::X509;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::{now_ms, rfc3339};
use crate::db::Db;
use crate::error::{DomainError, FieldError, Result};
use crate::vault::Vault;

pub const APPLE: &str = "apple";
pub const GOOGLE: &str = "google";

/// The Apple credentials as uploaded: PEM certificate and key, or a PKCS#12 bundle.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppleCredentialsInput {
    pub certificate_pem: Option<String>,
    pub private_key_pem: Option<String>,
    pub private_key_password: Option<String>,
    /// Base64 of a `.p12` holding the certificate and its key.
    pub pkcs12_base64: Option<String>,
    pub pkcs12_password: Option<String>,
    /// Apple's WWDR intermediate certificate.
    pub wwdr_pem: String,
    /// APNs token authentication (a `.p8` key); without it, APNs uses the certificate.
    pub apns: Option<ApnsTokenKey>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApnsTokenKey {
    pub key_p8: String,
    pub key_id: String,
    pub team_id: String,
}

/// The Apple credentials in use: unencrypted PEMs.
#[derive(Clone, Serialize, Deserialize)]
pub struct AppleCredentials {
    pub certificate_pem: String,
    pub private_key_pem: String,
    pub wwdr_pem: String,
    pub apns: Option<ApnsTokenKey>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GoogleCredentialsInput {
    /// The service account's JSON key file, as Google Cloud downloads it.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub service_account: Value,
}

/// What may be shown about stored credentials: never the secrets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialsSummary {
    pub kind: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: Value,
    pub updated_at: String,
}

impl CredentialsSummary {
    /// The summary as labelled fields for people to read; the API keeps `details` as
    /// stored.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let text =
            |value: &Value, name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
        let d = &self.details;
        let fields = match self.kind.as_str() {
            APPLE => {
                let apns = match d.get("apns").filter(|a| !a.is_null()) {
                    Some(a) => format!(
                        "key {} of team {}",
                        text(a, "keyId").unwrap_or_default(),
                        text(a, "teamId").unwrap_or_default()
                    ),
                    None => "not set".to_string(),
                };
                vec![
                    ("Pass certificate", text(d, "certificate")),
                    ("Valid until", text(d, "notAfter")),
                    ("Issuer (WWDR)", text(d, "wwdr")),
                    ("Push (APNs)", Some(apns)),
                ]
            }
            GOOGLE => vec![
                ("Service account", text(d, "clientEmail")),
                ("Private key id", text(d, "privateKeyId")),
            ],
            _ => Vec::new(),
        };
        fields
            .into_iter()
            .filter_map(|(label, value)| Some((label, value?)))
            .collect()
    }
}

fn invalid(field: &str, message: impl Into<String>) -> DomainError {
    DomainError::Invalid(vec![FieldError::new(field, message)])
}

fn read_apple(input: &AppleCredentialsInput) -> Result<(X509, PKey<openssl::pkey::Private>)> {
    if let Some(p12) = &input.pkcs12_base64 {
        let der = STANDARD
            .decode(p12.trim())
            .map_err(|_| invalid("pkcs12Base64", "is not base64"))?;
        let parsed = Pkcs12::from_der(&der)
            .and_then(|p| p.parse2(input.pkcs12_password.as_deref().unwrap_or("")))
            .map_err(|_| invalid("pkcs12Base64", "cannot be opened with this password"))?;
        return match (parsed.cert, parsed.pkey) {
            (Some(cert), Some(key)) => Ok((cert, key)),
            _ => Err(invalid(
                "pkcs12Base64",
                "must hold a certificate and its private key",
            )),
        };
    }
    let cert = input.certificate_pem.as_deref().ok_or_else(|| {
        invalid(
            "certificatePem",
            "give the certificate and key as PEM, or a PKCS#12 bundle",
        )
    })?;
    let cert = X509::from_pem(cert.as_bytes())
        .map_err(|_| invalid("certificatePem", "is not a PEM certificate"))?;
    let key = input
        .private_key_pem
        .as_deref()
        .ok_or_else(|| invalid("privateKeyPem", "is required"))?;
    let key = match &input.private_key_password {
        Some(password) => {
            PKey::private_key_from_pem_passphrase(key.as_bytes(), password.as_bytes())
        }
        None => PKey::private_key_from_pem(key.as_bytes()),
    }
    .map_err(|_| invalid("privateKeyPem", "cannot be read (wrong password?)"))?;
    Ok((cert, key))
}

fn pem(bytes: std::result::Result<Vec<u8>, openssl::error::ErrorStack>) -> Result<String> {
    bytes
        .map_err(|e| DomainError::Internal(e.to_string()))
        .and_then(|b| String::from_utf8(b).map_err(|e| DomainError::Internal(e.to_string())))
}

fn subject(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .filter_map(|e| e.data().to_string().ok())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks and stores the Apple credentials.
pub async fn put_apple(
    vault: Vault<'_>,
    tenant_id: &str,
    input: AppleCredentialsInput,
) -> Result<CredentialsSummary> {
    let (cert, key) = read_apple(&input)?;
    let matches = cert
        .public_key()
        .map(|public| public.public_eq(&key))
        .unwrap_or(false);
    if !matches {
        return Err(invalid(
            "privateKeyPem",
            "does not belong to the certificate",
        ));
    }
    let wwdr = X509::from_pem(input.wwdr_pem.as_bytes())
        .map_err(|_| invalid("wwdrPem", "is not a PEM certificate"))?;
    if let Some(apns) = &input.apns {
        PKey::private_key_from_pem(apns.key_p8.as_bytes())
            .map_err(|_| invalid("apns.keyP8", "is not a PEM private key"))?;
    }
    let credentials = AppleCredentials {
        certificate_pem: pem(cert.to_pem())?,
        private_key_pem: pem(key.private_key_to_pem_pkcs8())?,
        wwdr_pem: pem(wwdr.to_pem())?,
        apns: input.apns.clone(),
    };
    let details = json!({
        "certificate": subject(&cert),
        "notAfter": cert.not_after().to_string(),
        "wwdr": subject(&wwdr),
        "apns": input.apns.as_ref().map(|a| json!({"keyId": a.key_id, "teamId": a.team_id})),
    });
    store(
        vault,
        tenant_id,
        APPLE,
        &serde_json::to_string(&credentials).expect("serialises"),
        details,
    )
    .await
}

/// Checks and stores the Google service account.
pub async fn put_google(
    vault: Vault<'_>,
    tenant_id: &str,
    input: GoogleCredentialsInput,
) -> Result<CredentialsSummary> {
    let account = &input.service_account;
    let email = account["client_email"]
        .as_str()
        .ok_or_else(|| invalid("serviceAccount.client_email", "is required"))?;
    let key = account["private_key"]
        .as_str()
        .ok_or_else(|| invalid("serviceAccount.private_key", "is required"))?;
    PKey::private_key_from_pem(key.as_bytes())
        .map_err(|_| invalid("serviceAccount.private_key", "is not a PEM private key"))?;
    let details = json!({ "clientEmail": email, "privateKeyId": account["private_key_id"] });
    store(vault, tenant_id, GOOGLE, &account.to_string(), details).await
}

fn seal_context(tenant_id: &str, kind: &str) -> String {
    format!("{tenant_id}/wallet.{kind}")
}

async fn store(
    vault: Vault<'_>,
    tenant_id: &str,
    kind: &str,
    secret: &str,
    details: Value,
) -> Result<CredentialsSummary> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO wallet_credentials (tenant_id, kind, sealed, summary, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant_id, kind) DO UPDATE SET sealed = excluded.sealed, summary = excluded.summary, \
         updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(kind)
    .bind(vault.master_key.encrypt(secret, &seal_context(tenant_id, kind)))
    .bind(details.to_string())
    .bind(now)
    .execute(vault.db.writer())
    .await?;
    Ok(CredentialsSummary {
        kind: kind.into(),
        details,
        updated_at: rfc3339(now),
    })
}

async fn unseal(vault: Vault<'_>, tenant_id: &str, kind: &str) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT sealed FROM wallet_credentials WHERE tenant_id = $1 AND kind = $2")
            .bind(tenant_id)
            .bind(kind)
            .fetch_optional(vault.db.reader())
            .await?;
    row.map(|(sealed,)| {
        vault
            .master_key
            .decrypt(&sealed, &seal_context(tenant_id, kind))
            .map_err(|e| DomainError::Internal(e.to_string()))
    })
    .transpose()
}

pub async fn apple(vault: Vault<'_>, tenant_id: &str) -> Result<Option<AppleCredentials>> {
    unseal(vault, tenant_id, APPLE)
        .await?
        .map(|text| serde_json::from_str(&text).map_err(|e| DomainError::Internal(e.to_string())))
        .transpose()
}

pub async fn google(vault: Vault<'_>, tenant_id: &str) -> Result<Option<Value>> {
    unseal(vault, tenant_id, GOOGLE)
        .await?
        .map(|text| serde_json::from_str(&text).map_err(|e| DomainError::Internal(e.to_string())))
        .transpose()
}

pub async fn summaries(db: &Db, tenant_id: &str) -> Result<Vec<CredentialsSummary>> {
    let rows: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT kind, summary, updated_at FROM wallet_credentials WHERE tenant_id = $1 ORDER BY kind")
            .bind(tenant_id)
            .fetch_all(db.reader())
            .await?;
    Ok(rows
        .into_iter()
        .map(|(kind, summary, at)| CredentialsSummary {
            kind,
            details: serde_json::from_str(&summary).unwrap_or(Value::Null),
            updated_at: rfc3339(at),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(kind: &str, details: Value) -> CredentialsSummary {
        CredentialsSummary {
            kind: kind.into(),
            details,
            updated_at: String::new(),
        }
    }

    #[test]
    fn an_apple_summary_reads_as_labelled_fields() {
        let apple = summary(
            APPLE,
            json!({"certificate": "CN=Pass Type ID", "notAfter": "Dec 6 2027 GMT", "wwdr": "CN=WWDR",
                   "apns": {"keyId": "DEMOKEY000", "teamId": "TEAM000000"}}),
        );
        assert_eq!(
            apple.fields(),
            vec![
                ("Pass certificate", "CN=Pass Type ID".to_string()),
                ("Valid until", "Dec 6 2027 GMT".to_string()),
                ("Issuer (WWDR)", "CN=WWDR".to_string()),
                (
                    "Push (APNs)",
                    "key DEMOKEY000 of team TEAM000000".to_string()
                ),
            ]
        );
        let without_push = summary(APPLE, json!({"certificate": "CN=x", "apns": null}));
        assert_eq!(
            without_push.fields(),
            vec![
                ("Pass certificate", "CN=x".to_string()),
                ("Push (APNs)", "not set".to_string()),
            ]
        );
    }

    #[test]
    fn a_google_summary_names_the_account_and_key() {
        let google = summary(
            GOOGLE,
            json!({"clientEmail": "wallet@p.iam.gserviceaccount.com", "privateKeyId": "k1"}),
        );
        assert_eq!(
            google.fields(),
            vec![
                (
                    "Service account",
                    "wallet@p.iam.gserviceaccount.com".to_string()
                ),
                ("Private key id", "k1".to_string()),
            ]
        );
    }
}
