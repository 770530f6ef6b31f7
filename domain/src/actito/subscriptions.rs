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
use super::settings;
use crate::api_keys::{self, Scope};
use crate::core::Core;
use crate::error::{DomainError, Result};
use crate::history::{self, Area, Change};
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

/// What an admin asks Actito to push, as the console's form sends it: `kind` is
/// `profile-CREATE`, `profile-UPDATE` or `custom-action`; `fields` the profile
/// attributes whose changes matter (comma or line separated); `custom_action` the
/// custom action's id.
pub struct Wanted<'a> {
    pub kind: &'a str,
    pub fields: &'a str,
    pub custom_action: &'a str,
}

/// The settings subscriptions are made with; a field error when Actito is not
/// connected yet.
pub async fn connected(core: &Core, tenant_id: &str) -> Result<ActitoSettings> {
    settings::get(core.vault(), tenant_id)
        .await?
        .ok_or_else(|| {
            DomainError::invalid(
                "",
                "Connect Actito first: subscriptions are read with its API key.",
            )
        })
}

/// Subscribes one of our listeners (under `public_url`) to what the admin asked for:
/// a new API key of its own goes with the subscription as its `X-API-KEY` header, the
/// change is written to the tenant's history, and the key is revoked if Actito
/// refuses (nothing would point at it). Returns the subscription's id.
pub async fn subscribe(
    core: &Core,
    tenant_id: &str,
    actor: &str,
    public_url: &str,
    wanted: Wanted<'_>,
) -> Result<String> {
    let settings = connected(core, tenant_id).await?;
    let base = format!("{public_url}/api/{tenant_id}/webhooks/listeners/actito");
    let (new, target, label) = read_wanted(&wanted, &base)?;
    let key_name = format!("Actito webhook: {label}");
    let (key, secret) = api_keys::create(
        &core.db,
        tenant_id,
        &key_name,
        &[Scope::ActitoListenerWrite],
        Some(actor),
    )
    .await?;
    let headers = [("X-API-KEY".to_string(), secret)];
    let created = match core
        .actito
        .create_subscription(&settings, &new, &target, &headers)
        .await
    {
        Ok(created) => created,
        Err(e) => {
            api_keys::revoke(&core.db, &core.key_cache, tenant_id, &key.id, Some(actor)).await?;
            return Err(DomainError::invalid("", &e.to_string()));
        }
    };
    let id = created.map(|s| s.id).unwrap_or_else(|| "?".into());
    let change = Change::new(format!("subscription {id}"), None, Some(target));
    let summary = format!("Subscribed Actito's {label} webhook");
    history::record(
        &core.db,
        tenant_id,
        Area::Actito,
        actor,
        &summary,
        &[change],
    )
    .await?;
    Ok(id)
}

/// The subscription, the listener URL it targets and how history names it.
fn read_wanted(wanted: &Wanted<'_>, base: &str) -> Result<(NewSubscription, String, String)> {
    let fields: Vec<String> = wanted
        .fields
        .split([',', '\n'])
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    match wanted.kind {
        "profile-UPDATE" | "profile-CREATE" => {
            let event_type = wanted.kind.trim_start_matches("profile-").to_string();
            if event_type == "UPDATE" && fields.is_empty() {
                return Err(DomainError::invalid(
                    "fields",
                    "name the profile attributes whose changes matter",
                ));
            }
            let target = format!("{base}/profile/{event_type}");
            let label = format!("profile {event_type}");
            Ok((
                NewSubscription::Profile { event_type, fields },
                target,
                label,
            ))
        }
        "custom-action" => {
            let action_id = wanted.custom_action.trim().to_string();
            if action_id.is_empty() || action_id.len() > 100 {
                return Err(DomainError::invalid(
                    "customAction",
                    "give the id of the custom action, as Actito shows it",
                ));
            }
            let label = format!("custom action {action_id}");
            let target = format!("{base}/custom-actions/updatePass");
            Ok((NewSubscription::CustomAction { action_id }, target, label))
        }
        _ => Err(DomainError::invalid(
            "kind",
            "choose what Actito should push",
        )),
    }
}

/// What an admin does to an existing subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionChange {
    Activate,
    Deactivate,
    Delete,
}

impl SubscriptionChange {
    pub fn parse(action: &str) -> Option<SubscriptionChange> {
        Some(match action {
            "activate" => SubscriptionChange::Activate,
            "deactivate" => SubscriptionChange::Deactivate,
            "delete" => SubscriptionChange::Delete,
            _ => return None,
        })
    }
}

/// Changes a subscription at Actito and writes it to the tenant's history.
pub async fn change(
    core: &Core,
    tenant_id: &str,
    actor: &str,
    id: &str,
    change: SubscriptionChange,
) -> Result<()> {
    let settings = connected(core, tenant_id).await?;
    let actito = &core.actito;
    let (result, summary, after) = match change {
        SubscriptionChange::Activate => (
            actito.set_subscription_active(&settings, id, true).await,
            "Activated an Actito webhook subscription",
            Some("active".to_string()),
        ),
        SubscriptionChange::Deactivate => (
            actito.set_subscription_active(&settings, id, false).await,
            "Deactivated an Actito webhook subscription",
            Some("inactive".to_string()),
        ),
        SubscriptionChange::Delete => (
            actito.delete_subscription(&settings, id).await,
            "Deleted an Actito webhook subscription",
            None,
        ),
    };
    result.map_err(|e| DomainError::invalid("", &e.to_string()))?;
    let change = Change::new(format!("subscription {id}"), None, after);
    history::record(&core.db, tenant_id, Area::Actito, actor, summary, &[change]).await
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
