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
    /// Sessions signed in before this time (ms) are void: "sign out everywhere".
    pub sessions_valid_from: i64,
}

/// A person as a tenant admin sees them on the users page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    pub has_password: bool,
    pub created_at: i64,
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
    VERIFICATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Password verifications so far in this process: every failed sign-in, whatever
/// its cause, costs exactly one (tests read this instead of timing).
static VERIFICATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub fn verifications() -> u64 {
    VERIFICATIONS.load(std::sync::atomic::Ordering::Relaxed)
}

/// How many argon2 computations run at once. Each takes about 19 MiB and a core
/// for ~15 ms: a burst of sign-ins waits here instead of taking the memory.
pub const HASHING_PERMITS: usize = 2;

/// Runs argon2 work on the blocking pool, at most [`HASHING_PERMITS`] at a time.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    static PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASHING_PERMITS);
    let _permit = PERMITS
        .acquire()
        .await
        .map_err(|e| DomainError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DomainError::Internal(e.to_string()))
}

fn check_email(email: &str) -> Result<String> {
    let email = normalize_email(email);
    if !email.contains('@') || email.len() > 254 || email.chars().any(char::is_whitespace) {
        return Err(DomainError::invalid("email", "must be an email address"));
    }
    Ok(email)
}

fn check_password(field: &str, password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(DomainError::invalid(
            field,
            &format!("must have at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

/// The operator's way to set up an account (CLI, demo): creates it when missing,
/// sets its password and its role in `tenant_id`. A changed password ends the
/// account's sessions. Tenant admins never reach this: they use [`add_member`].
pub async fn upsert(
    db: &Db,
    tenant_id: &str,
    email: &str,
    role: Role,
    password: &str,
) -> Result<User> {
    let email = check_email(email)?;
    check_password("password", password)?;
    if !crate::tenants::exists(db, tenant_id).await? {
        return Err(DomainError::NotFound("tenant"));
    }
    let password = password.to_string();
    let hash = hashing(move || hash_password(&password)).await??;
    let now = now_ms();
    let mut tx = db.writer().begin().await?;
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (email) DO UPDATE SET password_hash = excluded.password_hash, \
         sessions_valid_from = $4",
    )
    .bind(new_id(USER))
    .bind(&email)
    .bind(&hash)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let (id, valid_from): (String, i64) =
        sqlx::query_as("SELECT id, sessions_valid_from FROM users WHERE email = $1")
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
    Ok(User {
        id,
        email,
        sessions_valid_from: valid_from,
    })
}

/// The account for these credentials, or `None`. Every failure costs one password
/// verification, whether the email is unknown, the account has no password (SSO
/// only) or is disabled, or the password is wrong: the answer's timing does not tell
/// which accounts exist or what kind they are.
pub async fn verify_login(db: &Db, email: &str, password: &str) -> Result<Option<User>> {
    let row: Option<(String, String, Option<String>, i64, i64)> = sqlx::query_as(
        "SELECT id, email, password_hash, disabled, sessions_valid_from FROM users WHERE email = $1",
    )
    .bind(normalize_email(email))
    .fetch_optional(db.reader())
    .await?;
    let password = password.to_string();
    hashing(move || {
        let hash = row.as_ref().and_then(|r| r.2.as_deref());
        let matches = password_matches(&password, hash.unwrap_or_else(|| dummy_hash()));
        match row {
            Some((id, email, Some(_), 0, valid_from)) if matches => Some(User {
                id,
                email,
                sessions_valid_from: valid_from,
            }),
            _ => None,
        }
    })
    .await
}

/// A hash of a random string, verified against when the account is unknown.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&crate::crypto::random_token(16)).unwrap_or_default())
}

pub async fn get(db: &Db, user_id: &str) -> Result<Option<User>> {
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT id, email, sessions_valid_from FROM users WHERE id = $1 AND disabled = 0",
    )
    .bind(user_id)
    .fetch_optional(db.reader())
    .await?;
    Ok(row.map(|(id, email, valid_from)| User {
        id,
        email,
        sessions_valid_from: valid_from,
    }))
}

/// The account with this email, if any and not disabled (for single sign-on).
pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<User>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE email = $1")
        .bind(normalize_email(email))
        .fetch_optional(db.reader())
        .await?;
    match row {
        Some((id,)) => get(db, &id).await,
        None => Ok(None),
    }
}

