use serde::Serialize;

/// One invalid field in a request, shown next to that field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl DomainError {
    pub fn invalid(field: &str, message: &str) -> Self {
        DomainError::Invalid(vec![FieldError::new(field, message)])
    }
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;
