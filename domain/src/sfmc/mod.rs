//! Salesforce Marketing Cloud: Journey Builder's JWT calls and the push-update activity.

pub mod activity;
pub mod execute;
pub mod jwt;
pub mod settings;
