//! Passes: the wallet cards Passhook keeps up to date, their identifiers and history.
//!
//! A pass has identifiers (how outside systems find it), `additionalData` (the values
//! shown on the card) and `metadata` (free JSON). Every change to `additionalData`
//! raises the version and records what changed and why.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use crate::clock::{now_ms, rfc3339};
use crate::db::{is_unique_violation, Db};
use crate::error::{DomainError, FieldError, Result};
use crate::ids::{new_id, PASS};
use crate::sql::{escape_like, Arg, Where};

pub mod apply;
mod many;
pub(crate) use many::patch_many;
pub use many::{find_many, types_of};

pub type Identifiers = BTreeMap<String, String>;
pub type Data = Map<String, Value>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pass {
    pub id: String,
    pub pass_type: String,
    pub identifiers: Identifiers,
    /// Values shown on the pass: strings, numbers or booleans.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub additional_data: Data,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Data,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewPass {
    pub id: Option<String>,
    pub pass_type: String,
    pub identifiers: Identifiers,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub additional_data: Data,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Data,
}

/// One changed key of `additionalData`; `None` means absent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub key: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Why a pass changed: who or what asked for it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cause {
    /// `api`, `console`, `actito`, `sfmc`…
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journey_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<String>,
}

impl Cause {
    pub fn new(source: &str, actor: Option<&str>) -> Self {
        Cause {
            source: source.to_string(),
            actor: actor.map(str::to_string),
            ..Default::default()
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PassVersion {
    pub version: i64,
    pub changes: Vec<Change>,
    pub cause: Cause,
    pub message: Option<String>,
    /// Whether the customer is notified of this version.
    pub significant: bool,
    pub created_at: String,
}

/// The result of a patch: the pass as it now is and what changed (empty: nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct Patched {
    pub pass: Pass,
    pub changes: Vec<Change>,
    pub significant: bool,
}

/// A change to apply to a pass's `additionalData`.
#[derive(Clone, Copy, Debug)]
pub struct Update<'a> {
    /// `null` removes a key.
    pub changes: &'a Data,
    pub cause: &'a Cause,
    /// The notification text; a message makes the change significant.
    pub message: Option<&'a str>,
}

/// What to look for. Every given identifier must match.
#[derive(Clone, Debug, Default)]
pub struct PassFilter {
    pub identifiers: Vec<(String, String)>,
    pub pass_type: Option<String>,
    /// Console search: a part of the id or of any identifier value, any case.
    pub text: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PassPage {
    pub items: Vec<Pass>,
    /// Give it back as `cursor` for the next page; `null` on the last page.
    pub next: Option<String>,
}

/// Identifier values as they are matched: `email` trimmed and in lower case.
pub fn normalize_identifier(name: &str, value: &str) -> String {
    if name == "email" {
        value.trim().to_lowercase()
    } else {
        value.to_string()
    }
}

fn is_token(text: &str, max: usize) -> bool {
    !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

fn is_scalar(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

fn validate_new(new: &NewPass) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if let Some(id) = &new.id {
        if !is_token(id, 128) {
            errors.push(FieldError::new(
                "id",
                "use 1 to 128 letters, digits or . _ - :",
            ));
        }
    }
    if new.pass_type.trim().is_empty() || new.pass_type.len() > 100 {
        errors.push(FieldError::new("passType", "must have 1 to 100 characters"));
    }
    if new.identifiers.is_empty() {
        errors.push(FieldError::new(
            "identifiers",
            "give at least one identifier",
        ));
    }
    for (name, value) in &new.identifiers {
        if !is_token(name, 64) {
            errors.push(FieldError::new(
                format!("identifiers.{name}"),
                "names use 1 to 64 letters, digits or . _ - :",
            ));
        } else if value.trim().is_empty() || value.len() > 256 {
            errors.push(FieldError::new(
                format!("identifiers.{name}"),
                "values must have 1 to 256 characters",
            ));
        }
    }
    errors.extend(validate_data(&new.additional_data, false));
    errors
}

fn validate_data(data: &Data, allow_null: bool) -> Vec<FieldError> {
    data.iter()
        .filter_map(|(key, value)| {
            let field = format!("additionalData.{key}");
            if key.is_empty() || key.len() > 128 {
                Some(FieldError::new(field, "keys must have 1 to 128 characters"))
            } else if !(is_scalar(value) || (allow_null && value.is_null())) {
                let allowed = if allow_null {
                    "a string, a number, a boolean or null"
                } else {
                    "a string, a number or a boolean"
                };
                Some(FieldError::new(field, format!("must be {allowed}")))
            } else {
                None
            }
        })
        .collect()
}

type PassRow = (String, String, String, String, String, i64, i64, i64);

const PASS_COLUMNS: &str =
    "p.id, p.pass_type, p.identifiers, p.additional_data, p.metadata, p.version, p.created_at, p.updated_at";

fn from_row(row: PassRow) -> Result<Pass> {
    let (id, pass_type, identifiers, additional_data, metadata, version, created, updated) = row;
    let corrupt = |e: serde_json::Error| DomainError::Internal(format!("pass {id}: {e}"));
    Ok(Pass {
        identifiers: serde_json::from_str(&identifiers).map_err(corrupt)?,
        additional_data: serde_json::from_str(&additional_data).map_err(corrupt)?,
        metadata: serde_json::from_str(&metadata).map_err(corrupt)?,
        id,
        pass_type,
        version,
        created_at: rfc3339(created),
        updated_at: rfc3339(updated),
    })
}

pub async fn create(db: &Db, tenant_id: &str, new: NewPass) -> Result<Pass> {
    let errors = validate_new(&new);
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let id = new.id.clone().unwrap_or_else(|| new_id(PASS));
    let now = now_ms();
    let mut tx = db.writer().begin().await?;
    sqlx::query(
        "INSERT INTO passes (tenant_id, id, pass_type, identifiers, additional_data, metadata, \
         version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
    )
    .bind(tenant_id)
    .bind(&id)
    .bind(new.pass_type.trim())
    .bind(Value::from(to_json_map(&new.identifiers)).to_string())
    .bind(Value::Object(new.additional_data.clone()).to_string())
    .bind(Value::Object(new.metadata.clone()).to_string())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|e| match is_unique_violation(&e) {
        true => DomainError::Conflict(format!("pass {id} already exists")),
        false => e.into(),
    })?;
    for (name, value) in &new.identifiers {
        sqlx::query(
            "INSERT INTO pass_identifiers (tenant_id, pass_id, name, value) VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant_id)
        .bind(&id)
        .bind(name)
        .bind(normalize_identifier(name, value))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(Pass {
        id,
        pass_type: new.pass_type.trim().to_string(),
        identifiers: new.identifiers,
        additional_data: new.additional_data,
        metadata: new.metadata,
        version: 1,
        created_at: rfc3339(now),
        updated_at: rfc3339(now),
    })
}

fn to_json_map(identifiers: &Identifiers) -> Data {
    identifiers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

pub async fn get(db: &Db, tenant_id: &str, pass_id: &str) -> Result<Pass> {
    let mut conn = db.reader().acquire().await?;
    get_in(&mut conn, tenant_id, pass_id).await
}

pub async fn get_in(conn: &mut AnyConnection, tenant_id: &str, pass_id: &str) -> Result<Pass> {
    let sql = format!("SELECT {PASS_COLUMNS} FROM passes p WHERE p.tenant_id = $1 AND p.id = $2");
    let row: Option<PassRow> = sqlx::query_as(&sql)
        .bind(tenant_id)
        .bind(pass_id)
        .fetch_optional(&mut *conn)
        .await?;
    from_row(row.ok_or(DomainError::NotFound("pass"))?)
}

/// Applies `changes` to `additionalData` (`null` removes a key) and nothing else
/// (no wallet refresh, no live event): the store's own behaviour, for its tests.
/// The product changes passes through [`apply::apply`].
#[cfg(feature = "testing")]
pub async fn patch(
    db: &Db,
    tenant_id: &str,
    pass_id: &str,
    changes: &Data,
    cause: &Cause,
) -> Result<Patched> {
    let mut tx = db.writer().begin().await?;
    let update = Update {
        changes,
        cause,
        message: None,
    };
    let patched = patch_many(&mut tx, tenant_id, &[(pass_id, update)])
        .await?
        .pop()
        .flatten()
        .ok_or(DomainError::NotFound("pass"))?;
    tx.commit().await?;
    Ok(patched)
}

/// Ids of passes matching ANY of the identifiers, optionally of one type.
pub async fn find_any(
    conn: &mut AnyConnection,
    tenant_id: &str,
    identifiers: &[(String, String)],
    pass_type: Option<&str>,
) -> Result<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    for (name, value) in identifiers {
        let found: Vec<(String,)> = sqlx::query_as(
            "SELECT i.pass_id FROM pass_identifiers i JOIN passes p ON p.tenant_id = i.tenant_id AND p.id = i.pass_id \
             WHERE i.tenant_id = $1 AND i.name = $2 AND i.value = $3 AND ($4 = '' OR p.pass_type = $4) ORDER BY i.pass_id",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(normalize_identifier(name, value))
        .bind(pass_type.unwrap_or(""))
        .fetch_all(&mut *conn)
        .await?;
        ids.extend(found.into_iter().map(|(id,)| id));
    }
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The pass, if it exists (and is of `pass_type` when given).
pub async fn find_by_id(
    conn: &mut AnyConnection,
    tenant_id: &str,
    pass_id: &str,
    pass_type: Option<&str>,
) -> Result<Option<String>> {
    let found: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM passes WHERE tenant_id = $1 AND id = $2 AND ($3 = '' OR pass_type = $3)",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .bind(pass_type.unwrap_or(""))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.map(|(id,)| id))
}

/// Merge-patch semantics on a flat object: `null` removes, anything else sets.
pub fn merge(current: &Data, changes: &Data) -> (Data, Vec<Change>) {
    let mut data = current.clone();
    let mut diff = Vec::new();
    for (key, value) in changes {
        let before = current.get(key).cloned();
        let after = (!value.is_null()).then(|| value.clone());
        if before == after {
            continue;
        }
        match &after {
            Some(v) => data.insert(key.clone(), v.clone()),
            None => data.remove(key),
        };
        diff.push(Change {
            key: key.clone(),
            before,
            after,
        });
    }
    (data, diff)
}

/// The `WHERE` clause over `passes p` of a filter.
fn where_of(tenant_id: &str, filter: &PassFilter) -> Where {
    let mut w = Where::new("p.tenant_id", tenant_id);
    for (name, value) in &filter.identifiers {
        let (n, v) = (
            w.arg(name.clone()),
            w.arg(normalize_identifier(name, value)),
        );
        w.and(&format!(
            "EXISTS (SELECT 1 FROM pass_identifiers i WHERE i.tenant_id = p.tenant_id \
             AND i.pass_id = p.id AND i.name = {n} AND i.value = {v})"
        ));
    }
    if let Some(pass_type) = &filter.pass_type {
        let t = w.arg(pass_type.clone());
        w.and(&format!("p.pass_type = {t}"));
    }
    if let Some(text) = filter
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let pattern = w.arg(format!("%{}%", escape_like(&text.to_lowercase())));
        w.and(&format!(
            "(LOWER(p.id) LIKE {pattern} ESCAPE '\\' OR EXISTS (SELECT 1 FROM pass_identifiers i \
             WHERE i.tenant_id = p.tenant_id AND i.pass_id = p.id \
             AND LOWER(i.value) LIKE {pattern} ESCAPE '\\'))"
        ));
    }
    w
}

/// Passes matching `filter`, oldest first, a page at a time (cursor pagination).
pub async fn search(
    db: &Db,
    tenant_id: &str,
    filter: &PassFilter,
    cursor: Option<&str>,
    limit: u32,
) -> Result<PassPage> {
    let limit = limit.clamp(1, 500);
    let mut w = where_of(tenant_id, filter);
    if let Some(cursor) = cursor {
        let (at, id) = decode_cursor(cursor)
            .ok_or_else(|| DomainError::invalid("cursor", "is not a cursor from this API"))?;
        let (a, i) = (w.push(Arg::Int(at)), w.arg(id));
        w.and(&format!(
            "(p.created_at > {a} OR (p.created_at = {a} AND p.id > {i}))"
        ));
    }
    let sql = format!(
        "SELECT {PASS_COLUMNS} FROM passes p WHERE {} ORDER BY p.created_at, p.id LIMIT {}",
        w.sql,
        limit + 1
    );
    let mut items = fetch(db, &sql, &w).await?;
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(encode_cursor)
    } else {
        None
    };
    Ok(PassPage { items, next })
}

/// For the console: newest first, by page number, with the total count.
pub async fn list_page(
    db: &Db,
    tenant_id: &str,
    filter: &PassFilter,
    offset: u32,
    limit: u32,
) -> Result<(Vec<Pass>, i64)> {
    let w = where_of(tenant_id, filter);
    let sql = format!(
        "SELECT {PASS_COLUMNS} FROM passes p WHERE {} ORDER BY p.created_at DESC, p.id DESC \
         LIMIT {} OFFSET {}",
        w.sql,
        limit.clamp(1, 200),
        offset
    );
    let items = fetch(db, &sql, &w).await?;
    let count_sql = format!("SELECT COUNT(*) FROM passes p WHERE {}", w.sql);
    let (total,) = w
        .bind(sqlx::query_as::<_, (i64,)>(&count_sql))
        .fetch_one(db.reader())
        .await?;
    Ok((items, total))
}

async fn fetch(db: &Db, sql: &str, w: &Where) -> Result<Vec<Pass>> {
    w.bind(sqlx::query_as::<_, PassRow>(sql))
        .fetch_all(db.reader())
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

fn encode_cursor(pass: &Pass) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(&pass.created_at)
        .map(|t| t.timestamp_millis())
        .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("{at}|{}", pass.id))
}

fn decode_cursor(cursor: &str) -> Option<(i64, String)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (at, id) = text.split_once('|')?;
    Some((at.parse().ok()?, id.to_string()))
}

/// Versions after the first, newest first.
pub async fn versions(db: &Db, tenant_id: &str, pass_id: &str) -> Result<Vec<PassVersion>> {
    let rows: Vec<(i64, String, String, i64, Option<String>, i64)> = sqlx::query_as(
        "SELECT version, changes, cause, created_at, message, significant FROM pass_versions \
         WHERE tenant_id = $1 AND pass_id = $2 ORDER BY version DESC",
    )
    .bind(tenant_id)
    .bind(pass_id)
    .fetch_all(db.reader())
    .await?;
    rows.into_iter()
        .map(|(version, changes, cause, at, message, significant)| {
            Ok(PassVersion {
                version,
                changes: serde_json::from_str(&changes)
                    .map_err(|e| DomainError::Internal(e.to_string()))?,
                cause: serde_json::from_str(&cause)
                    .map_err(|e| DomainError::Internal(e.to_string()))?,
                message,
                significant: significant != 0,
                created_at: rfc3339(at),
            })
        })
        .collect()
}

/// How many passes of each type a tenant has, most common first.
pub async fn count_by_type(db: &Db, tenant_id: &str) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT pass_type, COUNT(*) AS n FROM passes WHERE tenant_id = $1 \
         GROUP BY pass_type ORDER BY n DESC, pass_type",
    )
    .bind(tenant_id)
    .fetch_all(db.reader())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(value: Value) -> Data {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn merge_sets_removes_and_reports_only_real_changes() {
        let current = data(json!({"points": 10, "tier": "gold", "name": "Ann"}));
        let (merged, diff) = merge(
            &current,
            &data(json!({"points": 20, "tier": null, "name": "Ann", "gone": null})),
        );
        assert_eq!(merged, data(json!({"points": 20, "name": "Ann"})));
        assert_eq!(
            diff,
            vec![
                Change {
                    key: "points".into(),
                    before: Some(json!(10)),
                    after: Some(json!(20))
                },
                Change {
                    key: "tier".into(),
                    before: Some(json!("gold")),
                    after: None
                },
            ]
        );
    }

    #[test]
    fn email_identifiers_match_case_insensitively_after_trimming() {
        assert_eq!(
            normalize_identifier("email", "  John@Example.COM "),
            "john@example.com"
        );
        assert_eq!(normalize_identifier("customId", " AbC "), " AbC ");
    }

    #[test]
    fn new_passes_are_validated_field_by_field() {
        let bad = NewPass {
            id: Some("has space".into()),
            pass_type: "".into(),
            identifiers: Identifiers::new(),
            additional_data: data(json!({"nested": {"a": 1}, "ok": 1})),
            metadata: Data::new(),
        };
        let fields: Vec<String> = validate_new(&bad).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["id", "passType", "identifiers", "additionalData.nested"]
        );
    }

    #[test]
    fn cursors_round_trip() {
        let pass = Pass {
            id: "pass_1".into(),
            pass_type: "t".into(),
            identifiers: Identifiers::new(),
            additional_data: Data::new(),
            metadata: Data::new(),
            version: 1,
            created_at: rfc3339(1_700_000_000_123),
            updated_at: rfc3339(1_700_000_000_123),
        };
        assert_eq!(
            decode_cursor(&encode_cursor(&pass)),
            Some((1_700_000_000_123, "pass_1".into()))
        );
        assert_eq!(decode_cursor("!!"), None);
    }
}
