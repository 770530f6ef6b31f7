//! Passhook's domain: everything the product knows and stores.
//!
//! No HTTP framework and no UI here: `server` and `app` turn requests into calls on
//! [`Core`] and turn its results into responses.

pub mod api_keys;
pub mod clock;
pub mod core;
pub mod crypto;
pub mod db;
pub mod demo;
pub mod error;
pub mod ids;
pub mod passes;
pub mod sessions;
pub mod tenants;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;

pub use crate::core::Core;
pub use crate::error::{DomainError, FieldError};
pub use sqlx;
