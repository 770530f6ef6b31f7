//! `passhook demo`: a tenant with passes, logins and a key, ready to click through.

use serde_json::json;

use crate::api_keys::{self, Scope};
use crate::db::Db;
use crate::error::{DomainError, Result};
use crate::passes::{self, Identifiers, NewPass, PassFilter};
use crate::tenants;
use crate::users::{self, Role};

pub const TENANT: &str = "demo";
pub const ADMIN_EMAIL: &str = "admin@demo.passhook.test";
pub const MARKETER_EMAIL: &str = "marketer@demo.passhook.test";

#[derive(Clone, Debug)]
pub struct DemoLogins {
    pub tenant_id: String,
    pub admin_email: String,
    pub marketer_email: String,
    pub password: String,
    pub api_key: String,
    pub passes: i64,
}

const PEOPLE: [(&str, &str, &str, i64); 12] = [
    ("John", "Smith", "gold", 1250),
    ("Jane", "Smith", "silver", 640),
    ("Amelia", "Dubois", "bronze", 90),
    ("Lucas", "Peeters", "gold", 2210),
    ("Emma", "Janssens", "silver", 720),
    ("Noah", "Maes", "bronze", 35),
    ("Olivia", "Jacobs", "gold", 1890),
    ("Liam", "Mertens", "silver", 410),
    ("Mila", "Willems", "bronze", 150),
    ("Louis", "Claes", "silver", 505),
    ("Elena", "Goossens", "gold", 3020),
    ("Arthur", "Wouters", "bronze", 60),
];

/// Creates what is missing and returns the logins. Running it again keeps the data,
/// resets the demo password to `password` and issues a fresh demo API key.
pub async fn seed(db: &Db, password: &str) -> Result<DemoLogins> {
    match tenants::create(db, TENANT, "Demo Retail").await {
        Ok(_) | Err(DomainError::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    users::upsert(db, TENANT, ADMIN_EMAIL, Role::Admin, password).await?;
    users::upsert(db, TENANT, MARKETER_EMAIL, Role::Marketer, password).await?;
    let (_, api_key) =
        api_keys::create(db, TENANT, "demo", &Scope::ALL, Some("passhook demo")).await?;
    let (_, existing) = passes::list_page(db, TENANT, &PassFilter::default(), 0, 1).await?;
    if existing == 0 {
        for (n, (first, last, tier, points)) in PEOPLE.iter().enumerate() {
            let email = format!(
                "{}.{}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            );
            let mut identifiers = Identifiers::new();
            identifiers.insert("email".into(), email);
            identifiers.insert("customId".into(), format!("CUST-{:04}", 1001 + n));
            let kind = if n % 3 == 2 { "coupon" } else { "loyalty" };
            let new = NewPass {
                id: None,
                pass_type: kind.into(),
                identifiers,
                additional_data:
                    json!({"firstName": first, "lastName": last, "tier": tier, "points": points})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                metadata: Default::default(),
            };
            passes::create(db, TENANT, new).await?;
        }
    }
    let (_, count) = passes::list_page(db, TENANT, &PassFilter::default(), 0, 1).await?;
    Ok(DemoLogins {
        tenant_id: TENANT.into(),
        admin_email: ADMIN_EMAIL.into(),
        marketer_email: MARKETER_EMAIL.into(),
        password: password.into(),
        api_key,
        passes: count,
    })
}