/// The tenants this user belongs to, by tenant name.
pub async fn memberships(db: &Db, user_id: &str) -> Result<Vec<Membership>> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT m.tenant_id, t.name, m.role FROM memberships m \
         JOIN tenants t ON t.id = m.tenant_id WHERE m.user_id = $1 AND m.disabled = 0 \
         ORDER BY t.name, t.id",
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

/// The chosen tenant's membership if there is one, else the first.
pub fn pick_membership<'a>(
    memberships: &'a [Membership],
    chosen_tenant: Option<&str>,
) -> Option<&'a Membership> {
    memberships
        .iter()
        .find(|m| Some(m.tenant_id.as_str()) == chosen_tenant)
        .or(memberships.first())
}

/// The tenant's people, admins first.
pub async fn members(db: &Db, tenant_id: &str) -> Result<Vec<Member>> {
    let rows: Vec<(String, String, String, i64, Option<String>, i64)> = sqlx::query_as(
        "SELECT u.id, u.email, m.role, m.disabled, u.password_hash, u.created_at \
         FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 \
         ORDER BY m.role, u.email",
    )
    .bind(tenant_id)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(user_id, email, role, disabled, hash, created_at)| {
            Some(Member {
                user_id,
                email,
                role: Role::parse(&role)?,
                disabled: disabled != 0,
                has_password: hash.is_some(),
                created_at,
            })
        })
        .collect())
}

/// What adding a person did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Added {
    /// The email already had an account: it joined this tenant and nothing else of
    /// it changed (password, sessions, other tenants).
    Joined(Member),
    /// A new account, without a password: `setup_token` is the one-time link's token
    /// with which the person chooses theirs (or they sign in with SSO).
    Invited { member: Member, setup_token: String },
}

impl Added {
    pub fn member(&self) -> &Member {
        match self {
            Added::Joined(member) | Added::Invited { member, .. } => member,
        }
    }
}

/// How long a password set-up link works.
pub const SETUP_LINK_MS: i64 = 7 * 24 * 3600 * 1000;

/// Adds a person to the tenant. A tenant action never sets or changes a password:
/// an existing account only gains a membership here; a new one gets a set-up link.
pub async fn add_member(db: &Db, tenant_id: &str, email: &str, role: Role) -> Result<Added> {
    let email = check_email(email)?;
    let now = now_ms();
    let mut tx = db.writer().begin().await?;
    let created = sqlx::query(
        "INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, NULL, $3) \
         ON CONFLICT (email) DO NOTHING",
    )
    .bind(new_id(USER))
    .bind(&email)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let (user_id,): (String,) = sqlx::query_as("SELECT id FROM users WHERE email = $1")
        .bind(&email)
        .fetch_one(&mut *tx)
        .await?;
    let joined = sqlx::query(
        "INSERT INTO memberships (user_id, tenant_id, role) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, tenant_id) DO NOTHING",
    )
    .bind(&user_id)
    .bind(tenant_id)
    .bind(role.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if joined == 0 {
        return Err(DomainError::Conflict(format!(
            "{email} is already in this tenant: change their role or access in the table."
        )));
    }
    let setup_token = if created {
        let token = crate::crypto::random_token(32);
        sqlx::query(
            "INSERT INTO password_setups (token_hash, user_id, tenant_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(crate::crypto::sha256_hex(&token))
        .bind(&user_id)
        .bind(tenant_id)
        .bind(now)
        .bind(now + SETUP_LINK_MS)
        .execute(&mut *tx)
        .await?;
        Some(token)
    } else {
        None
    };
    tx.commit().await?;
    let member = members(db, tenant_id)
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id)
        .ok_or(DomainError::NotFound("user"))?;
    Ok(match setup_token {
        Some(setup_token) => Added::Invited {
            member,
            setup_token,
        },
        None => Added::Joined(member),
    })
}

/// The account a set-up link may give a password to, if the link still works: unused,
/// not expired, the account still without a password, and in no tenant but the
/// link's (so a link kept by one tenant's admin never opens another tenant).
pub async fn setup_link(db: &Db, token: &str) -> Result<Option<User>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT s.user_id FROM password_setups s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.used_at IS NULL AND s.expires_at > $2 \
         AND u.password_hash IS NULL AND u.disabled = 0 \
         AND NOT EXISTS (SELECT 1 FROM memberships m \
                         WHERE m.user_id = s.user_id AND m.tenant_id <> s.tenant_id)",
    )
    .bind(crate::crypto::sha256_hex(token))
    .bind(now_ms())
    .fetch_optional(db.reader())
    .await?;
    match row {
        Some((user_id,)) => get(db, &user_id).await,
        None => Ok(None),
    }
}

