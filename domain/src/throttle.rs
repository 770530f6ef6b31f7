//! Sign-in throttling against password guessing. Failures are counted per account
//! and per client address in the database, so every replica sees the same counts.
//! An account locks after a few failures; an address (an office behind one NAT may
//! share it) after more.

use crate::clock::now_ms;
use crate::db::Db;
use crate::error::Result;

pub const WINDOW_MS: i64 = 15 * 60 * 1000;
pub const MAX_PER_ACCOUNT: i64 = 5;
pub const MAX_PER_ADDRESS: i64 = 30;

/// What sign-in failures are counted against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subjects {
    account: String,
    address: Option<String>,
}

impl Subjects {
    pub fn new(email: &str, address: Option<&str>) -> Self {
        Subjects {
            account: format!("account:{}", crate::users::normalize_email(email)),
            address: address.map(|a| format!("address:{a}")),
        }
    }

    fn with_limits(&self) -> Vec<(&str, i64)> {
        let mut all = vec![(self.account.as_str(), MAX_PER_ACCOUNT)];
        if let Some(address) = &self.address {
            all.push((address.as_str(), MAX_PER_ADDRESS));
        }
        all
    }
}

/// Seconds until another attempt is allowed, or `None` when one is allowed now.
pub async fn locked_for(db: &Db, subjects: &Subjects) -> Result<Option<i64>> {
    let now = now_ms();
    let mut wait = None;
    for (subject, limit) in subjects.with_limits() {
        let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(at) FROM ( \
             SELECT at FROM login_failures WHERE subject = $1 AND at > $2 ORDER BY at DESC LIMIT $3 \
             ) recent",
        )
        .bind(subject)
        .bind(now - WINDOW_MS)
        .bind(limit)
        .fetch_one(db.reader())
        .await?;
        if count >= limit {
            // Free again when the oldest of the last `limit` failures leaves the window.
            let secs = (oldest.unwrap_or(now) + WINDOW_MS - now).max(1000) / 1000;
            wait = wait.max(Some(secs));
        }
    }
    Ok(wait)
}

/// Counts a failed sign-in, and forgets failures older than the window.
pub async fn failed(db: &Db, subjects: &Subjects) -> Result<()> {
    let now = now_ms();
    let mut tx = db.writer().begin().await?;
    for (subject, _) in subjects.with_limits() {
        sqlx::query("INSERT INTO login_failures (subject, at) VALUES ($1, $2)")
            .bind(subject)
            .bind(now)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query("DELETE FROM login_failures WHERE at <= $1")
        .bind(now - WINDOW_MS)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A successful sign-in clears the account's failures (not the address's).
pub async fn succeeded(db: &Db, subjects: &Subjects) -> Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE subject = $1")
        .bind(&subjects.account)
        .execute(db.writer())
        .await?;
    Ok(())
}
