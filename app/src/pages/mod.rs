pub mod api_keys;
pub mod dashboard;
pub mod login;
pub mod not_found;
pub mod passes;
pub mod placeholder;
