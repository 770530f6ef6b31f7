//! What a presented API key proves: its tenant and its scopes. Apart from the store
//! ([`crate::api_keys`]) and the cache in front of it ([`crate::key_cache`]), which
//! both use it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "ActitoListener.Write")]
    ActitoListenerWrite,
    #[serde(rename = "Passes.Read")]
    PassesRead,
    #[serde(rename = "Passes.Write")]
    PassesWrite,
    #[serde(rename = "Audit.Read")]
    AuditRead,
    #[serde(rename = "Integrations.Write")]
    IntegrationsWrite,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::ActitoListenerWrite,
        Scope::PassesRead,
        Scope::PassesWrite,
        Scope::AuditRead,
        Scope::IntegrationsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ActitoListenerWrite => "ActitoListener.Write",
            Scope::PassesRead => "Passes.Read",
            Scope::PassesWrite => "Passes.Write",
            Scope::AuditRead => "Audit.Read",
            Scope::IntegrationsWrite => "Integrations.Write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// One line for people choosing scopes.
    pub fn description(self) -> &'static str {
        match self {
            Scope::ActitoListenerWrite => {
                "Lets Actito call the custom-action and profile listeners."
            }
            Scope::PassesRead => "Read passes and look them up by identifier.",
            Scope::PassesWrite => "Create passes and change their data.",
            Scope::AuditRead => "Read inbound events and delivery attempts.",
            Scope::IntegrationsWrite => "Change Actito and SFMC settings.",
        }
    }
}

/// What a presented key proved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyIdentity {
    pub key_id: String,
    pub name: String,
    pub tenant_id: String,
    pub scopes: Vec<Scope>,
    /// When the key was last noted as used (ms), to note it again at most once a minute.
    pub last_used_at: Option<i64>,
}

/// How often a key's "last used" is written: often enough to be useful, rare enough
/// to cost nothing on a listener taking thousands of requests a second.
pub const USE_NOTE_INTERVAL_MS: i64 = 60_000;

impl KeyIdentity {
    pub fn use_note_due(&self, now: i64) -> bool {
        self.last_used_at
            .is_none_or(|at| now - at >= USE_NOTE_INTERVAL_MS)
    }
}

/// Why a key may not act on a tenant's resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No key, or a key we do not know (or revoked): 401.
    Unauthenticated,
    /// A valid key of another tenant: 403.
    OtherTenant,
    /// A valid key of this tenant without the scope: 403.
    MissingScope,
}

impl KeyIdentity {
    /// The rule of CONTRACT §3: right tenant first, then the scope.
    pub fn authorize(&self, tenant_id: &str, scope: Scope) -> Result<(), Denied> {
        if self.tenant_id != tenant_id {
            Err(Denied::OtherTenant)
        } else if !self.scopes.contains(&scope) {
            Err(Denied::MissingScope)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(tenant: &str, scopes: &[Scope]) -> KeyIdentity {
        KeyIdentity {
            key_id: "key_1".into(),
            name: "test".into(),
            tenant_id: tenant.into(),
            scopes: scopes.to_vec(),
            last_used_at: None,
        }
    }

    #[test]
    fn tenant_is_checked_before_scope() {
        let key = identity("acme", &[Scope::PassesRead]);
        assert_eq!(key.authorize("acme", Scope::PassesRead), Ok(()));
        assert_eq!(
            key.authorize("acme", Scope::PassesWrite),
            Err(Denied::MissingScope)
        );
        assert_eq!(
            key.authorize("other", Scope::PassesRead),
            Err(Denied::OtherTenant)
        );
        assert_eq!(
            key.authorize("other", Scope::PassesWrite),
            Err(Denied::OtherTenant)
        );
    }
}
