//! Integration settings: Actito (with a connection test) and SFMC (signing keys, the
//! package URLs and a test call of the execute listener).

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::*;

#[cfg(feature = "ssr")]
mod support {
    use crate::model::*;
    use domain::actito::settings::{ActitoSettingsInput, ActitoSettingsView};
    use serde_json::{Map, Value};

    pub fn to_map(pairs: &[(String, String)]) -> Map<String, Value> {
        pairs
            .iter()
            .filter(|(k, v)| !(k.trim().is_empty() && v.trim().is_empty()))
            .map(|(k, v)| (k.trim().to_string(), Value::String(v.trim().to_string())))
            .collect()
    }

    fn pairs(map: &Map<String, Value>) -> Vec<(String, String)> {
        map.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    }

    pub fn input(form: ActitoInput) -> ActitoSettingsInput {
        ActitoSettingsInput {
            api_base_url: Some(form.api_base_url),
            entity: form.entity,
            api_key: Some(form.api_key).filter(|k| !k.trim().is_empty()),
            profile_table_id: form.profile_table_id,
            identifier_mapping: Some(to_map(&form.identifier_mapping)),
            data_mapping: Some(to_map(&form.data_mapping)),
            callback_hosts: Some(
                form.callback_hosts
                    .into_iter()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty())
                    .collect(),
            ),
        }
    }

    pub fn form(view: Option<ActitoSettingsView>) -> ActitoForm {
        use domain::actito::settings as actito;
        match view {
            Some(v) => ActitoForm {
                configured: true,
                api_base_url: v.api_base_url,
                entity: v.entity,
                api_key_hint: Some(v.api_key),
                profile_table_id: v.profile_table_id,
                identifier_mapping: pairs(&v.identifier_mapping),
                data_mapping: pairs(&v.data_mapping),
                callback_hosts: v.callback_hosts,
            },
            None => ActitoForm {
                configured: false,
                api_base_url: actito::DEFAULT_API_BASE_URL.into(),
                identifier_mapping: actito::default_identifier_mapping(),
                callback_hosts: actito::default_callback_hosts(),
                ..Default::default()
            },
        }
    }

    /// `signingKeys[2].secret` → `secret`: the SFMC form edits one key at a time.
    pub fn key_field(problem: FieldProblem) -> FieldProblem {
        let field = match problem.field.rsplit_once('.') {
            Some((_, last)) if problem.field.starts_with("signingKeys") => last.to_string(),
            _ => problem.field,
        };
        FieldProblem { field, ..problem }
    }
}

#[server(prefix = "/console/fn", endpoint = "actito_page")]
pub async fn actito_page() -> Result<ActitoView, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::history::{self, Area};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let view = domain::actito::settings::view(core.vault(), tenant)
        .await
        .map_err(internal)?;
    let base = format!(
        "{}/api/{tenant}/webhooks/listeners/actito",
        ssr::site()?.public_url
    );
    Ok(ActitoView {
        form: support::form(view),
        listener_urls: vec![
            (
                "Custom action".into(),
                format!("{base}/custom-actions/updatePass"),
            ),
            ("Profile created".into(), format!("{base}/profile/CREATE")),
            ("Profile updated".into(), format!("{base}/profile/UPDATE")),
        ],
        history: ssr::history_rows(
            history::list(&core.db, tenant, Some(Area::Actito), 20)
                .await
                .map_err(internal)?,
        ),
    })
}

#[server(prefix = "/console/fn", endpoint = "save_actito", input = Json)]
pub async fn save_actito(form: ActitoInput) -> Result<Saved<ActitoForm>, ServerFnError> {
    use crate::ssr;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let saved = domain::actito::settings::put(
        core.vault(),
        core.outbound.private_hosts(),
        &caller.tenant.tenant_id,
        support::input(form),
        &caller.user.email,
    )
    .await
    .map(|v| support::form(Some(v)));
    ssr::saved(saved)
}

