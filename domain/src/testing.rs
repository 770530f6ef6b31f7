//! Fresh databases for tests: a SQLite file always, and a new PostgreSQL database
//! when `TEST_DATABASE_URL` points at a server where we may create databases.

use crate::db::{Backend, Db};

/// A migrated, empty database that lives as long as this value.
pub struct TestDb {
    pub db: Db,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let db = Db::connect(&url).await.expect("sqlite connects");
        db.migrate().await.expect("sqlite migrates");
        TestDb {
            db,
            url,
            _dir: Some(dir),
        }
    }

    /// A new database on the server of `TEST_DATABASE_URL`, or `None` when unset.
    /// With `CI` set, an unset `TEST_DATABASE_URL` is a failure: CI never passes by
    /// skipping PostgreSQL.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = postgres_url()?;
        let admin = Db::connect(&admin_url)
            .await
            .expect("TEST_DATABASE_URL connects");
        let name = crate::ids::new_id("t");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin.writer())
            .await
            .expect("create test database");
        admin.close().await;
        let url = with_database(&admin_url, &name);
        let db = Db::connect(&url).await.expect("postgres connects");
        db.migrate().await.expect("postgres migrates");
        Some(TestDb {
            db,
            url,
            _dir: None,
        })
    }

    /// A second handle on an existing (already migrated) database, as a replica has.
    pub async fn attach(url: &str) -> TestDb {
        let db = Db::connect(url).await.expect("database connects");
        TestDb {
            db,
            url: url.to_string(),
            _dir: None,
        }
    }

    /// Every backend this run can test: SQLite, then PostgreSQL when configured.
    pub async fn all() -> Vec<TestDb> {
        let mut dbs = vec![TestDb::sqlite().await];
        dbs.extend(TestDb::postgres().await);
        dbs
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// A domain handle on this database with a fresh master key (needs a runtime).
    pub fn core(&self) -> crate::Core {
        crate::Core::new(self.db.clone(), crate::crypto::MasterKey::generate())
    }
}

/// `TEST_DATABASE_URL`, which CI (`CI` set) must have.
pub fn postgres_url() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL").ok();
    if url.is_none() && std::env::var_os("CI").is_some() {
        panic!("CI is set but TEST_DATABASE_URL is not: PostgreSQL tests may not be skipped");
    }
    url
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::with_database(
                "postgres://u:p@127.0.0.1:5433/postgres?sslmode=disable",
                "t_1"
            ),
            "postgres://u:p@127.0.0.1:5433/t_1?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://h:1", "x"),
            "postgres://h:1/x"
        );
    }
}
