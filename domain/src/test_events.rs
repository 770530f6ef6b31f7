//! The console's test events: a custom action or an SFMC execute for one customer,
//! built in the platform's own format and sent through this tenant's listeners over
//! HTTP, so that it takes every step a real one takes (authentication included).

use serde_json::{json, Map, Value};

use crate::api_keys::{self, Scope};
use crate::core::Core;
use crate::error::{DomainError, Result};

/// What to send.
pub struct TestEvent<'a> {
    pub tenant_id: &'a str,
    /// The tenant's listeners' base URL (`…/api/{tenant}/webhooks/listeners`).
    pub listeners: &'a str,
    pub email: &'a str,
    pub data: Map<String, Value>,
    pub message: &'a str,
}

/// How the listener answered, and the event it stored.
pub struct Sent {
    pub status: u16,
    pub body: String,
    pub event_id: Option<String>,
}

/// `key=value` lines as a map; the first bad line otherwise.
pub fn data(text: &str) -> std::result::Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once('=').ok_or_else(|| line.to_string())?;
        if k.trim().is_empty() {
            return Err(line.to_string());
        }
        out.insert(k.trim().into(), Value::String(v.trim().into()));
    }
    Ok(out)
}

async fn send(request: reqwest::RequestBuilder) -> Result<(u16, String)> {
    let response = request
        .send()
        .await
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// A ONE_BY_ONE custom action, with an API key made for this one request (revoked
/// once it is answered).
pub async fn actito(core: &Core, test: TestEvent<'_>, actor: &str) -> Result<Sent> {
    let tenant = test.tenant_id;
    let (key, secret) = api_keys::create(
        &core.db,
        tenant,
        "Console test event",
        &[Scope::ActitoListenerWrite],
        Some(actor),
    )
    .await?;
    let mut item = Map::new();
    item.insert("profileAttributes.emailAddress".into(), json!(test.email));
    for (k, v) in test.data {
        item.insert(format!("actionParameters.{k}"), v);
    }
    if !test.message.trim().is_empty() {
        item.insert(
            "actionParameters.message".into(),
            json!(test.message.trim()),
        );
    }
    let body = json!({
        "id": format!("console-test-{}", crate::crypto::random_token(8)),
        "data": item,
    });
    let request = core
        .http
        .post(format!(
            "{}/actito/custom-actions/updatePass",
            test.listeners
        ))
        .header("X-API-KEY", secret)
        .json(&body);
    let sent = send(request).await;
    // The key served this one request only.
    let _ = api_keys::revoke(&core.db, &core.key_cache, tenant, &key.id, Some(actor)).await;
    let (status, body) = sent?;
    let event_id = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v.get("eventId")?.as_str().map(str::to_string));
    Ok(Sent {
        status,
        body,
        event_id,
    })
}

/// An execute signed with the tenant's newest signing key; `None` without one.
pub async fn sfmc(core: &Core, test: TestEvent<'_>) -> Option<Result<Sent>> {
    let tenant = test.tenant_id;
    let keys = crate::sfmc::settings::signing_keys(core.vault(), tenant)
        .await
        .ok()?;
    let key = keys.last()?;
    let jti = format!("console-{}", crate::crypto::random_token(12));
    let now = crate::clock::now_ms() / 1000;
    let mut args = Map::new();
    args.insert("email".into(), json!(test.email));
    args.insert("additionalData".into(), Value::Object(test.data));
    if !test.message.trim().is_empty() {
        args.insert("message".into(), json!(test.message.trim()));
    }
    let claims = json!({
        "inArguments": [args],
        "journeyId": "console-test",
        "activityId": "console-test",
        "keyValue": test.email,
        "jti": jti,
        "iat": now,
        "exp": now + 300,
    });
    let request = core
        .http
        .post(format!(
            "{}/sfmc/actions/pushupdate/execute",
            test.listeners
        ))
        .header("content-type", "application/jwt")
        .body(crate::sfmc::jwt::sign(&claims, key));
    let (status, body) = match send(request).await {
        Ok(sent) => sent,
        Err(e) => return Some(Err(e)),
    };
    // An SFMC answer names passes, not the event: find it by the token's id.
    let event_id = crate::events::find_duplicate(&core.db, tenant, "sfmc", &format!("jti:{jti}"))
        .await
        .ok()
        .flatten()
        .map(|(id, _)| id);
    Some(Ok(Sent {
        status,
        body,
        event_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_reads_key_value_lines_and_names_the_first_bad_one() {
        let read = data("points = 5\n\n tier=gold ").unwrap();
        assert_eq!(
            (read["points"].as_str(), read["tier"].as_str()),
            (Some("5"), Some("gold"))
        );
        assert_eq!(data("points=5\noops").unwrap_err(), "oops");
        assert_eq!(data("=x").unwrap_err(), "=x");
    }
}
