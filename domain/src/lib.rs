//! Passhook's domain: everything the product knows and stores.
//!
//! No HTTP framework and no UI here: `server` and `app` turn requests into calls on
//! [`Core`] and turn its results into responses.

pub mod actito;
pub mod api_keys;
pub mod audit;
pub mod clock;
pub mod core;
pub mod crypto;
pub mod customers;
pub mod db;
pub mod deliveries;
pub mod demo;
pub mod error;
pub mod events;
pub mod excerpt;
pub mod history;
pub mod ids;
pub mod ingest;
pub mod jobs;
pub mod journeys;
pub mod key_cache;
pub mod key_identity;
pub mod live;
pub mod outbound;
pub mod passes;
pub mod processing;
pub mod recent;
pub mod redeliver;
pub mod rejections;
pub mod retention;
pub mod sessions;
pub mod sfmc;
mod sql;
pub mod sso;
pub mod stats;
pub mod tasks;
pub mod tenants;
pub mod test_events;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
mod turns;
pub mod users;
pub mod vault;
pub mod wallet;
pub mod worker;

pub use crate::core::Core;
pub use crate::error::{DomainError, FieldError};
pub use sqlx;
