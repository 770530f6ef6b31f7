//! Pass types: per tenant, how a pass of that type looks on each platform, and which
//! of its fields are worth a notification.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::{now_ms, rfc3339};
use crate::db::Db;
use crate::error::{DomainError, FieldError, Result};
use crate::passes::Data;

/// One field on the pass, bound to an `additionalData` key (or a fixed value).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldDef {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The `additionalData` key whose value the field shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<String>,
    /// Shown when `valueFrom` is absent from the pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Apple: the lock-screen text when the value changes, with `%@` for the new value.
    /// A field with a change message is notify-worthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_message: Option<String>,
    /// Google: whether a change of this field notifies the customer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notify: bool,
}

impl FieldDef {
    /// The field's value for a pass: its bound data, else its fixed value.
    pub fn resolve(&self, data: &Data) -> Option<Value> {
        self.value_from
            .as_ref()
            .and_then(|k| data.get(k).cloned())
            .or_else(|| self.value.clone().map(Value::String))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppleFields {
    #[serde(default)]
    pub header: Vec<FieldDef>,
    #[serde(default)]
    pub primary: Vec<FieldDef>,
    #[serde(default)]
    pub secondary: Vec<FieldDef>,
    #[serde(default)]
    pub auxiliary: Vec<FieldDef>,
    #[serde(default)]
    pub back: Vec<FieldDef>,
}

impl AppleFields {
    pub fn all(&self) -> impl Iterator<Item = &FieldDef> {
        self.header
            .iter()
            .chain(&self.primary)
            .chain(&self.secondary)
            .chain(&self.auxiliary)
            .chain(&self.back)
    }
}

pub const APPLE_STYLES: [&str; 5] = [
    "storeCard",
    "coupon",
    "eventTicket",
    "generic",
    "boardingPass",
];
pub const GOOGLE_KINDS: [&str; 4] = ["loyalty", "offer", "generic", "eventTicket"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppleDesign {
    pub pass_type_identifier: String,
    pub team_identifier: String,
    pub organization_name: String,
    pub description: String,
    /// storeCard, coupon, eventTicket, generic or boardingPass.
    pub style: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreground_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub background_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_text: Option<String>,
    #[serde(default)]
    pub fields: AppleFields,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GoogleDesign {
    pub issuer_id: String,
    pub class_id: String,
    /// loyalty, offer, generic or eventTicket.
    pub object_kind: String,
    #[serde(default)]
    pub fields: Vec<FieldDef>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PassTypeInput {
    pub name: String,
    #[serde(default)]
    pub apple: Option<AppleDesign>,
    #[serde(default)]
    pub google: Option<GoogleDesign>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PassType {
    pub id: String,
    pub name: String,
    pub apple: Option<AppleDesign>,
    pub google: Option<GoogleDesign>,
    pub updated_at: String,
}

impl PassType {
    /// Whether a change of these `additionalData` keys is worth notifying the customer:
    /// Apple fields with a change message, Google fields flagged `notify`.
    pub fn notify_worthy(&self, changed: &[&str]) -> bool {
        let bound = |f: &FieldDef| {
            f.value_from
                .as_deref()
                .is_some_and(|k| changed.contains(&k))
        };
        let apple = self
            .apple
            .iter()
            .flat_map(|a| a.fields.all())
            .any(|f| f.change_message.is_some() && bound(f));
        let google = self
            .google
            .iter()
            .flat_map(|g| &g.fields)
            .any(|f| f.notify && bound(f));
        apple || google
    }
}

fn validate(input: &PassTypeInput) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if input.name.trim().is_empty() {
        errors.push(FieldError::new("name", "is required"));
    }
    if let Some(apple) = &input.apple {
        for (field, value) in [
            ("apple.passTypeIdentifier", &apple.pass_type_identifier),
            ("apple.teamIdentifier", &apple.team_identifier),
            ("apple.organizationName", &apple.organization_name),
            ("apple.description", &apple.description),
        ] {
            if value.trim().is_empty() {
                errors.push(FieldError::new(field, "is required"));
            }
        }
        if !APPLE_STYLES.contains(&apple.style.as_str()) {
            errors.push(FieldError::new(
                "apple.style",
                format!("must be one of {}", APPLE_STYLES.join(", ")),
            ));
        }
        for f in apple.fields.all() {
            if f.change_message
                .as_deref()
                .is_some_and(|m| !m.contains("%@"))
            {
                errors.push(FieldError::new(
                    format!("apple.fields.{}.changeMessage", f.key),
                    "must contain %@",
                ));
            }
        }
    }
    if let Some(google) = &input.google {
        if google.issuer_id.trim().is_empty() || google.class_id.trim().is_empty() {
            errors.push(FieldError::new(
                "google",
                "issuerId and classId are required",
            ));
        }
        if !GOOGLE_KINDS.contains(&google.object_kind.as_str()) {
            errors.push(FieldError::new(
                "google.objectKind",
                format!("must be one of {}", GOOGLE_KINDS.join(", ")),
            ));
        }
    }
    errors
}

pub async fn put(db: &Db, tenant_id: &str, id: &str, input: PassTypeInput) -> Result<PassType> {
    let mut errors = validate(&input);
    if id.is_empty() || id.len() > 100 {
        errors.push(FieldError::new("id", "must have 1 to 100 characters"));
    }
    if !errors.is_empty() {
        return Err(DomainError::Invalid(errors));
    }
    let now = now_ms();
    sqlx::query(
        "INSERT INTO pass_types (tenant_id, id, definition, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(serde_json::to_string(&input).expect("pass types serialise"))
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(PassType {
        id: id.into(),
        name: input.name,
        apple: input.apple,
        google: input.google,
        updated_at: rfc3339(now),
    })
}

fn from_row((id, definition, updated): (String, String, i64)) -> Result<PassType> {
    let input: PassTypeInput =
        serde_json::from_str(&definition).map_err(|e| DomainError::Internal(e.to_string()))?;
    Ok(PassType {
        id,
        name: input.name,
        apple: input.apple,
        google: input.google,
        updated_at: rfc3339(updated),
    })
}

pub async fn get(db: &Db, tenant_id: &str, id: &str) -> Result<Option<PassType>> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT id, definition, updated_at FROM pass_types WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(db.reader())
    .await?;
    row.map(from_row).transpose()
}

/// [`get`] inside the caller's transaction.
pub async fn get_in(
    conn: &mut sqlx::AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<PassType>> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT id, definition, updated_at FROM pass_types WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(from_row).transpose()
}

pub async fn list(db: &Db, tenant_id: &str) -> Result<Vec<PassType>> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, definition, updated_at FROM pass_types WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(tenant_id)
    .fetch_all(db.reader())
    .await?;
    rows.into_iter().map(from_row).collect()
}

pub async fn delete(db: &Db, tenant_id: &str, id: &str) -> Result<()> {
    let done = sqlx::query("DELETE FROM pass_types WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(db.writer())
        .await?;
    match done.rows_affected() {
        0 => Err(DomainError::NotFound("pass type")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pass_type(value: Value) -> PassType {
        let input: PassTypeInput = serde_json::from_value(value).unwrap();
        PassType {
            id: "t".into(),
            name: input.name,
            apple: input.apple,
            google: input.google,
            updated_at: String::new(),
        }
    }

    #[test]
    fn notify_worthy_fields_follow_change_messages_and_flags() {
        let t = pass_type(json!({
            "name": "Loyalty",
            "apple": {"passTypeIdentifier": "pass.x", "teamIdentifier": "T", "organizationName": "O", "description": "D", "style": "storeCard",
                      "fields": {"primary": [{"key": "points", "valueFrom": "points", "changeMessage": "You have %@ points"}],
                                 "secondary": [{"key": "name", "valueFrom": "firstName"}]}},
            "google": {"issuerId": "1", "classId": "1.c", "objectKind": "loyalty", "fields": [{"key": "tier", "valueFrom": "tier", "notify": true}]}
        }));
        assert!(t.notify_worthy(&["points"]));
        assert!(t.notify_worthy(&["tier"]));
        assert!(!t.notify_worthy(&["firstName"]));
        assert!(!t.notify_worthy(&[]));
    }

    #[test]
    fn designs_are_validated() {
        let input: PassTypeInput = serde_json::from_value(json!({
            "name": "",
            "apple": {"passTypeIdentifier": "", "teamIdentifier": "T", "organizationName": "O", "description": "D", "style": "poster",
                      "fields": {"primary": [{"key": "p", "changeMessage": "no placeholder"}]}},
            "google": {"issuerId": "1", "classId": "c", "objectKind": "ticket"}
        }))
        .unwrap();
        let fields: Vec<String> = validate(&input).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "name",
                "apple.passTypeIdentifier",
                "apple.style",
                "apple.fields.p.changeMessage",
                "google.objectKind"
            ]
        );
    }
}