/// Exchanges the form's API key for a token at the form's host; the stored key only
/// with the host it was stored for (an empty key field with another host is a field
/// error, and nothing is sent). Recorded in the settings history.
#[server(prefix = "/console/fn", endpoint = "test_actito", input = Json)]
pub async fn test_actito(form: ActitoInput) -> Result<Saved<ConnectionTest>, ServerFnError> {
    use crate::ssr;
    use domain::actito::settings::{self as actito, ConnectionTestInput};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let outcome = actito::test_connection(
        core.vault(),
        &core.actito,
        &caller.tenant.tenant_id,
        ConnectionTestInput {
            api_base_url: form.api_base_url,
            api_key: form.api_key,
        },
        &caller.user.email,
    )
    .await
    .map(|o| ConnectionTest {
        ok: o.ok,
        message: o.message,
    });
    ssr::saved(outcome)
}

#[server(prefix = "/console/fn", endpoint = "sfmc_page")]
pub async fn sfmc_page() -> Result<SfmcView, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::history::{self, Area};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let view = domain::sfmc::settings::view(&core.db, tenant)
        .await
        .map_err(internal)?;
    let latest = view
        .signing_keys
        .iter()
        .filter_map(|k| k.last_verified_at.clone())
        .max();
    let base = format!(
        "{}/api/{tenant}/webhooks/listeners/sfmc/actions/pushupdate",
        ssr::site()?.public_url
    );
    Ok(SfmcView {
        keys: view
            .signing_keys
            .into_iter()
            .map(|k| SigningKeyRow {
                verified_last: k.last_verified_at.is_some() && k.last_verified_at == latest,
                id: k.id,
                created_at: k.created_at,
                last_verified_at: k.last_verified_at,
            })
            .collect(),
        customer_key: view.customer_key,
        continue_without_pass: view.when_no_pass == domain::sfmc::settings::WhenNoPass::Continue,
        config_url: format!("{base}/config.json"),
        activity_url: format!("{base}/"),
        execute_url: format!("{base}/execute"),
        history: ssr::history_rows(
            history::list(&core.db, tenant, Some(Area::Sfmc), 20)
                .await
                .map_err(internal)?,
        ),
    })
}

/// Rewrites the tenant's SFMC settings with `change` applied to the current keys.
#[cfg(feature = "ssr")]
async fn change_sfmc(
    change: impl FnOnce(&mut domain::sfmc::settings::SfmcSettingsInput),
) -> Result<Saved<()>, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::sfmc::settings::{self as sfmc, SfmcSettingsInput, SigningKeyInput};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let view = sfmc::view(&core.db, tenant).await.map_err(internal)?;
    let keys: Vec<SigningKeyInput> = view
        .signing_keys
        .into_iter()
        .map(|k| SigningKeyInput {
            id: k.id,
            secret: None,
        })
        .collect();
    let mut input = SfmcSettingsInput {
        signing_keys: keys,
        customer_key: view.customer_key,
        when_no_pass: None,
    };
    change(&mut input);
    let saved = sfmc::put(core.vault(), tenant, input, &caller.user.email)
        .await
        .map(|_| ());
    Ok(match ssr::saved(saved)? {
        Saved::Invalid(problems) => {
            Saved::Invalid(problems.into_iter().map(support::key_field).collect())
        }
        done => done,
    })
}

#[server(prefix = "/console/fn", endpoint = "add_signing_key")]
pub async fn add_signing_key(id: String, secret: String) -> Result<Saved<()>, ServerFnError> {
    use domain::sfmc::settings::SigningKeyInput;
    if secret.trim().is_empty() {
        return Ok(Saved::Invalid(vec![FieldProblem {
            field: "secret".into(),
            message: "is required for a new key".into(),
        }]));
    }
    change_sfmc(|input| {
        input.signing_keys.push(SigningKeyInput {
            id,
            secret: Some(secret.trim().to_string()),
        })
    })
    .await
}

#[server(prefix = "/console/fn", endpoint = "retire_signing_key")]
pub async fn retire_signing_key(id: String) -> Result<Saved<()>, ServerFnError> {
    change_sfmc(|input| input.signing_keys.retain(|k| k.id != id)).await
}

