//! Wallet settings: credentials (uploaded as PEM or JSON, never shown back) and the
//! design of each pass type (field bindings, change messages, colours).

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

use crate::model::*;

#[cfg(feature = "ssr")]
mod convert {
    use crate::model::{FieldRow, PassTypeForm};
    use domain::wallet::pass_types::{FieldDef, PassType, PassTypeInput};

    fn opt(text: &str) -> Option<String> {
        Some(text.trim().to_string()).filter(|t| !t.is_empty())
    }

    fn row(section: &str, f: &FieldDef) -> FieldRow {
        FieldRow {
            section: section.into(),
            key: f.key.clone(),
            label: f.label.clone().unwrap_or_default(),
            value_from: f.value_from.clone().unwrap_or_default(),
            value: f.value.clone().unwrap_or_default(),
            change_message: f.change_message.clone().unwrap_or_default(),
            notify: f.notify,
        }
    }

    fn def(r: &FieldRow) -> FieldDef {
        FieldDef {
            key: r.key.trim().to_string(),
            label: opt(&r.label),
            value_from: opt(&r.value_from),
            value: opt(&r.value),
            change_message: opt(&r.change_message).filter(|_| r.section != "google"),
            notify: r.notify && r.section == "google",
        }
    }

    pub fn form(t: PassType, sample: Vec<(String, String)>) -> PassTypeForm {
        let mut fields = Vec::new();
        if let Some(a) = &t.apple {
            let f = &a.fields;
            for (section, list) in [
                ("header", &f.header),
                ("primary", &f.primary),
                ("secondary", &f.secondary),
                ("auxiliary", &f.auxiliary),
                ("back", &f.back),
            ] {
                fields.extend(list.iter().map(|d| row(section, d)));
            }
        }
        if let Some(g) = &t.google {
            fields.extend(g.fields.iter().map(|d| row("google", d)));
        }
        let apple = t.apple.as_ref();
        let text = |f: fn(&domain::wallet::pass_types::AppleDesign) -> &Option<String>| {
            apple.and_then(|a| f(a).clone()).unwrap_or_default()
        };
        PassTypeForm {
            has_apple: t.apple.is_some(),
            has_google: t.google.is_some(),
            style: apple.map(|a| a.style.clone()).unwrap_or_default(),
            background_color: text(|a| &a.background_color),
            foreground_color: text(|a| &a.foreground_color),
            label_color: text(|a| &a.label_color),
            logo_text: text(|a| &a.logo_text),
            id: t.id,
            name: t.name,
            fields,
            sample,
        }
    }

    /// The stored design with the form's changes applied (identifiers stay as stored).
    pub fn apply(t: PassType, form: &PassTypeForm) -> PassTypeInput {
        let section = |name: &str| -> Vec<FieldDef> {
            form.fields
                .iter()
                .filter(|r| r.section == name)
                .map(def)
                .collect()
        };
        let apple = t.apple.map(|mut a| {
            a.style = form.style.clone();
            a.background_color = opt(&form.background_color);
            a.foreground_color = opt(&form.foreground_color);
            a.label_color = opt(&form.label_color);
            a.logo_text = opt(&form.logo_text);
            a.fields.header = section("header");
            a.fields.primary = section("primary");
            a.fields.secondary = section("secondary");
            a.fields.auxiliary = section("auxiliary");
            a.fields.back = section("back");
            a
        });
        let google = t.google.map(|mut g| {
            g.fields = section("google");
            g
        });
        PassTypeInput {
            name: form.name.clone(),
            apple,
            google,
        }
    }
}

#[server(prefix = "/console/fn", endpoint = "wallet_page")]
pub async fn wallet_page() -> Result<WalletView, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::history::{self, Area};
    use domain::passes::{self, PassFilter};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let mut pass_types = Vec::new();
    for t in domain::wallet::pass_types::list(&core.db, tenant)
        .await
        .map_err(internal)?
    {
        let filter = PassFilter {
            pass_type: Some(t.id.clone()),
            ..Default::default()
        };
        let (newest, _) = passes::list_page(&core.db, tenant, &filter, 0, 1)
            .await
            .map_err(internal)?;
        let sample = newest
            .into_iter()
            .next()
            .map(|p| ssr::pass_row(p).data)
            .unwrap_or_default();
        pass_types.push(convert::form(t, sample));
    }
    let credentials = domain::wallet::credentials::summaries(&core.db, tenant)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|c| CredentialRow {
            details: c
                .fields()
                .into_iter()
                .map(|(label, value)| (label.to_string(), value))
                .collect(),
            kind: c.kind,
            updated_at: c.updated_at,
        })
        .collect();
    Ok(WalletView {
        credentials,
        pass_types,
        history: ssr::history_rows(
            history::list(&core.db, tenant, Some(Area::Wallet), 20)
                .await
                .map_err(internal)?,
        ),
    })
}

