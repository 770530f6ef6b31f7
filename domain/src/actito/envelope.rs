//! Actito webhook envelopes: custom-action triggers and data events, ONE_BY_ONE
//! (`data` is an object) or BULK (`data` is an array).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::FieldError;
use crate::passes::Data;

/// Why an envelope cannot be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not JSON, or not the envelope shape.
    Malformed(String),
    /// A valid Actito envelope of a kind this endpoint does not take.
    Unsupported(String),
    /// Values that cannot go onto a pass.
    Invalid(Vec<FieldError>),
}

/// The envelope around every Actito webhook push.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub bulk: bool,
    pub items: Vec<Map<String, Value>>,
    /// The whole envelope, for data events' top-level members.
    pub top: Map<String, Value>,
}

pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| EnvelopeError::Malformed(format!("the body is not JSON: {e}")))?;
    let Value::Object(mut top) = value else {
        return Err(EnvelopeError::Malformed(
            "the body must be a JSON object".into(),
        ));
    };
    let id = match top.get("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(EnvelopeError::Malformed(
                "the envelope has no \"id\"".into(),
            ))
        }
    };
    let (bulk, items) = match top.remove("data") {
        Some(Value::Object(item)) => (false, vec![item]),
        Some(Value::Array(items)) => {
            let items = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(item) => Ok(item),
                    _ => Err(EnvelopeError::Malformed(format!(
                        "data[{i}] must be an object"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if items.is_empty() {
                return Err(EnvelopeError::Malformed(
                    "\"data\" is an empty array".into(),
                ));
            }
            (true, items)
        }
        _ => {
            return Err(EnvelopeError::Malformed(
                "\"data\" must be an object (ONE_BY_ONE) or an array (BULK)".into(),
            ))
        }
    };
    Ok(Envelope {
        id,
        bulk,
        items,
        top,
    })
}

/// What kind of Actito push an envelope is, from its members.
fn describe(envelope: &Envelope) -> &'static str {
    let first = envelope.items.first();
    let has_prefix = |prefix: &str| first.is_some_and(|i| i.keys().any(|k| k.starts_with(prefix)));
    if envelope.top.contains_key("tableType") {
        "a data event (profile or custom table)"
    } else if has_prefix("etl.") {
        "an ETL execution trigger"
    } else if has_prefix("export.") {
        "an export execution trigger"
    } else {
        "not a custom-action trigger"
    }
}

/// One profile that reached the custom action, with the action's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomActionItem {
    pub parameters: BTreeMap<String, Value>,
    pub profile: BTreeMap<String, Value>,
    pub notify_ok: Option<String>,
    pub notify_ko: Option<String>,
}

const RESERVED_PARAMETERS: [&str; 3] = ["passId", "passType", "message"];