#[server(prefix = "/console/fn", endpoint = "save_customer_key")]
pub async fn save_customer_key(customer_key: String) -> Result<Saved<()>, ServerFnError> {
    change_sfmc(|input| input.customer_key = Some(customer_key).filter(|k| !k.trim().is_empty()))
        .await
}

/// How executes are answered when no pass matches: `true` lets the contact continue
/// the journey (200 `{"scheduled":0}`), `false` takes it out (404, the default).
#[server(prefix = "/console/fn", endpoint = "save_when_no_pass")]
pub async fn save_when_no_pass(continue_journey: bool) -> Result<Saved<()>, ServerFnError> {
    use domain::sfmc::settings::WhenNoPass;
    let choice = if continue_journey {
        WhenNoPass::Continue
    } else {
        WhenNoPass::Leave
    };
    change_sfmc(|input| input.when_no_pass = Some(choice)).await
}

/// Signs an `execute` call with one of the tenant's keys, sends it to this server's
/// own listener over HTTP, and waits (a few seconds at most) for the update.
#[server(prefix = "/console/fn", endpoint = "test_execute", input = Json)]
pub async fn test_execute(call: TestCall) -> Result<Saved<TestCallResult>, ServerFnError> {
    use crate::ssr::{self, internal};
    use serde_json::{json, Map, Value};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = caller.tenant.tenant_id.clone();
    let keys = domain::sfmc::settings::signing_keys(core.vault(), &tenant)
        .await
        .map_err(internal)?;
    let Some(key) = keys.iter().find(|k| k.id == call.key_id) else {
        return Ok(Saved::Invalid(vec![FieldProblem {
            field: "key_id".into(),
            message: "choose one of the signing keys".into(),
        }]));
    };
    let mut args = Map::new();
    for (name, value) in [
        ("passId", &call.pass_id),
        ("email", &call.email),
        ("message", &call.message),
    ] {
        if !value.trim().is_empty() {
            args.insert(name.into(), Value::String(value.trim().into()));
        }
    }
    if !args.contains_key("passId") && !args.contains_key("email") {
        return Ok(Saved::Invalid(vec![FieldProblem {
            field: "pass_id".into(),
            message: "give a pass id or an email to target".into(),
        }]));
    }
    args.insert(
        "additionalData".into(),
        Value::Object(support::to_map(&call.additional_data)),
    );
    let jti = format!("console-{}", domain::crypto::random_token(12));
    let now = domain::clock::now_ms() / 1000;
    let claims = json!({
        "inArguments": [args],
        "journeyId": "console-test",
        "activityId": "console-test",
        "keyValue": caller.user.email,
        "jti": jti,
        "iat": now,
        "exp": now + 300,
    });
    let token = domain::sfmc::jwt::sign(&claims, key);
    let url = format!(
        "{}/api/{tenant}/webhooks/listeners/sfmc/actions/pushupdate/execute",
        ssr::site()?.local_url
    );
    let response = core
        .http
        .post(&url)
        .header("content-type", "application/jwt")
        .body(token)
        .send()
        .await
        .map_err(|e| ServerFnError::new(format!("The listener could not be reached: {e}")))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let pass_ids: Vec<String> = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| serde_json::from_value(v.get("passIds")?.clone()).ok())
        .unwrap_or_default();
    let applied = status == 200 && wait_until_processed(&core, &tenant, &jti).await;
    let mut passes = Vec::new();
    for id in &pass_ids {
        if let Ok(pass) = domain::passes::get(&core.db, &tenant, id).await {
            passes.push(ssr::pass_row(pass));
        }
    }
    Ok(Saved::Done(TestCallResult {
        status,
        body,
        passes,
        applied,
    }))
}

