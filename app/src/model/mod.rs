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

/// The answer of a form's server function: saved, or the fields to fix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Saved<T> {
    Done(T),
    Invalid(Vec<FieldProblem>),
}

impl<T> Saved<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Saved<U> {
        match self {
            Saved::Done(value) => Saved::Done(f(value)),
            Saved::Invalid(problems) => Saved::Invalid(problems),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldProblem {
    /// The field's name as the server knows it (`apiBaseUrl`, `signingKeys[0].secret`…);
    /// empty for a problem with the whole form.
    pub field: String,
    pub message: String,
}

/// The message for `field`, if the server had one.
pub fn problem_for(problems: &[FieldProblem], field: &str) -> Option<String> {
    problems
        .iter()
        .find(|p| p.field == field || p.field.starts_with(&format!("{field}.")))
        .map(|p| p.message.clone())
}

/// One change to an integration: who, when, what (secrets already masked).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub at: String,
    pub actor: String,
    pub summary: String,
    pub changes: Vec<(String, Option<String>, Option<String>)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    /// Rotated: works until this time.
    Expiring(String),
    Expired,
    Revoked,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_by: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub status: KeyStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeChoice {
    pub name: String,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysPage {
    pub keys: Vec<ApiKeyRow>,
    pub scopes: Vec<ScopeChoice>,
    pub history: Vec<HistoryRow>,
}

/// A person just added: a new account's one-time set-up link, shown once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonAdded {
    pub email: String,
    pub setup_link: Option<String>,
}

/// A key just created or rotated: shown once, never again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewKey {
    pub name: String,
    pub key: String,
}

/// The Actito settings as the form shows them (the API key only as a hint).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActitoForm {
    pub configured: bool,
    pub api_base_url: String,
    pub entity: String,
    pub api_key_hint: Option<String>,
    pub profile_table_id: String,
    pub identifier_mapping: Vec<(String, String)>,
    pub data_mapping: Vec<(String, String)>,
    pub callback_hosts: Vec<String>,
}

/// What an admin sends: an empty `api_key` keeps the stored one, with the host it was
/// stored for (another host needs the key again).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActitoInput {
    pub api_base_url: String,
    pub entity: String,
    pub api_key: String,
    pub profile_table_id: String,
    pub identifier_mapping: Vec<(String, String)>,
    pub data_mapping: Vec<(String, String)>,
    pub callback_hosts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActitoView {
    pub form: ActitoForm,
    pub listener_urls: Vec<(String, String)>,
    pub history: Vec<HistoryRow>,
}

/// The answer of a connection test, in words for the admin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTest {
    pub ok: bool,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRow {
    pub id: String,
    /// What Actito pushes, in words: "Profile UPDATE on table 12".
    pub event: String,
    pub fields: Vec<String>,
    pub target_url: String,
    pub active: bool,
    /// Points at this Passhook tenant's listeners.
    pub ours: bool,
}

/// The entity's subscriptions, or why they could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionList {
    pub items: Vec<SubscriptionRow>,
    pub problem: Option<String>,
    /// Attribute names suggested for a profile subscription (the mapped ones).
    pub suggested_fields: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRow {
    pub id: String,
    pub created_at: String,
    pub last_verified_at: Option<String>,
    /// This key verified the most recent request.
    pub verified_last: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SfmcView {
    pub keys: Vec<SigningKeyRow>,
    pub customer_key: Option<String>,
    /// Executes that match no pass are answered 200 (the contact continues the
    /// journey) rather than 404 (it leaves).
    pub continue_without_pass: bool,
    pub config_url: String,
    pub activity_url: String,
    pub execute_url: String,
    pub history: Vec<HistoryRow>,
}

/// A test call of the execute listener, signed with one of the tenant's keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCall {
    pub key_id: String,
    pub pass_id: String,
    pub email: String,
    pub additional_data: Vec<(String, String)>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestCallResult {
    pub status: u16,
    pub body: String,
    /// The targeted passes after the update was applied (or as they are when it was not).
    pub passes: Vec<PassRow>,
    pub applied: bool,
}

/// One field of a pass type's design: where it shows, what it shows, and whether a
/// change notifies (Apple: a change message; Google: the notify flag).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldRow {
    /// `header`, `primary`, `secondary`, `auxiliary`, `back` (Apple) or `google`.
    pub section: String,
    pub key: String,
    pub label: String,
    pub value_from: String,
    pub value: String,
    pub change_message: String,
    pub notify: bool,
}

pub const FIELD_SECTIONS: [(&str, &str); 6] = [
    ("header", "Apple header"),
    ("primary", "Apple primary"),
    ("secondary", "Apple secondary"),
    ("auxiliary", "Apple auxiliary"),
    ("back", "Apple back"),
    ("google", "Google"),
];

/// The editable part of a pass type's design.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassTypeForm {
    pub id: String,
    pub name: String,
    pub has_apple: bool,
    pub has_google: bool,
    pub style: String,
    pub background_color: String,
    pub foreground_color: String,
    pub label_color: String,
    pub logo_text: String,
    pub fields: Vec<FieldRow>,
    /// Data of the newest pass of this type, for the preview.
    pub sample: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialRow {
    pub kind: String,
    pub details: Vec<(String, String)>,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletView {
    pub credentials: Vec<CredentialRow>,
    pub pass_types: Vec<PassTypeForm>,
    pub history: Vec<HistoryRow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub sign_in: String,
    pub is_you: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeopleView {
    pub members: Vec<MemberRow>,
    pub sso_configured: bool,
    pub history: Vec<HistoryRow>,
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

mod activity;
pub use activity::*;