impl CustomActionItem {
    fn text(&self, key: &str) -> Option<String> {
        match self.parameters.get(key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub fn pass_id(&self) -> Option<String> {
        self.text("passId")
    }

    pub fn pass_type(&self) -> Option<String> {
        self.text("passType")
    }

    pub fn message(&self) -> Option<String> {
        self.text("message")
    }

    /// The values to write into `additionalData`: every parameter but the reserved ones.
    pub fn changes(&self) -> Data {
        self.parameters
            .iter()
            .filter(|(k, _)| !RESERVED_PARAMETERS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// A profile attribute as identifier text.
    pub fn profile_value(&self, attribute: &str) -> Option<String> {
        scalar_text(self.profile.get(attribute)?)
    }
}

pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn link(item: &Map<String, Value>, name: &str) -> Option<String> {
    item.get("_links")?
        .get(name)?
        .get("href")?
        .as_str()
        .map(str::to_string)
}

/// Reads a custom-action trigger; other Actito pushes are `Unsupported`. Takes the
/// envelope so that each item's values move into it rather than being copied: a
/// 10 000-item BULK then holds one tree of values at a time, not two.
/// The notifyKO links of the items that have one (however the rest of the item
/// reads).
pub fn notify_ko_links(envelope: &Envelope) -> Vec<String> {
    envelope
        .items
        .iter()
        .filter_map(|item| link(item, "notifyKO"))
        .collect()
}

pub fn custom_action_items(envelope: Envelope) -> Result<Vec<CustomActionItem>, EnvelopeError> {
    let looks_right = envelope.items.iter().all(|item| {
        item.keys()
            .any(|k| k.starts_with("actionParameters.") || k.starts_with("profileAttributes."))
    });
    if envelope.top.contains_key("tableType") || !looks_right {
        return Err(EnvelopeError::Unsupported(format!(
            "this endpoint takes Actito custom-action triggers; the body is {}",
            describe(&envelope)
        )));
    }
    let mut errors = Vec::new();
    let items = envelope
        .items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let (notify_ok, notify_ko) = (link(&item, "notifyOK"), link(&item, "notifyKO"));
            let mut parameters = BTreeMap::new();
            let mut profile = BTreeMap::new();
            for (key, value) in item {
                if let Some(name) = key.strip_prefix("actionParameters.") {
                    if value.is_array() || value.is_object() {
                        errors.push(FieldError::new(
                            format!("data[{i}].{key}"),
                            "must be a string, a number, a boolean or null",
                        ));
                    }
                    parameters.insert(name.to_string(), value);
                } else if let Some(name) = key.strip_prefix("profileAttributes.") {
                    profile.insert(name.to_string(), value);
                }
            }
            CustomActionItem {
                parameters,
                profile,
                notify_ok,
                notify_ko,
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(items)
    } else {
        Err(EnvelopeError::Invalid(errors))
    }
}

/// A profile-table data event: which profiles were created or updated.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileEvent {
    pub operation: String,
    pub table_id: String,
    pub profile_ids: Vec<String>,
}

/// Reads a profile CREATE/UPDATE data event for the path's `event_type`.
pub fn profile_event(envelope: &Envelope, event_type: &str) -> Result<ProfileEvent, EnvelopeError> {
    let text = |key: &str| {
        envelope
            .top
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    // The seed's schema names only `eventType` and `operation`: an envelope without
    // `tableType` is taken as a profile-table event.
    let typed = match envelope.top.get("tableType") {
        None | Some(Value::Null) => envelope
            .items
            .iter()
            .all(|item| item.contains_key("profileId")),
        Some(table_type) => table_type == "PROFILE_TABLE",
    };
    if !typed {
        return Err(EnvelopeError::Unsupported(format!(
            "this endpoint takes profile-table data events; the body is {}",
            match text("tableType") {
                "CUSTOM_TABLE" => "a custom-table data event",
                _ => describe(envelope),
            }
        )));
    }
    let operation = text("operation");
    if !operation.is_empty() && operation != event_type {
        return Err(EnvelopeError::Unsupported(format!(
            "the body's operation {operation} does not match the {event_type} endpoint"
        )));
    }
    let profile_ids = envelope
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.get("profileId")
                .and_then(scalar_text)
                .ok_or_else(|| EnvelopeError::Malformed(format!("data[{i}] has no profileId")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ProfileEvent {
        operation: event_type.to_string(),
        table_id: text("tableId").to_string(),
        profile_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Vec<u8> {
        let path = format!("{}/../fixtures/actito/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn custom_action_samples_parse_one_by_one_and_bulk() {
        let one = parse(&sample("custom-action-trigger-one-by-one.json")).unwrap();
        assert!(!one.bulk);
        let items = custom_action_items(one).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].parameters["campaignId"], "987654");
        assert_eq!(
            items[0].profile_value("emailAddress").as_deref(),
            Some("john.smith@actito.com")
        );
        assert!(items[0]
            .notify_ok
            .as_deref()
            .unwrap()
            .starts_with("https://www.actito.com/ca/OK_"));
        assert!(items[0].notify_ko.as_deref().unwrap().contains("/ca/KO_"));
        assert_eq!(items[0].changes().len(), 2);

        let bulk = parse(&sample("custom-action-trigger-bulk.json")).unwrap();
        assert!(bulk.bulk);
        assert_eq!(bulk.id, "201373e4-22f9-4165-b394-6223b692eebc");
        assert_eq!(custom_action_items(bulk).unwrap().len(), 2);
    }

    #[test]
    fn other_pushes_are_refused_by_the_custom_action_endpoint() {
        for name in [
            "etl-finished-one-by-one.json",
            "etl-finished-bulk.json",
            "export-finished-one-by-one.json",
            "profile-create-one-by-one.json",
            "custom-table-update-one-by-one.json",
        ] {
            let envelope = parse(&sample(name)).unwrap();
            assert!(
                matches!(
                    custom_action_items(envelope),
                    Err(EnvelopeError::Unsupported(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn profile_events_are_read_and_others_refused() {
        let one = parse(&sample("profile-create-one-by-one.json")).unwrap();
        let event = profile_event(&one, "CREATE").unwrap();
        assert_eq!(event.profile_ids, ["123456"]);
        let bulk = parse(&sample("profile-create-bulk.json")).unwrap();
        assert_eq!(
            profile_event(&bulk, "CREATE").unwrap().profile_ids,
            ["123456", "123457"]
        );
        assert!(matches!(
            profile_event(&one, "UPDATE"),
            Err(EnvelopeError::Unsupported(_))
        ));
        for name in [
            "custom-table-create-bulk.json",
            "etl-finished-one-by-one.json",
            "custom-action-trigger-bulk.json",
        ] {
            let envelope = parse(&sample(name)).unwrap();
            assert!(
                matches!(
                    profile_event(&envelope, "CREATE"),
                    Err(EnvelopeError::Unsupported(_))
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        for body in [
            &b"nope"[..],
            b"[]",
            br#"{"data": {}}"#,
            br#"{"id": "1"}"#,
            br#"{"id": "1", "data": []}"#,
            br#"{"id": "1", "data": [1]}"#,
        ] {
            assert!(
                matches!(parse(body), Err(EnvelopeError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let nested = parse(br#"{"id": "1", "data": {"actionParameters.x": {"a": 1}}}"#).unwrap();
        assert!(matches!(
            custom_action_items(nested),
            Err(EnvelopeError::Invalid(_))
        ));
    }
}
