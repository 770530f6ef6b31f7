//! Actito: webhook envelopes, the API client, integration settings and callbacks.

pub mod callbacks;
pub mod client;
pub mod custom_action;
pub mod envelope;
pub mod profile;
pub mod settings;
pub mod subscriptions;
