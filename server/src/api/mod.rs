//! The management API under `/api/{tenantId}/…` (CONTRACT §3–§4) and its OpenAPI.

pub mod audit;
pub mod auth;
pub mod integrations;
pub mod json;
pub mod openapi;
pub mod page;
pub mod passes;
pub mod schemas;
pub mod wallet;

use axum::Router;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(passes::router())
        .merge(integrations::router())
        .merge(audit::router())
        .merge(wallet::router())
        .merge(openapi::router())
}
