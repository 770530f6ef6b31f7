//! What the console's server functions return: plain data, the same on both sides.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Admin,
    Marketer,
}

impl Role {
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Marketer => "Marketer",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantChoice {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// Who is signed in and for which tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub email: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub role: Role,
    pub tenants: Vec<TenantChoice>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassRow {
    pub id: String,
    pub pass_type: String,
    pub identifiers: Vec<(String, String)>,
    pub data: Vec<(String, String)>,
    pub version: i64,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassList {
    pub items: Vec<PassRow>,
    pub total: i64,
    pub page: u32,
    pub page_size: u32,
}

impl PassList {
    pub fn pages(&self) -> u32 {
        ((self.total.max(0) as u32).div_ceil(self.page_size)).max(1)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dashboard {
    pub passes: i64,
    pub pass_types: Vec<(String, i64)>,
    pub active_keys: i64,
    pub recent: Vec<PassRow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_count_rounds_up_and_is_never_zero() {
        let list = |total| PassList {
            items: vec![],
            total,
            page: 1,
            page_size: 20,
        };
        assert_eq!(list(0).pages(), 1);
        assert_eq!(list(20).pages(), 1);
        assert_eq!(list(21).pages(), 2);
    }
}