/// Polls the inbound event of a test call until the workers have processed it.
#[cfg(feature = "ssr")]
async fn wait_until_processed(core: &domain::Core, tenant: &str, jti: &str) -> bool {
    use domain::events;
    let key = format!("jti:{jti}");
    for _ in 0..50 {
        if let Ok(Some((id, _))) = events::find_duplicate(&core.db, tenant, "sfmc", &key).await {
            if let Ok(event) = events::get(&core.db, tenant, &id).await {
                match event.status.as_str() {
                    "processed" => return true,
                    "failed" => return false,
                    _ => {}
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// The tenant's Actito settings in clear, or a message for the page.
#[cfg(feature = "ssr")]
async fn actito_settings(
    core: &domain::Core,
    tenant: &str,
) -> Result<Result<domain::actito::settings::ActitoSettings, String>, ServerFnError> {
    Ok(domain::actito::settings::get(core.vault(), tenant)
        .await
        .map_err(crate::ssr::internal)?
        .ok_or_else(|| {
            "Connect Actito first: subscriptions are read with its API key.".to_string()
        }))
}

#[server(prefix = "/console/fn", endpoint = "actito_subscriptions")]
pub async fn actito_subscriptions() -> Result<SubscriptionList, ServerFnError> {
    use crate::ssr;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let ours = format!("{}/api/{tenant}/", ssr::site()?.public_url);
    let settings = match actito_settings(&core, tenant).await? {
        Ok(s) => s,
        Err(problem) => {
            return Ok(SubscriptionList {
                items: Vec::new(),
                problem: Some(problem),
                suggested_fields: Vec::new(),
            })
        }
    };
    let suggested_fields = settings
        .identifier_mapping
        .iter()
        .chain(&settings.data_mapping)
        .map(|(attribute, _)| attribute.clone())
        .collect();
    Ok(match core.actito.subscriptions(&settings).await {
        Ok(list) => SubscriptionList {
            items: list
                .into_iter()
                .map(|s| SubscriptionRow {
                    event: match (&s.table_id, s.on.as_str()) {
                        (Some(id), "CUSTOM_ACTION") => format!("Custom action {id} triggered"),
                        (Some(t), _) => format!("{} {} on table {t}", s.on, s.event_type),
                        (None, _) => format!("{} {}", s.on, s.event_type),
                    },
                    ours: s.target_url.starts_with(&ours),
                    id: s.id,
                    fields: s.fields,
                    target_url: s.target_url,
                    active: s.active,
                })
                .collect(),
            problem: None,
            suggested_fields,
        },
        Err(e) => SubscriptionList {
            items: Vec::new(),
            problem: Some(e.to_string()),
            suggested_fields,
        },
    })
}

/// Creates a subscription that pushes to this tenant's listener, with a new API key
/// (scope ActitoListener.Write) in its headers.
#[server(prefix = "/console/fn", endpoint = "create_subscription")]
pub async fn create_subscription(
    kind: String,
    fields: String,
    custom_action: String,
) -> Result<Saved<()>, ServerFnError> {
    use crate::ssr;
    use domain::actito::subscriptions::{self, Wanted};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let wanted = Wanted {
        kind: &kind,
        fields: &fields,
        custom_action: &custom_action,
    };
    let public_url = ssr::site()?.public_url;
    let subscribed = subscriptions::subscribe(
        &ssr::core()?,
        &caller.tenant.tenant_id,
        &caller.user.email,
        &public_url,
        wanted,
    )
    .await;
    ssr::saved(subscribed.map(|_| ()))
}

#[server(prefix = "/console/fn", endpoint = "change_subscription")]
pub async fn change_subscription(id: String, action: String) -> Result<Saved<()>, ServerFnError> {
    use crate::ssr;
    use domain::actito::subscriptions::{self, SubscriptionChange};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let Some(change) = SubscriptionChange::parse(&action) else {
        return Ok(Saved::Invalid(vec![FieldProblem {
            field: "action".into(),
            message: "choose activate, deactivate or delete".into(),
        }]));
    };
    let changed = subscriptions::change(
        &ssr::core()?,
        &caller.tenant.tenant_id,
        &caller.user.email,
        &id,
        change,
    )
    .await;
    ssr::saved(changed)
}
