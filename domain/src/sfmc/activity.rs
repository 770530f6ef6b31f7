//! The "push update" custom activity: what Journey Builder's `execute` call asks for.

use serde_json::{Map, Value};

use crate::actito::envelope::scalar_text;
use crate::error::FieldError;
use crate::passes::Data;

/// Journey context carried by every Journey Builder call.
///
/// `journey_id` is the journey *version*: execute's `journeyId`, the lifecycle
/// calls' `interactionId`. Only lifecycle calls name the journey every version
/// belongs to (`originalDefinitionId`): that is `definition_id`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JourneyContext {
    pub journey_id: Option<String>,
    pub definition_id: Option<String>,
    pub activity_id: Option<String>,
    pub definition_instance_id: Option<String>,
    pub activity_instance_id: Option<String>,
    /// Execute's `mode` (Journey Builder runs tests in another mode than live).
    pub mode: Option<String>,
    pub key_value: Option<String>,
}

impl JourneyContext {
    pub fn from_claims(claims: &Value) -> Self {
        let text = |k: &str| claims.get(k).and_then(scalar_text);
        JourneyContext {
            journey_id: text("journeyId").or_else(|| text("interactionId")),
            definition_id: text("originalDefinitionId"),
            activity_id: text("activityId").or_else(|| text("activityObjectID")),
            definition_instance_id: text("definitionInstanceId"),
            activity_instance_id: text("activityInstanceId"),
            mode: text("mode"),
            key_value: text("keyValue"),
        }
    }
}

/// Which passes to update and how.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PushUpdate {
    pub pass_id: Option<String>,
    /// Any of these identifies a target pass.
    pub identifiers: Vec<(String, String)>,
    pub pass_type: Option<String>,
    pub additional_data: Data,
    pub message: Option<String>,
}

impl PushUpdate {
    pub fn has_target(&self) -> bool {
        self.pass_id.is_some() || !self.identifiers.is_empty()
    }
}

/// `inArguments` merged in order (later objects win).
pub fn merged_arguments(claims: &Value) -> Result<Map<String, Value>, String> {
    let mut merged = Map::new();
    match claims.get("inArguments") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, item) in list.iter().enumerate() {
                let Value::Object(object) = item else {
                    return Err(format!("inArguments[{i}] must be an object"));
                };
                merged.extend(object.clone());
            }
        }
        Some(_) => return Err("inArguments must be a list of objects".into()),
    }
    Ok(merged)
}

/// An object given as JSON or as JSON text (Journey Builder binds strings).
fn object_argument(value: &Value, field: &str, errors: &mut Vec<FieldError>) -> Map<String, Value> {
    match value {
        Value::Object(map) => map.clone(),
        Value::String(text) if text.trim().is_empty() => Map::new(),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            _ => {
                errors.push(FieldError::new(
                    field,
                    "must be an object or JSON text of an object",
                ));
                Map::new()
            }
        },
        Value::Null => Map::new(),
        _ => {
            errors.push(FieldError::new(
                field,
                "must be an object or JSON text of an object",
            ));
            Map::new()
        }
    }
}

