//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response};
use utoipa::{Modify, OpenApi};

use super::schemas::*;
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
        crate::listeners::sfmc::config_json,
        crate::listeners::sfmc::activity_page,
        crate::listeners::sfmc::postmonger_js,
        crate::listeners::sfmc::activity_js,
        crate::listeners::sfmc::icon_svg,
        crate::passkit::register,
        crate::passkit::unregister,
        crate::passkit::serials,
        crate::passkit::latest,
        crate::passkit::log,
    ),
    components(schemas(
        domain::passes::Pass, domain::passes::NewPass, domain::passes::PassPage, super::passes::PassPatch,
        domain::actito::settings::ActitoSettingsInput, domain::actito::settings::ActitoSettingsView,
        domain::sfmc::settings::SfmcSettingsInput, domain::sfmc::settings::SigningKeyInput,
        domain::sfmc::settings::SfmcSettingsView, domain::sfmc::settings::SigningKeyView,
        domain::sfmc::settings::WhenNoPass,
        domain::events::Event, domain::events::EventPage,
        domain::deliveries::Delivery, domain::deliveries::DeliveryAttempt, domain::deliveries::DeliveryPage,
        domain::wallet::pass_types::PassType, domain::wallet::pass_types::PassTypeInput,
        domain::wallet::pass_types::AppleDesign, domain::wallet::pass_types::AppleFields,
        domain::wallet::pass_types::GoogleDesign, domain::wallet::pass_types::FieldDef,
        domain::wallet::credentials::AppleCredentialsInput, domain::wallet::credentials::ApnsTokenKey,
        domain::wallet::credentials::GoogleCredentialsInput, domain::wallet::credentials::CredentialsSummary,
        ProblemDoc, FieldErrorDoc, ListenerAck, ExecuteAnswer, LifecycleAnswer, SaveUrl,
        crate::listeners::sfmc::LifecycleOperation,
        crate::passkit::Registration, crate::passkit::SerialNumbers, crate::passkit::DeviceLogs,
    )),
    modifiers(&ApiKeyScheme, &ProblemResponses),
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

/// Completes the error answers of every `/api/` operation from what the router does
/// around the handlers, so the document lists every status an operation can answer:
/// - with an API key: 401 (missing or unknown key) and 403 (another tenant's key, or
///   a missing scope);
/// - with a body: 413 (over 5 MiB, unless the operation lists its own limit), and 400 (malformed) when it is JSON; handlers that
///   insist on `Content-Type: application/json` list their 415 themselves;
/// - every 4xx/5xx is an `application/problem+json` [`ProblemDoc`].
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                complete_errors(operation);
            }
        }
    }
}

fn complete_errors(operation: &mut Operation) {
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let json_body = operation
        .request_body
        .as_ref()
        .map(|body| body.content.contains_key("application/json"));
    let mut implied: Vec<(&str, &str)> = Vec::new();
    if secured {
        implied.push(("401", "No API key, or an unknown or revoked one"));
        implied.push((
            "403",
            "The key belongs to another tenant, or lacks the required scope",
        ));
    }
    if let Some(json) = json_body {
        if json {
            implied.push(("400", "The body cannot be read"));
        }
        implied.push(("413", "The body is larger than 5 MiB"));
        // (Operations with another limit list their own 413, which is kept.)
    }
    let responses = &mut operation.responses.responses;
    for (status, description) in implied {
        responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    }
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        let RefOr::T(response) = response else {
            continue;
        };
        if !is_error {
            continue;
        }
        if response.description.is_empty() {
            response.description = status
                .parse::<u16>()
                .ok()
                .and_then(|s| axum::http::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Error")
                .to_string();
        }
        response.content.clear();
        response.content.insert(
            crate::problem::CONTENT_TYPE.to_string(),
            Content::new(Some(Ref::from_schema_name("Problem"))),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(ApiDoc::openapi()).unwrap()
    }

    #[test]
    fn every_error_answer_is_a_problem_document() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema =
                            &response["content"]["application/problem+json"]["schema"]["$ref"];
                        assert_eq!(
                            schema, "#/components/schemas/Problem",
                            "{method} {path} {status}"
                        );
                    }
                }
                if operation.get("security").is_some() {
                    for status in ["401", "403"] {
                        assert!(
                            operation["responses"].get(status).is_some(),
                            "{method} {path} lacks {status}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for reference in text.split("\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but not defined"
            );
        }
    }
}
