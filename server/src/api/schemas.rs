//! Types that only describe answers in the OpenAPI document (the handlers build
//! these answers as JSON): apart from the document, so handlers can name them.

use utoipa::ToSchema;

/// An RFC 9457 problem document: the body of every error answer under `/api/`.
#[derive(ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)] // describes crate::problem::Problem for the document only
pub struct ProblemDoc {
    /// A URN naming the kind of problem, e.g. `urn:passhook:problem:unauthenticated`.
    #[schema(rename = "type")]
    kind: String,
    /// The HTTP status's reason phrase.
    title: String,
    /// The HTTP status code.
    status: u16,
    /// What went wrong, for people.
    detail: String,
    /// A stable cause code for scripts: `UNAUTHENTICATED`, `FORBIDDEN_TENANT`,
    /// `FORBIDDEN_SCOPE`, `MALFORMED_BODY`, `VALIDATION_FAILED`, `NOT_FOUND`…
    code: String,
    /// The invalid fields, for `VALIDATION_FAILED`.
    errors: Option<Vec<FieldErrorDoc>>,
}

/// One invalid field of a request.
#[derive(ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorDoc {
    field: String,
    message: String,
}

/// The answer of the Actito listeners: the request is stored, processing follows.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ListenerAck {
    /// The stored inbound event (the first one, for a duplicate).
    event_id: String,
    /// Items (custom actions) or profiles in the envelope.
    items: u64,
    /// True when this envelope id was received before: nothing is done again.
    duplicate: bool,
}

/// The answer of the SFMC execute listener.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct ExecuteAnswer {
    /// How many passes will be updated.
    scheduled: u64,
    pass_ids: Vec<String>,
}

/// The (empty) answer to Journey Builder's publish, validate, save and stop calls.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LifecycleAnswer {}

/// A signed "Add to Google Wallet" link.
#[derive(ToSchema)]
#[schema(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct SaveUrl {
    /// `https://pay.google.com/gp/v/save/<jwt>`
    save_url: String,
}
