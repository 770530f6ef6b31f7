//! Actito webhook subscriptions: what Actito pushes to which URL. The console lists
//! the entity's subscriptions, creates ours in one click, switches them on and off
//! and deletes them.
//!
//! Paths (under the tenant's API host): `/webhooks/v4/entity/{e}/table/{t}/webhookSubscription`
//! to create a data-event subscription on a table, `/webhooks/v4/entity/{e}/webhookSubscription`
//! to create a trigger subscription (custom actions) and to list all of them (pages of
//! `size`, numbered from 0), and `…/webhookSubscription/{id}` to change or delete one.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::client::{ActitoClient, ActitoError, ActitoSettings};
use crate::outbound::path_segment;

/// A subscription as Actito describes it; header values (our API key) are never kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    /// `PROFILE_TABLE`, `CUSTOM_TABLE`, `CUSTOM_ACTION`, `ETL`…
    pub on: String,
    pub event_type: String,
    pub table_id: Option<String>,
    pub fields: Vec<String>,
    pub target_url: String,
    pub active: bool,
    pub header_names: Vec<String>,
}

/// What we ask Actito to push to us.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewSubscription {
    /// Profile CREATE or UPDATE on the profile table, for the given fields.
    Profile {
        event_type: String,
        fields: Vec<String>,
    },
    /// The trigger of one custom action (Actito makes one subscription per custom
    /// action; its id is the element id).
    CustomAction { action_id: String },
}

pub const PAGE_SIZE: usize = 50;

fn base(settings: &ActitoSettings) -> String {
    format!(
        "{}/webhooks/v4/entity/{}",
        settings.api_base_url,
        path_segment(&settings.entity)
    )
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads one subscription from Actito's JSON (ids may be numbers or strings). The
/// documented names (`onElementId`, `onFields`, `headers` as an object) are read,
/// and the older ones (`tableId`, `fields`, `headers` as `{key, value}` pairs).
pub fn parse(value: &Value) -> Option<Subscription> {
    let headers = value.get("headers");
    Some(Subscription {
        id: text(value.get("id"))?,
        on: text(value.get("on")).unwrap_or_default(),
        event_type: text(value.get("eventType")).unwrap_or_default(),
        table_id: text(value.get("onElementId")).or_else(|| text(value.get("tableId"))),
        fields: value
            .get("onFields")
            .or_else(|| value.get("fields"))
            .and_then(Value::as_array)
            .map(|f| f.iter().filter_map(|v| text(Some(v))).collect())
            .unwrap_or_default(),
        target_url: text(value.get("targetUrl")).unwrap_or_default(),
        active: value
            .get("isActive")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        header_names: match headers {
            Some(Value::Object(map)) => map.keys().cloned().collect(),
            Some(Value::Array(pairs)) => pairs.iter().filter_map(|v| text(v.get("key"))).collect(),
            _ => Vec::new(),
        },
    })
}

/// The list in an answer: `subscriptions`, `items`, or the answer itself.
fn items(answer: &Value) -> Vec<Value> {
    answer
        .get("subscriptions")
        .or_else(|| answer.get("items"))
        .unwrap_or(answer)
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The body that creates `new`, pushing to `target_url` with `headers`, as Actito's
/// developer docs ("Webhooks → Protocol") define it. ONE_BY_ONE pushes: the BULK
/// push mode and `maxBlockSize` are left out.
pub fn body(
    new: &NewSubscription,
    settings: &ActitoSettings,
    target_url: &str,
    headers: &[(String, String)],
) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    match new {
        NewSubscription::Profile { event_type, fields } => json!({
            "on": "PROFILE_TABLE",
            "eventType": event_type,
            "onElementId": settings.profile_table_id,
            "onFields": fields,
            "targetUrl": target_url,
            "headers": headers,
            "isActive": true,
        }),
        NewSubscription::CustomAction { action_id } => json!({
            "on": "CUSTOM_ACTION",
            "eventType": "TRIGGER",
            "onElementId": action_id,
            "targetUrl": target_url,
            "headers": headers,
            "isActive": true,
        }),
    }
}

impl ActitoClient {
    /// Every subscription of the entity, page after page.
    pub async fn subscriptions(
        &self,
        settings: &ActitoSettings,
    ) -> Result<Vec<Subscription>, ActitoError> {
        let mut all = Vec::new();
        for page in 0.. {
            let url = format!(
                "{}/webhookSubscription?page={page}&size={PAGE_SIZE}",
                base(settings)
            );
            let answer = self
                .call(settings, reqwest::Method::GET, &url, None)
                .await?;
            let items = items(&answer);
            all.extend(items.iter().filter_map(parse));
            if items.len() < PAGE_SIZE || page >= 100 {
                break;
            }
        }
        Ok(all)
    }

    pub async fn create_subscription(
        &self,
        settings: &ActitoSettings,
        new: &NewSubscription,
        target_url: &str,
        headers: &[(String, String)],
    ) -> Result<Option<Subscription>, ActitoError> {
        let url = match new {
            NewSubscription::Profile { .. } => format!(
                "{}/table/{}/webhookSubscription",
                base(settings),
                path_segment(&settings.profile_table_id)
            ),
            NewSubscription::CustomAction { .. } => {
                format!("{}/webhookSubscription", base(settings))
            }
        };
        let sent = body(new, settings, target_url, headers);
        let answer = self
            .call(settings, reqwest::Method::POST, &url, Some(&sent))
            .await?;
        Ok(parse(&answer))
    }

    /// Switches a subscription on or off (Actito keeps it, with its headers).
    pub async fn set_subscription_active(
        &self,
        settings: &ActitoSettings,
        id: &str,
        active: bool,
    ) -> Result<(), ActitoError> {
        let url = format!(
            "{}/webhookSubscription/{}",
            base(settings),
            path_segment(id)
        );
        self.call(
            settings,
            reqwest::Method::PATCH,
            &url,
            Some(&json!({ "isActive": active })),
        )
        .await
        .map(|_| ())
    }

    pub async fn delete_subscription(
        &self,
        settings: &ActitoSettings,
        id: &str,
    ) -> Result<(), ActitoError> {
        let url = format!(
            "{}/webhookSubscription/{}",
            base(settings),
            path_segment(id)
        );
        self.call(settings, reqwest::Method::DELETE, &url, None)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_read_without_header_values() {
        let sub = parse(&json!({
            "id": 157, "on": "PROFILE_TABLE", "eventType": "UPDATE", "tableId": "12",
            "fields": ["emailAddress"], "targetUrl": "https://x/y", "isActive": false,
            "headers": [{"key": "X-API-KEY", "value": "phk_secret"}]
        }))
        .unwrap();
        assert_eq!(sub.id, "157");
        assert_eq!(sub.header_names, vec!["X-API-KEY"]);
        assert!(!sub.active);
        assert!(!format!("{sub:?}").contains("phk_secret"));
        assert!(
            parse(&json!({"on": "X"})).is_none(),
            "no id, no subscription"
        );
    }

    #[test]
    fn the_documented_form_is_read() {
        let sub = parse(&json!({
            "id": 158, "on": "PROFILE_TABLE", "eventType": "UPDATE", "onElementId": "12",
            "onFields": ["emailAddress"], "targetUrl": "https://x/y", "isActive": true,
            "headers": {"X-API-KEY": "phk_secret"}
        }))
        .unwrap();
        assert_eq!(sub.table_id.as_deref(), Some("12"));
        assert_eq!(sub.fields, vec!["emailAddress"]);
        assert_eq!(sub.header_names, vec!["X-API-KEY"]);
        assert!(!format!("{sub:?}").contains("phk_secret"));
    }
}
