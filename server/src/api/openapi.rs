//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Passhook API", description = "Listeners and management API of Passhook."),
    paths(
        super::passes::create_pass,
        super::passes::get_pass,
        super::passes::search_passes,
        super::passes::patch_pass,
        super::integrations::put_actito,
        super::integrations::get_actito,
        super::integrations::put_sfmc,
        super::integrations::get_sfmc,
        super::audit::list_events,
        super::audit::list_deliveries,
        super::audit::retry_delivery,
        super::wallet::list_pass_types,
        super::wallet::get_pass_type,
        super::wallet::put_pass_type,
        super::wallet::delete_pass_type,
        super::wallet::list_credentials,
        super::wallet::put_apple,
        super::wallet::put_google,
        super::wallet::download_pkpass,
        super::wallet::google_save_url,
        crate::listeners::actito::update_pass,
        crate::listeners::actito::profile_event,
        crate::listeners::sfmc::execute,
        crate::listeners::sfmc::lifecycle,
    ),
    components(schemas(
        domain::passes::Pass, domain::passes::NewPass, domain::passes::PassPage, super::passes::PassPatch,
        domain::actito::settings::ActitoSettingsInput, domain::actito::settings::ActitoSettingsView,
        domain::sfmc::settings::SfmcSettingsInput, domain::sfmc::settings::SigningKeyInput,
        domain::sfmc::settings::SfmcSettingsView, domain::sfmc::settings::SigningKeyView,
        domain::events::Event, domain::events::EventPage,
        domain::deliveries::Delivery, domain::deliveries::DeliveryAttempt, domain::deliveries::DeliveryPage,
        domain::wallet::pass_types::PassType, domain::wallet::pass_types::PassTypeInput,
        domain::wallet::pass_types::AppleDesign, domain::wallet::pass_types::AppleFields,
        domain::wallet::pass_types::GoogleDesign, domain::wallet::pass_types::FieldDef,
        domain::wallet::credentials::AppleCredentialsInput, domain::wallet::credentials::ApnsTokenKey,
        domain::wallet::credentials::GoogleCredentialsInput, domain::wallet::credentials::CredentialsSummary,
    )),
    modifiers(&ApiKeyScheme),
    tags(
        (name = "passes", description = "Wallet passes and their data"),
        (name = "listeners", description = "Endpoints Actito and SFMC call"),
        (name = "integrations", description = "Actito and SFMC settings"),
        (name = "audit", description = "Inbound events and deliveries"),
        (name = "wallet", description = "Pass types, wallet credentials and pass bundles")
    )
)]
pub struct ApiDoc;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-KEY",
                "A tenant's API key; `Authorization: Bearer <key>` is accepted too.",
            ))),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}
