//! The listeners Actito and SFMC call (CONTRACT §6–§7).
//!
//! A handler authenticates, parses the request into a domain type, stores the event
//! with its jobs in one transaction and only then answers. Every rejection is
//! recorded for the audit view by [`audit::record_rejections`].

pub mod actito;
pub mod audit;
pub mod sfmc;
