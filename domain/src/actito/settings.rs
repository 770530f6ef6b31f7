//! A tenant's Actito integration (CONTRACT §5); the API key is sealed at rest.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::client::ActitoClient;
use crate::clock::{now_ms, rfc3339};
use crate::db::Db;
use crate::error::{DomainError, FieldError, Result};
use crate::history::{self, Area, MASK};
use crate::outbound::PrivateHosts;
use crate::vault::Vault;

/// Defined beside the client that calls Actito with it, so that the client does not
/// import this store (which takes the client to test a connection).
pub use super::client::ActitoSettings;

pub const DEFAULT_API_BASE_URL: &str = "https://api.actito.com";

/// The settings as sent by an admin. Absent fields take the contract's defaults;
/// an absent `apiKey` keeps the stored one, unless `apiBaseUrl` changes: the stored
/// key only ever goes to the host it was entered for.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActitoSettingsInput {
    pub api_base_url: Option<String>,
    pub entity: String,
    pub api_key: Option<String>,
    pub profile_table_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub identifier_mapping: Option<Map<String, Value>>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data_mapping: Option<Map<String, Value>>,
    pub callback_hosts: Option<Vec<String>>,
}

/// The settings as shown: the API key masked.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActitoSettingsView {
    pub api_base_url: String,
    pub entity: String,
    pub api_key: String,
    pub profile_table_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub identifier_mapping: Map<String, Value>,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data_mapping: Map<String, Value>,
    pub callback_hosts: Vec<String>,
    pub updated_at: String,
}

pub fn default_identifier_mapping() -> Vec<(String, String)> {
    vec![
        ("emailAddress".into(), "email".into()),
        ("businessId".into(), "customId".into()),
    ]
}

pub fn default_callback_hosts() -> Vec<String> {
    vec!["*.actito.com".into(), "*.actito.be".into()]
}