/// The person chooses their password with a set-up link; the link is then used up.
pub async fn set_up_password(db: &Db, token: &str, password: &str) -> Result<User> {
    let refused = || {
        DomainError::Conflict(
            "This link no longer works: ask your admin to add you again, or sign in.".into(),
        )
    };
    let user = setup_link(db, token).await?.ok_or_else(refused)?;
    check_password("password", password)?;
    let password = password.to_string();
    let hash = hashing(move || hash_password(&password)).await??;
    let now = now_ms();
    let mut tx = db.writer().begin().await?;
    let used = sqlx::query(
        "UPDATE password_setups SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(crate::crypto::sha256_hex(token))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let set = sqlx::query(
        "UPDATE users SET password_hash = $1, sessions_valid_from = $2 \
         WHERE id = $3 AND password_hash IS NULL",
    )
    .bind(&hash)
    .bind(now)
    .bind(&user.id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if used != 1 || set != 1 {
        return Err(refused());
    }
    tx.commit().await?;
    Ok(User {
        sessions_valid_from: now,
        ..user
    })
}

/// Refuses a change that would leave the tenant without an active admin.
async fn keep_an_admin(db: &Db, tenant_id: &str, user_id: &str) -> Result<()> {
    let others = members(db, tenant_id)
        .await?
        .into_iter()
        .filter(|m| m.role == Role::Admin && !m.disabled && m.user_id != user_id)
        .count();
    match others {
        0 => Err(DomainError::Conflict(
            "A tenant needs at least one active admin.".into(),
        )),
        _ => Ok(()),
    }
}

pub async fn set_role(db: &Db, tenant_id: &str, user_id: &str, role: Role) -> Result<()> {
    if role != Role::Admin {
        keep_an_admin(db, tenant_id, user_id).await?;
    }
    let done =
        sqlx::query("UPDATE memberships SET role = $1 WHERE tenant_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(tenant_id)
            .bind(user_id)
            .execute(db.writer())
            .await?;
    match done.rows_affected() {
        0 => Err(DomainError::NotFound("user")),
        _ => Ok(()),
    }
}

/// Takes the member's access to this tenant away (or gives it back); their open
/// sessions lose it at their next request.
pub async fn set_disabled(db: &Db, tenant_id: &str, user_id: &str, disabled: bool) -> Result<()> {
    if disabled {
        keep_an_admin(db, tenant_id, user_id).await?;
    }
    let done =
        sqlx::query("UPDATE memberships SET disabled = $1 WHERE tenant_id = $2 AND user_id = $3")
            .bind(i64::from(disabled))
            .bind(tenant_id)
            .bind(user_id)
            .execute(db.writer())
            .await?;
    match done.rows_affected() {
        0 => Err(DomainError::NotFound("user")),
        _ => Ok(()),
    }
}

/// Changes a local account's password after checking the current one; every other
/// session of the account ends.
pub async fn change_password(db: &Db, user_id: &str, current: &str, new: &str) -> Result<()> {
    let row: Option<(String,)> = sqlx::query_as("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db.reader())
        .await?;
    let Some((email,)) = row else {
        return Err(DomainError::NotFound("user"));
    };
    if verify_login(db, &email, current).await?.is_none() {
        return Err(DomainError::invalid(
            "current",
            "is not your current password",
        ));
    }
    check_password("new", new)?;
    let new = new.to_string();
    let hash = hashing(move || hash_password(&new)).await??;
    sqlx::query("UPDATE users SET password_hash = $1, sessions_valid_from = $2 WHERE id = $3")
        .bind(hash)
        .bind(now_ms())
        .bind(user_id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Ends every session of the account, on every device.
pub async fn sign_out_everywhere(db: &Db, user_id: &str) -> Result<()> {
    sqlx::query("UPDATE users SET sessions_valid_from = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(user_id)
        .execute(db.writer())
        .await?;
    Ok(())
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