#[server(prefix = "/console/fn", endpoint = "save_pass_type", input = Json)]
pub async fn save_pass_type(form: PassTypeForm) -> Result<Saved<()>, ServerFnError> {
    use crate::ssr::{self, internal};
    use domain::history::{self, Area};
    use domain::wallet::pass_types;
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let tenant = &caller.tenant.tenant_id;
    let Some(stored) = pass_types::get(&core.db, tenant, &form.id)
        .await
        .map_err(internal)?
    else {
        return Err(ssr::not_found(
            "That pass type no longer exists. Reload the page.",
        ));
    };
    let before = serde_json::to_value(&stored).unwrap_or_default();
    let input = convert::apply(stored, &form);
    let saved = ssr::saved(pass_types::put(&core.db, tenant, &form.id, input).await)?;
    if let Saved::Done(after) = &saved {
        let (Some(before), Ok(serde_json::Value::Object(after))) =
            (before.as_object(), serde_json::to_value(after))
        else {
            return Ok(Saved::Done(()));
        };
        let changes = history::diff(before, &after, &[], &["updatedAt"]);
        history::record(
            &core.db,
            tenant,
            Area::Wallet,
            &caller.user.email,
            &format!("Changed the design of pass type “{}”", form.id),
            &changes,
        )
        .await
        .map_err(internal)?;
    }
    Ok(saved.map(|_| ()))
}

/// Notes an accepted credentials upload in the settings history (the secret as ••••).
#[cfg(feature = "ssr")]
async fn note_upload<T>(
    caller: &crate::ssr::Caller,
    core: &domain::Core,
    saved: Saved<T>,
    kind: &str,
    summary: &str,
) -> Result<Saved<()>, ServerFnError> {
    use domain::history::{self, Area, Change, MASK};
    if let Saved::Done(_) = &saved {
        history::record(
            &core.db,
            &caller.tenant.tenant_id,
            Area::Wallet,
            &caller.user.email,
            summary,
            &[Change::new(kind, None, Some(MASK.into()))],
        )
        .await
        .map_err(crate::ssr::internal)?;
    }
    Ok(saved.map(|_| ()))
}

/// Apple credentials as PEM text: certificate, private key (optionally encrypted) and
/// the WWDR intermediate. Stored sealed; only a summary is ever shown.
#[server(prefix = "/console/fn", endpoint = "save_apple_credentials")]
pub async fn save_apple_credentials(
    certificate_pem: String,
    private_key_pem: String,
    private_key_password: String,
    wwdr_pem: String,
) -> Result<Saved<()>, ServerFnError> {
    use crate::ssr;
    use domain::wallet::credentials::{self, AppleCredentialsInput};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let input = AppleCredentialsInput {
        certificate_pem: Some(certificate_pem),
        private_key_pem: Some(private_key_pem),
        private_key_password: Some(private_key_password).filter(|p| !p.is_empty()),
        wwdr_pem,
        ..Default::default()
    };
    let saved =
        ssr::saved(credentials::put_apple(core.vault(), &caller.tenant.tenant_id, input).await)?;
    note_upload(&caller, &core, saved, "apple", "Uploaded Apple credentials").await
}

#[server(prefix = "/console/fn", endpoint = "save_google_credentials")]
pub async fn save_google_credentials(service_account: String) -> Result<Saved<()>, ServerFnError> {
    use crate::ssr;
    use domain::wallet::credentials::{self, GoogleCredentialsInput};
    let caller = ssr::require(domain::users::Role::Admin).await?;
    let core = ssr::core()?;
    let Ok(account) = serde_json::from_str::<serde_json::Value>(&service_account) else {
        return Ok(Saved::Invalid(vec![FieldProblem {
            field: "serviceAccount".into(),
            message: "is not JSON: paste the key file Google Cloud downloaded".into(),
        }]));
    };
    let input = GoogleCredentialsInput {
        service_account: account,
    };
    let saved =
        ssr::saved(credentials::put_google(core.vault(), &caller.tenant.tenant_id, input).await)?;
    note_upload(
        &caller,
        &core,
        saved,
        "google",
        "Uploaded a Google service account",
    )
    .await
}