fn pairs(
    map: &Map<String, Value>,
    field: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<(String, String)> {
    map.iter()
        .filter_map(|(k, v)| match v.as_str().map(str::trim) {
            Some(t) if !t.is_empty() && !k.trim().is_empty() => {
                Some((k.trim().to_string(), t.to_string()))
            }
            _ => {
                errors.push(FieldError::new(
                    format!("{field}.{k}"),
                    "must map to a non-empty name",
                ));
                None
            }
        })
        .collect()
}

fn to_map(pairs: &[(String, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

/// A callback host pattern: a host name or `*.` followed by a domain.
fn is_host_pattern(pattern: &str) -> bool {
    let host = pattern.strip_prefix("*.").unwrap_or(pattern);
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn mask(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("••••{tail}")
}

fn seal_context(tenant_id: &str) -> String {
    format!("{tenant_id}/actito.apiKey")
}

/// Validates and stores the settings. `allow` is the operator's list of non-public
/// hosts the API URL and callback hosts may name (the outbound client's).
pub async fn put(
    vault: Vault<'_>,
    allow: &PrivateHosts,
    tenant_id: &str,
    input: ActitoSettingsInput,
    actor: &str,
) -> Result<ActitoSettingsView> {
    let before = match row(vault.db, tenant_id).await? {
        Some(row) => Some((decrypt(vault, tenant_id, &row)?, row)),
        None => None,
    };
    let before_view = before
        .as_ref()
        .map(|(settings, row)| view_of(settings, row.7));
    let stored_key = before.as_ref().map(|(settings, row)| StoredKey {
        sealed: row.2.clone(),
        key: settings.api_key.clone(),
        host: settings.api_base_url.clone(),
    });
    let (after, saved) = store(vault, allow, tenant_id, input, stored_key).await?;
    let key_changed = before.map(|(settings, _)| settings.api_key) != Some(after.api_key);
    record_change(
        vault.db,
        tenant_id,
        actor,
        before_view.as_ref(),
        &saved,
        key_changed,
    )
    .await?;
    Ok(saved)
}

/// Notes what changed in the settings history, the API key only as changed or not.
async fn record_change(
    db: &Db,
    tenant_id: &str,
    actor: &str,
    before: Option<&ActitoSettingsView>,
    after: &ActitoSettingsView,
    key_changed: bool,
) -> Result<()> {
    let as_map = |view: Option<&ActitoSettingsView>, key: &str| {
        let mut map = match view.map(serde_json::to_value) {
            Some(Ok(Value::Object(map))) => map,
            _ => Map::new(),
        };
        if view.is_some() {
            map.insert("apiKey".into(), Value::String(key.into()));
        }
        map
    };
    let old = as_map(before, "old");
    let new = as_map(Some(after), if key_changed { "new" } else { "old" });
    let changes = history::diff(&old, &new, &["apiKey"], &["updatedAt"]);
    let summary = match before {
        None => "Connected Actito",
        Some(_) => "Changed Actito settings",
    };
    history::record(db, tenant_id, Area::Actito, actor, summary, &changes).await
}

/// The key already stored: sealed, in clear, and the API host it was entered for.
struct StoredKey {
    sealed: String,
    key: String,
    host: String,
}

/// Why a stored key is not reused with another host (the field error on `apiKey`).
pub const KEY_FOR_NEW_HOST: &str =
    "enter the API key again: the API host changed, and the stored key is only sent to the host it was entered for";

/// An API base URL as stored: trimmed, without a trailing slash.
fn normalise_base(base: &str) -> String {
    base.trim().trim_end_matches('/').to_string()
}

/// An http(s) URL whose host is not an obviously private place (a non-public IP
/// literal, `localhost`) unless the operator allows it. Names that lead to private
/// addresses are refused when called, by the guarded client.
fn check_base(base: &str, allow: &PrivateHosts, errors: &mut Vec<FieldError>) {
    match url::Url::parse(base) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            let host = u.host_str().unwrap_or_default();
            if let Some(why) = allow.refuses(host) {
                errors.push(FieldError::new("apiBaseUrl", why));
            }
        }
        _ => errors.push(FieldError::new("apiBaseUrl", "must be an http(s) URL")),
    }
}

/// Validates and writes the settings (`stored_key`: the key already stored, kept when
/// the input has none and the host is unchanged); returns them in clear and as an
/// admin sees them.
async fn store(
    vault: Vault<'_>,
    allow: &PrivateHosts,
    tenant_id: &str,
    input: ActitoSettingsInput,
    stored_key: Option<StoredKey>,
) -> Result<(ActitoSettings, ActitoSettingsView)> {
    let mut errors = Vec::new();
    let base = normalise_base(
        input
            .api_base_url
            .as_deref()
            .unwrap_or(DEFAULT_API_BASE_URL),
    );
    check_base(&base, allow, &mut errors);
    if input.entity.trim().is_empty() {
        errors.push(FieldError::new("entity", "is required"));
    }
    if input.profile_table_id.trim().is_empty() {
        errors.push(FieldError::new("profileTableId", "is required"));
    }
    let identifier_mapping = match &input.identifier_mapping {
        Some(map) => pairs(map, "identifierMapping", &mut errors),
        None => default_identifier_mapping(),
    };
    let data_mapping = match &input.data_mapping {
        Some(map) => pairs(map, "dataMapping", &mut errors),
        None => Vec::new(),
    };
    let callback_hosts: Vec<String> = input
        .callback_hosts
        .unwrap_or_else(default_callback_hosts)
        .into_iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    for host in &callback_hosts {
        if !is_host_pattern(host) {
            errors.push(FieldError::new(
                "callbackHosts",
                format!("{host:?} is not a host or *.domain pattern"),
            ));
        } else if let Some(why) = allow.refuses(host) {
            errors.push(FieldError::new("callbackHosts", why));
        }
    }
    let (sealed, api_key) = match input
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
    {
        Some(key) => (
            vault.master_key.encrypt(key, &seal_context(tenant_id)),
            key.to_string(),
        ),
        None => match stored_key {
            Some(stored) if stored.host == base => (stored.sealed, stored.key),
            Some(_) => {
                errors.push(FieldError::new("apiKey", KEY_FOR_NEW_HOST));
                Default::default()
            }
            None => {
                errors.push(FieldError::new("apiKey", "is required"));
                Default::default()
            }
        },
    };
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let now = now_ms();
    sqlx::query(
        "INSERT INTO actito_settings (tenant_id, api_base_url, entity, api_key, profile_table_id, \
         identifier_mapping, data_mapping, callback_hosts, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (tenant_id) DO UPDATE SET api_base_url = excluded.api_base_url, entity = excluded.entity, \
         api_key = excluded.api_key, profile_table_id = excluded.profile_table_id, \
         identifier_mapping = excluded.identifier_mapping, data_mapping = excluded.data_mapping, \
         callback_hosts = excluded.callback_hosts, updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(&base)
    .bind(input.entity.trim())
    .bind(&sealed)
    .bind(input.profile_table_id.trim())
    .bind(Value::Object(to_map(&identifier_mapping)).to_string())
    .bind(Value::Object(to_map(&data_mapping)).to_string())
    .bind(serde_json::to_string(&callback_hosts).expect("strings serialise"))
    .bind(now)
    .execute(vault.db.writer())
    .await?;
    let settings = ActitoSettings {
        api_base_url: base,
        entity: input.entity.trim().to_string(),
        api_key,
        profile_table_id: input.profile_table_id.trim().to_string(),
        identifier_mapping,
        data_mapping,
        callback_hosts,
    };
    let view = view_of(&settings, now);
    Ok((settings, view))
}

type Row = (String, String, String, String, String, String, String, i64);

async fn row(db: &Db, tenant_id: &str) -> Result<Option<Row>> {
    Ok(sqlx::query_as(
        "SELECT api_base_url, entity, api_key, profile_table_id, identifier_mapping, data_mapping, \
         callback_hosts, updated_at FROM actito_settings WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(db.reader())
    .await?)
}

fn parse_pairs(text: &str) -> Vec<(String, String)> {
    serde_json::from_str::<Map<String, Value>>(text)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| Some((k, v.as_str()?.to_string())))
        .collect()
}

/// The settings in clear, for calling Actito; `None` when not configured.
pub async fn get(vault: Vault<'_>, tenant_id: &str) -> Result<Option<ActitoSettings>> {
    let Some(row) = row(vault.db, tenant_id).await? else {
        return Ok(None);
    };
    decrypt(vault, tenant_id, &row).map(Some)
}

fn decrypt(vault: Vault<'_>, tenant_id: &str, row: &Row) -> Result<ActitoSettings> {
    let (base, entity, sealed, table, ids, data, hosts, _) = row;
    let api_key = vault
        .master_key
        .decrypt(sealed, &seal_context(tenant_id))
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    Ok(ActitoSettings {
        api_base_url: base.clone(),
        entity: entity.clone(),
        api_key,
        profile_table_id: table.clone(),
        identifier_mapping: parse_pairs(ids),
        data_mapping: parse_pairs(data),
        callback_hosts: serde_json::from_str(hosts).unwrap_or_default(),
    })
}

/// What "Test connection" is asked to check: a host and, when typed, a key.
#[derive(Clone, Debug, Default)]
pub struct ConnectionTestInput {
    pub api_base_url: String,
    /// The key typed in the form; empty to use the stored key, which is allowed only
    /// with the host it was stored for.
    pub api_key: String,
}

/// How a connection test went, in words for the admin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionOutcome {
    pub ok: bool,
    pub message: String,
}

/// Exchanges a key for a token at the given host: the typed key, or the stored key
/// when the host is the one it was stored for (otherwise a field error on `apiKey`,
/// and no call). The attempt and its outcome are recorded in the settings history,
/// never the key; Actito's answer is described by its status only. The host is
/// checked against the allow-list of `actito`, the client that makes the call.
pub async fn test_connection(
    vault: Vault<'_>,
    actito: &ActitoClient,
    tenant_id: &str,
    input: ConnectionTestInput,
    actor: &str,
) -> Result<ConnectionOutcome> {
    let base = normalise_base(&input.api_base_url);
    let mut errors = Vec::new();
    check_base(&base, actito.private_hosts(), &mut errors);
    let typed = input.api_key.trim();
    let (api_key, which) = if !typed.is_empty() {
        (typed.to_string(), "typed in the form")
    } else {
        match get(vault, tenant_id).await? {
            Some(stored) if stored.api_base_url == base => (stored.api_key, "stored"),
            Some(_) => {
                errors.push(FieldError::new("apiKey", KEY_FOR_NEW_HOST));
                (String::new(), "")
            }
            None => {
                errors.push(FieldError::new("apiKey", "enter the API key to test"));
                (String::new(), "")
            }
        }
    };
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let settings = ActitoSettings {
        api_base_url: base.clone(),
        entity: String::new(),
        api_key,
        profile_table_id: String::new(),
        identifier_mapping: Vec::new(),
        data_mapping: Vec::new(),
        callback_hosts: Vec::new(),
    };
    let outcome = match actito.test_connection(&settings).await {
        Ok(()) => ConnectionOutcome {
            ok: true,
            message: format!("Connected: {base} accepted the API key and issued a token."),
        },
        Err(e) => ConnectionOutcome {
            ok: false,
            message: e.to_string(),
        },
    };
    let changes = [
        history::Change::new("apiBaseUrl", None, Some(base)),
        history::Change::new("apiKey", None, Some(format!("{MASK} ({which})"))),
        history::Change::new(
            "outcome",
            None,
            Some(if outcome.ok {
                "connected".into()
            } else {
                outcome.message.clone()
            }),
        ),
    ];
    history::record(
        vault.db,
        tenant_id,
        Area::Actito,
        actor,
        "Tested the Actito connection",
        &changes,
    )
    .await?;
    Ok(outcome)
}

/// The settings as an admin may see them.
pub async fn view(vault: Vault<'_>, tenant_id: &str) -> Result<Option<ActitoSettingsView>> {
    let Some(row) = row(vault.db, tenant_id).await? else {
        return Ok(None);
    };
    Ok(Some(view_of(&decrypt(vault, tenant_id, &row)?, row.7)))
}

fn view_of(settings: &ActitoSettings, updated_at: i64) -> ActitoSettingsView {
    ActitoSettingsView {
        api_base_url: settings.api_base_url.clone(),
        entity: settings.entity.clone(),
        api_key: mask(&settings.api_key),
        profile_table_id: settings.profile_table_id.clone(),
        identifier_mapping: to_map(&settings.identifier_mapping),
        data_mapping: to_map(&settings.data_mapping),
        callback_hosts: settings.callback_hosts.clone(),
        updated_at: rfc3339(updated_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_only_the_last_four_characters() {
        assert_eq!(mask("abcdefgh"), "••••efgh");
        assert_eq!(mask("ab"), "••••ab");
    }

    #[test]
    fn host_patterns_are_checked() {
        for ok in ["*.actito.com", "api.actito.be", "127.0.0.1", "localhost"] {
            assert!(is_host_pattern(ok), "{ok}");
        }
        for bad in ["", "*.", "https://x.com", "a b", "x/y"] {
            assert!(!is_host_pattern(bad), "{bad}");
        }
    }
}
