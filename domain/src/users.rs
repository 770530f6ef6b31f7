//! Console accounts, their roles per tenant, and password checks (argon2).

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::db::Db;
use crate::error::{DomainError, Result};
use crate::ids::{new_id, USER};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Marketer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Marketer => "marketer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "marketer" => Some(Role::Marketer),
            _ => None,
        }
    }

    /// Admins may do everything marketers may.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || needed == Role::Marketer
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub tenant_id: String,
    pub tenant_name: String,
    pub role: Role,
}

pub const MIN_PASSWORD_LEN: usize = 10;

pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .map_err(|e| DomainError::Internal(format!("password hashing failed: {e}")))
}

fn password_matches(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Creates the account when missing, sets its password and its role in `tenant_id`.
pub async fn upsert(
    db: &Db,
    tenant_id: &str,
    email: &str,
    role: Role,
    password: &str,
) -> Result<User> {
    let email = normalize_email(email);
    if !email.contains('@') || email.len() > 254 {
        return Err(DomainError::invalid("email", "must be an email address"));
    }
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(DomainError::invalid(
            "password",
            &format!("must have at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if !crate::tenants::exists(db, tenant_id).await? {
        return Err(DomainError::NotFound("tenant"));
    }
    let hash = hash_password(password)?;
    let mut tx = db.writer().begin().await?;
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash",
    )
    .bind(new_id(USER))
    .bind(&email)
    .bind(&hash)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let (id,): (String,) = sqlx::query_as("SELECT id FROM users WHERE email = $1")
        .bind(&email)
        .fetch_one(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO memberships (user_id, tenant_id, role) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, tenant_id) DO UPDATE SET role = excluded.role",
    )
    .bind(&id)
    .bind(tenant_id)
    .bind(role.as_str())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(User { id, email })
}

/// The account for these credentials, or `None`. Unknown emails cost the same time
/// as wrong passwords, so the answer does not reveal which accounts exist.
pub async fn verify_login(db: &Db, email: &str, password: &str) -> Result<Option<User>> {
    let row: Option<(String, String, Option<String>, i64)> =
        sqlx::query_as("SELECT id, email, password_hash, disabled FROM users WHERE email = $1")
            .bind(normalize_email(email))
            .fetch_optional(db.reader())
            .await?;
    let password = password.to_string();
    let row = tokio::task::spawn_blocking(move || match row {
        Some((id, email, Some(hash), 0)) if password_matches(&password, &hash) => {
            Some(User { id, email })
        }
        Some(_) => None,
        None => {
            password_matches(&password, dummy_hash());
            None
        }
    })
    .await
    .map_err(|e| DomainError::Internal(e.to_string()))?;
    Ok(row)
}

/// A hash of a random string, verified against when the account is unknown.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&crate::crypto::random_token(16)).unwrap_or_default())
}

pub async fn get(db: &Db, user_id: &str) -> Result<Option<User>> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT id, email FROM users WHERE id = $1 AND disabled = 0")
            .bind(user_id)
            .fetch_optional(db.reader())
            .await?;
    Ok(row.map(|(id, email)| User { id, email }))
}

/// The tenants this user belongs to, by tenant name.
pub async fn memberships(db: &Db, user_id: &str) -> Result<Vec<Membership>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.tenant_id, t.name, m.role FROM memberships m \
         JOIN tenants t ON t.id = m.tenant_id WHERE m.user_id = $1 ORDER BY t.name, t.id",
    )
    .bind(user_id)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(tenant_id, tenant_name, role)| {
            Some(Membership {
                tenant_id,
                tenant_name,
                role: Role::parse(&role)?,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_may_do_what_marketers_may() {
        assert!(Role::Admin.allows(Role::Marketer));
        assert!(Role::Admin.allows(Role::Admin));
        assert!(Role::Marketer.allows(Role::Marketer));
        assert!(!Role::Marketer.allows(Role::Admin));
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(password_matches("correct horse battery", &hash));
        assert!(!password_matches("correct horse batterx", &hash));
        assert!(!password_matches("anything", dummy_hash()));
        assert!(PasswordHash::new(dummy_hash()).is_ok());
    }
}