/// Reads the push update out of merged `inArguments`.
pub fn push_update(args: &Map<String, Value>) -> Result<PushUpdate, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut update = PushUpdate::default();
    let text = |key: &str| {
        args.get(key)
            .and_then(scalar_text)
            .map(|s| s.trim().to_string())
    };
    update.pass_id = text("passId");
    update.pass_type = text("passType");
    update.message = text("message");
    for (name, key) in [("customId", "customId"), ("email", "email")] {
        if let Some(value) = text(key) {
            update.identifiers.push((name.to_string(), value));
        }
    }
    if let Some(value) = args.get("identifiers") {
        for (name, v) in object_argument(value, "identifiers", &mut errors) {
            match scalar_text(&v) {
                Some(v) => update.identifiers.push((name, v)),
                None if v.is_null() => {}
                None => errors.push(FieldError::new(
                    format!("identifiers.{name}"),
                    "must be text",
                )),
            }
        }
    }
    if let Some(value) = args.get("additionalData") {
        update.additional_data = object_argument(value, "additionalData", &mut errors);
    }
    for (key, value) in args {
        if let Some(name) = key.strip_prefix("identifiers.").filter(|n| !n.is_empty()) {
            if let Some(v) = scalar_text(value) {
                update.identifiers.push((name.to_string(), v));
            }
        } else if let Some(name) = key
            .strip_prefix("additionalData.")
            .filter(|n| !n.is_empty())
        {
            update
                .additional_data
                .insert(name.to_string(), value.clone());
        }
    }
    for (key, value) in &update.additional_data {
        if value.is_array() || value.is_object() {
            errors.push(FieldError::new(
                format!("additionalData.{key}"),
                "must be a string, a number, a boolean or null",
            ));
        }
    }
    update.identifiers.sort();
    update.identifiers.dedup();
    if errors.is_empty() && !update.has_target() {
        // The activity was configured without binding anything to find the pass by:
        // a setup mistake, not a contact without a pass.
        errors.push(FieldError::new(
            "passId",
            "no argument names the pass: bind passId, customId, email, identifiers or \
             identifiers.<name> in the activity",
        ));
    }
    if errors.is_empty() {
        Ok(update)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(claims: Value) -> PushUpdate {
        push_update(&merged_arguments(&claims).unwrap()).unwrap()
    }

    #[test]
    fn arguments_merge_in_order_and_read_every_form() {
        let got = update(json!({"inArguments": [
            {"email": " Ann@Example.com ", "message": "first"},
            {"identifiers": "{\"loyaltyId\": \"L-9\"}", "additionalData": {"points": 5}},
            {"identifiers.customId": "C-1", "additionalData.tier": "gold", "message": "Hello", "passType": "loyalty"}
        ]}));
        assert_eq!(got.message.as_deref(), Some("Hello"));
        assert_eq!(got.pass_type.as_deref(), Some("loyalty"));
        assert_eq!(
            got.identifiers,
            [
                ("customId".into(), "C-1".into()),
                ("email".into(), "Ann@Example.com".into()),
                ("loyaltyId".into(), "L-9".into())
            ]
        );
        assert_eq!(
            Value::Object(got.additional_data),
            json!({"points": 5, "tier": "gold"})
        );
    }

    #[test]
    fn additional_data_may_be_json_text() {
        let got = update(
            json!({"inArguments": [{"passId": "pass_1", "additionalData": "{\"offer\": \"10%\"}"}]}),
        );
        assert_eq!(got.pass_id.as_deref(), Some("pass_1"));
        assert!(got.has_target());
        assert_eq!(got.additional_data["offer"], "10%");
    }

    #[test]
    fn bad_arguments_are_reported() {
        assert!(merged_arguments(&json!({"inArguments": {"a": 1}})).is_err());
        assert!(merged_arguments(&json!({"inArguments": [1]})).is_err());
        let args = merged_arguments(
            &json!({"inArguments": [{"identifiers": "not json", "additionalData": {"x": [1]}}]}),
        )
        .unwrap();
        let errors = push_update(&args).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn an_execute_naming_no_pass_is_a_setup_mistake() {
        let args = merged_arguments(&json!({"inArguments": [{"passType": "loyalty"}]})).unwrap();
        let errors = push_update(&args).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "passId");
        assert!(errors[0].message.contains("bind passId"), "{errors:?}");
    }

    #[test]
    fn journey_context_is_read_from_claims() {
        let ctx = JourneyContext::from_claims(&json!({"journeyId": "j1", "activityId": "a1",
            "definitionInstanceId": "d1", "keyValue": "k1", "mode": 0, "activityInstanceId": "i1"}));
        assert_eq!(ctx.journey_id.as_deref(), Some("j1"));
        assert_eq!(ctx.key_value.as_deref(), Some("k1"));
        assert_eq!(ctx.mode.as_deref(), Some("0"));
        assert_eq!(ctx.activity_instance_id.as_deref(), Some("i1"));
    }

    #[test]
    fn a_lifecycle_call_names_the_version_and_its_journey() {
        let ctx = JourneyContext::from_claims(&json!({"activityObjectID": "a1",
            "interactionId": "v2", "originalDefinitionId": "j", "interactionKey": "k", "interactionVersion": "2"}));
        assert_eq!(ctx.journey_id.as_deref(), Some("v2"));
        assert_eq!(ctx.definition_id.as_deref(), Some("j"));
        assert_eq!(ctx.activity_id.as_deref(), Some("a1"));
    }
}
