//! Settings history: every change to an integration, who made it, and what changed.
//! Secrets never reach this table: a changed secret is recorded as `••••`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::{now_ms, rfc3339};
use crate::db::Db;
use crate::error::Result;

/// The part of the settings a change belongs to; each console page shows its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    Actito,
    Sfmc,
    ApiKeys,
    Wallet,
    Users,
    Retention,
}

impl Area {
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Actito => "actito",
            Area::Sfmc => "sfmc",
            Area::ApiKeys => "api-keys",
            Area::Wallet => "wallet",
            Area::Users => "users",
            Area::Retention => "retention",
        }
    }
}

pub const MASK: &str = "••••";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl Change {
    pub fn new(field: impl Into<String>, before: Option<String>, after: Option<String>) -> Self {
        Change {
            field: field.into(),
            before,
            after,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub at: String,
    pub area: Area,
    pub actor: String,
    pub summary: String,
    pub changes: Vec<Change>,
}

/// Who made a change, as shown in the history.
pub fn by_user(email: &str) -> String {
    email.to_string()
}

pub fn by_api_key(name: &str, key_id: &str) -> String {
    format!("API key “{name}” ({key_id})")
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The fields that differ between two JSON views of the settings. Fields named in
/// `secrets` are shown as `••••`; `ignored` fields (timestamps) are left out.
pub fn diff(
    before: &Map<String, Value>,
    after: &Map<String, Value>,
    secrets: &[&str],
    ignored: &[&str],
) -> Vec<Change> {
    let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
    fields.sort();
    fields.dedup();
    fields
        .into_iter()
        .filter(|f| !ignored.contains(&f.as_str()))
        .filter(|f| before.get(*f) != after.get(*f))
        .map(|f| {
            let show = |v: Option<&Value>| {
                v.filter(|v| !v.is_null())
                    .map(|v| match secrets.contains(&f.as_str()) {
                        true => MASK.to_string(),
                        false => text(v),
                    })
            };
            Change::new(f.clone(), show(before.get(f)), show(after.get(f)))
        })
        .collect()
}

/// Records a change. Nothing is recorded when nothing changed.
pub async fn record(
    db: &Db,
    tenant_id: &str,
    area: Area,
    actor: &str,
    summary: &str,
    changes: &[Change],
) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO settings_history (tenant_id, area, actor, summary, changes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(area.as_str())
    .bind(actor)
    .bind(summary)
    .bind(serde_json::to_string(changes).expect("changes serialise"))
    .bind(now_ms())
    .execute(db.writer())
    .await?;
    Ok(())
}

/// The newest changes first, for one area or all of them.
pub async fn list(db: &Db, tenant_id: &str, area: Option<Area>, limit: i64) -> Result<Vec<Entry>> {
    let rows: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT area, actor, summary, changes, created_at FROM settings_history \
         WHERE tenant_id = $1 AND ($2 = '' OR area = $2) ORDER BY seq DESC LIMIT $3",
    )
    .bind(tenant_id)
    .bind(area.map(Area::as_str).unwrap_or(""))
    .bind(limit)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(area, actor, summary, changes, at)| {
            Some(Entry {
                at: rfc3339(at),
                area: serde_json::from_value(Value::String(area)).ok()?,
                actor,
                summary,
                changes: serde_json::from_str(&changes).unwrap_or_default(),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn diff_lists_changed_fields_and_masks_secrets() {
        let before =
            map(json!({"entity": "acme", "apiKey": "••••abcd", "updatedAt": "1", "hosts": ["a"]}));
        let after =
            map(json!({"entity": "acme2", "apiKey": "••••wxyz", "updatedAt": "2", "hosts": ["a"]}));
        let changes = diff(&before, &after, &["apiKey"], &["updatedAt"]);
        assert_eq!(
            changes,
            vec![
                Change::new("apiKey", Some(MASK.into()), Some(MASK.into())),
                Change::new("entity", Some("acme".into()), Some("acme2".into())),
            ]
        );
    }

    #[test]
    fn added_fields_have_no_before() {
        let changes = diff(&Map::new(), &map(json!({"entity": "acme"})), &[], &[]);
        assert_eq!(
            changes,
            vec![Change::new("entity", None, Some("acme".into()))]
        );
    }
}
