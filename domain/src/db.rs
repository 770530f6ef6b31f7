//! Database access for both backends through sqlx's `Any` driver.
//!
//! SQLite is the embedded default: one file in WAL mode, a single writer connection
//! (SQLite allows one writer at a time; serialising writes in-process avoids `SQLITE_BUSY`)
//! and a small pool of readers. PostgreSQL is the scale-out option: one pool for both.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use tokio::sync::broadcast;

use crate::live::{Live, LiveEvent};
use crate::turns::{Turn, Turns};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend behind a connection (for SQL that differs between the two).
    pub fn of(conn: &AnyConnection) -> Backend {
        if conn.backend_name() == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported database URL {0:?}: use sqlite://<file> or postgres://…")]
    UnsupportedUrl(String),
    #[error("cannot connect to the database")]
    Connect(#[from] sqlx::Error),
}

/// A handle on the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    write: AnyPool,
    read: AnyPool,
    backend: Backend,
    /// SQLite has one writer: turns at it go to inbound events before background
    /// work, so an acknowledgement never queues behind a backlog of jobs.
    turns: Arc<Turns>,
    /// The live feed (see [`crate::live`]): in-process on SQLite, NOTIFY on PostgreSQL.
    live: Live,
}

/// A writer connection for background work, holding its place at the gate.
pub struct Background {
    conn: PoolConnection<Any>,
    _turn: Option<Turn>,
}

impl std::ops::Deref for Background {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Background {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

/// The writer connection for inbound events, ahead of background work.
pub struct Priority {
    conn: PoolConnection<Any>,
    _turn: Option<Turn>,
}

impl std::ops::Deref for Priority {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Priority {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Db {
    /// Connects (creating the SQLite file when missing) and checks the connection.
    pub async fn connect(url: &str) -> Result<Db, ConnectError> {
        install_default_drivers();
        match backend_of(url) {
            Some(Backend::Sqlite) => Self::connect_sqlite(url).await,
            Some(Backend::Postgres) => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect(url)
                    .await?;
                Ok(Db {
                    live: Live::postgres(url, pool.clone()),
                    write: pool.clone(),
                    read: pool,
                    backend: Backend::Postgres,
                    turns: Arc::default(),
                })
            }
            None => Err(ConnectError::UnsupportedUrl(url.to_string())),
        }
    }

    async fn connect_sqlite(url: &str) -> Result<Db, ConnectError> {
        let url = sqlite_url_with_create(url);
        let options = || {
            AnyPoolOptions::new()
                .acquire_timeout(Duration::from_secs(10))
                // A connection to a local file does not go stale: no ping before each
                // use (on SQLite a ping is a round trip to the connection's thread).
                .test_before_acquire(false)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                             PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; \
                             PRAGMA wal_autocheckpoint = 20000;",
                        )
                        .await?;
                        Ok(())
                    })
                })
        };
        // Every use of the writer starts durable; background work relaxes it explicitly.
        let write = options()
            .max_connections(1)
            .before_acquire(|conn, _meta| {
                Box::pin(async move {
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    Ok(true)
                })
            })
            .connect(&url)
            .await?;
        let read = options().max_connections(4).connect(&url).await?;
        tokio::spawn(checkpoints(read.clone()));
        Ok(Db {
            write,
            read,
            backend: Backend::Sqlite,
            turns: Arc::default(),
            live: Live::local(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool for statements that write.
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// A writer connection for the workers' bookkeeping and processing. On SQLite its
    /// commits skip the fsync (`synchronous = NORMAL`: still atomic, and safe against
    /// a process crash; a power cut can only undo recent background work, which the
    /// job queue then redoes, and pass merges are idempotent). Inbound events, API and
    /// console writes keep full durability.
    pub async fn background(&self) -> Result<Background, sqlx::Error> {
        if self.backend == Backend::Postgres {
            return Ok(Background {
                conn: self.write.acquire().await?,
                _turn: None,
            });
        }
        let turn = self.turns.take(false).await;
        let mut conn = self.write.acquire().await?;
        conn.execute("PRAGMA synchronous = NORMAL").await?;
        Ok(Background {
            conn,
            _turn: Some(turn),
        })
    }

    /// The writer for inbound events: fully durable, and ahead of background work.
    pub async fn priority(&self) -> Result<Priority, sqlx::Error> {
        let turn = match self.backend {
            Backend::Sqlite => Some(self.turns.take(true).await),
            Backend::Postgres => None,
        };
        Ok(Priority {
            conn: self.write.acquire().await?,
            _turn: turn,
        })
    }

    /// Publishes to the live feed: never blocks and never fails (see [`crate::live`]).
    pub fn publish(&self, event: LiveEvent) {
        self.live.publish(event);
    }

    /// Publishes several events to the live feed.
    pub fn publish_all(&self, events: impl IntoIterator<Item = LiveEvent>) {
        self.live.publish_all(events);
    }

    /// The live events of a transaction about to commit: on PostgreSQL they become
    /// its notifications (delivered with the commit, never lost to a crash after it)
    /// and `true` is returned; on SQLite the caller publishes them after the commit.
    pub async fn notify_in(
        &self,
        conn: &mut AnyConnection,
        events: &[LiveEvent],
    ) -> Result<bool, sqlx::Error> {
        if !self.live.notifies() {
            return Ok(false);
        }
        crate::live::notify_in(conn, events).await?;
        Ok(true)
    }

    /// Every tenant's live events from now on; filter by `tenant_id`.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.live.subscribe()
    }

    /// After [`Db::subscribe`]: waits (at most `timeout`) until events arrive (on
    /// PostgreSQL, until LISTEN is in place). False on timeout.
    pub async fn live_ready(&self, timeout: Duration) -> bool {
        self.live.listening(timeout).await
    }

    /// Recent live events of a tenant after `last_event_id`, for a client resuming.
    pub fn live_since(&self, tenant_id: &str, last_event_id: &str) -> Vec<LiveEvent> {
        self.live.since(tenant_id, last_event_id)
    }

    /// The pool for read-only statements.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Applies pending migrations; safe to run from several replicas at once on
    /// PostgreSQL (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.write).await,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.write).await,
        }
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.read).await.is_ok()
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// How often the WAL is checkpointed into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Copies the WAL into the database file from a reader connection, beside the
/// writer: left to SQLite, a checkpoint (copying and syncing megabytes) runs inside
/// whichever commit crosses the threshold, and every writer waits for it. The
/// threshold (20 000 pages) stays as a safety net. Ends when the pool is closed.
async fn checkpoints(read: AnyPool) {
    while !read.is_closed() {
        tokio::time::sleep(CHECKPOINT_EVERY).await;
        if let Err(e) = read.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            if !read.is_closed() {
                tracing::debug!(error = %e, "WAL checkpoint skipped");
            }
        }
    }
}

pub fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else {
        None
    }
}

/// The file behind a `sqlite:` URL, if it names one.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

fn sqlite_url_with_create(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Whether an error is a unique-constraint violation (both backends).
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.kind() == sqlx::error::ErrorKind::UniqueViolation
                || db.code().as_deref() == Some("23505")
                || db.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_read_from_urls() {
        assert_eq!(
            sqlite_path("sqlite://passhook.db"),
            Some("passhook.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc"),
            Some("/tmp/x.db".into())
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(backend_of("postgres://u@h/db"), Some(Backend::Postgres));
        assert_eq!(backend_of("mysql://x"), None);
    }
}
