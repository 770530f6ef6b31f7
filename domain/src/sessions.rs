//! Console sessions, stored as opaque JSON in the same database as everything else.

use crate::clock::now_ms;
use crate::db::Db;
use crate::error::Result;

/// The stored data of a live session, if there is one.
pub async fn load(db: &Db, id: &str) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT data FROM sessions WHERE id = $1 AND expires_at > $2")
            .bind(id)
            .bind(now_ms())
            .fetch_optional(db.reader())
            .await?;
    Ok(row.map(|(data,)| data))
}

/// Inserts a new session; false when the id is already taken.
pub async fn create(db: &Db, id: &str, data: &str, expires_at: i64) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(data)
    .bind(expires_at)
    .execute(db.writer())
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn save(db: &Db, id: &str, data: &str, expires_at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
    )
    .bind(id)
    .bind(data)
    .bind(expires_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// Removes expired sessions; returns how many.
pub async fn delete_expired(db: &Db) -> Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now_ms())
        .execute(db.writer())
        .await?;
    Ok(done.rows_affected())
}
