//! `passhook demo`: a tenant with passes, logins and a key, ready to click through.

use serde_json::json;

use crate::api_keys::{self, Scope};
use crate::core::Core;
use crate::error::{DomainError, Result};
use crate::passes::{self, Identifiers, NewPass, PassFilter};
use crate::tenants;
use crate::users::{self, Role};
use crate::wallet::{certs, credentials, pass_types};

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
pub async fn seed(core: &Core, password: &str) -> Result<DemoLogins> {
    let db = &core.db;
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
    seed_wallet(core).await?;
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

const DEMO_PASS_TYPE_ID: &str = "pass.test.passhook.demo";

/// One pass type per demo kind, with Apple and Google designs, and self-generated
/// Apple test credentials (a test CA stands in for Apple's WWDR). No Google service
/// account: a made-up one would send every pass update to Google's real token
/// endpoint and fill the push history with failures. Nothing here reaches Apple or
/// Google until an admin uploads real credentials.
async fn seed_wallet(core: &Core) -> Result<()> {
    for (id, name, style, kind) in [
        ("loyalty", "Loyalty card", "storeCard", "loyalty"),
        ("coupon", "Coupon", "coupon", "offer"),
    ] {
        let design: pass_types::PassTypeInput = serde_json::from_value(json!({
            "name": name,
            "apple": {
                "passTypeIdentifier": DEMO_PASS_TYPE_ID, "teamIdentifier": "DEMO000000",
                "organizationName": "Demo Retail", "description": name, "style": style,
                "foregroundColor": "rgb(255,255,255)", "backgroundColor": "rgb(79,70,229)", "labelColor": "rgb(224,231,255)",
                "logoText": "Demo Retail",
                "fields": {
                    "header": [{"key": "tier", "label": "Tier", "valueFrom": "tier", "changeMessage": "You are now %@"}],
                    "primary": [{"key": "points", "label": "Points", "valueFrom": "points", "changeMessage": "You now have %@ points"}],
                    "secondary": [{"key": "name", "label": "Member", "valueFrom": "firstName"}],
                    "back": [{"key": "terms", "label": "Terms", "value": "Demo pass: not valid in stores."}]
                }
            },
            "google": {
                "issuerId": "3388000000000000000", "classId": format!("3388000000000000000.demo_{id}"), "objectKind": kind,
                "fields": [
                    {"key": "points", "label": "Points", "valueFrom": "points", "notify": true},
                    {"key": "tier", "label": "Tier", "valueFrom": "tier", "notify": true},
                    {"key": "name", "label": "Member", "valueFrom": "firstName"}
                ]
            }
        }))
        .expect("the demo design is valid");
        pass_types::put(&core.db, TENANT, id, design).await?;
    }
    if credentials::apple(core.vault(), TENANT).await?.is_none() {
        let test = certs::generate(DEMO_PASS_TYPE_ID);
        let input = credentials::AppleCredentialsInput {
            certificate_pem: Some(test.certificate_pem),
            private_key_pem: Some(test.private_key_pem),
            wwdr_pem: test.ca_pem,
            apns: Some(credentials::ApnsTokenKey {
                key_p8: test.apns_key_p8,
                key_id: "DEMOKEY000".into(),
                team_id: "DEMO000000".into(),
            }),
            ..Default::default()
        };
        credentials::put_apple(core.vault(), TENANT, input).await?;
    }
    Ok(())
}
