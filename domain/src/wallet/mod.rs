//! Wallet delivery: pass types (how a pass looks on Apple and Google), the tenant's
//! wallet credentials, and the `.pkpass` bundles Apple Wallet downloads.

pub mod apns;
pub mod certs;
pub mod credentials;
pub mod delivery;
pub mod google;
pub mod pass_types;
pub mod pkpass;
pub mod registrations;
