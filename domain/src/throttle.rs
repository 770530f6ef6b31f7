//! Sign-in throttling against password guessing. Attempts are counted per account
//! and per client address in the database, so every replica sees the same counts.
//!
//! The policy: an account locks after [`MAX_PER_ACCOUNT`] failed attempts within
//! [`WINDOW_MS`], an address (an office behind one NAT may share it) after
//! [`MAX_PER_ADDRESS`]. A locked account opens again by itself when its oldest
//! counted failure leaves the window (at most 15 minutes); nobody has to unlock it,
//! and a successful sign-in clears the account's count. An operator can also give
//! the person a new password with the CLI (`passhook user create … --password-stdin`).

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

/// Admits a sign-in attempt or refuses it. An admitted attempt is counted as a
/// failure *before* the password is checked (a success clears it), in one
/// transaction that holds the subjects' locks, so a burst of parallel guesses gets
/// exactly the limit's worth of checks, across replicas too. A locked account or
/// address gets the seconds to wait (that attempt is not counted).
pub async fn admit(db: &Db, subjects: &Subjects) -> Result<Admission> {
    let now = now_ms();
    let mut tx = db.writer().begin().await?;
    if db.backend() == crate::db::Backend::Postgres {
        // SQLite has one writer; PostgreSQL needs the subjects serialised. Always in
        // the same order (account, then address): no deadlock between attempts.
        for (subject, _) in subjects.with_limits() {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))::text")
                .bind(subject)
                .execute(&mut *tx)
                .await?;
        }
    }
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
        .fetch_one(&mut *tx)
        .await?;
        if count >= limit {
            // Free again when the oldest of the last `limit` failures leaves the window.
            let secs = (oldest.unwrap_or(now) + WINDOW_MS - now).max(1000) / 1000;
            wait = wait.max(Some(secs));
        }
    }
    if let Some(wait_secs) = wait {
        tx.rollback().await?;
        return Ok(Admission::Locked { wait_secs });
    }
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
    Ok(Admission::Admitted(Attempt { at: now }))
}

/// Whether a sign-in attempt may check its password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Counted; [`succeeded`] takes it back when the password was right.
    Admitted(Attempt),
    Locked {
        wait_secs: i64,
    },
}

/// An admitted attempt, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    at: i64,
}

/// A successful sign-in clears the account's failures, and takes back this attempt's
/// count against the address (an office's successful sign-ins never lock it).
pub async fn succeeded(db: &Db, subjects: &Subjects, attempt: Attempt) -> Result<()> {
    let mut tx = db.writer().begin().await?;
    sqlx::query("DELETE FROM login_failures WHERE subject = $1")
        .bind(&subjects.account)
        .execute(&mut *tx)
        .await?;
    if let Some(address) = &subjects.address {
        sqlx::query("DELETE FROM login_failures WHERE subject = $1 AND at = $2")
            .bind(address)
            .bind(attempt.at)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
