//! Throwaway migrated databases for tests (feature `test-util`): a SQLite file in a
//! temporary directory, or a PostgreSQL database of its own on the server that
//! `CONFAB_TEST_POSTGRES_URL` names. Each test gets a fresh database, so tests run in
//! parallel, and nothing is left behind.
//!
//! ```no_run
//! # async fn example() -> Result<(), confab_domain::error::RepoError> {
//! use confab_storage_seaorm::testing::{postgres_temp, postgres_url, sqlite_temp};
//!
//! let sqlite = sqlite_temp().await?;
//! let store = sqlite.store();
//! # drop(store);
//! if let Some(admin_url) = postgres_url() {
//!     let postgres = postgres_temp(&admin_url).await?;
//!     // … use postgres.store() or postgres.url() …
//!     postgres.drop_database().await?;
//! }
//! # Ok(())
//! # }
//! ```

use confab_domain::error::RepoError;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tempfile::TempDir;

use crate::error::repo_error;
use crate::{SeaOrmStore, connect, migrate};

/// The environment variable naming a PostgreSQL server for tests, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`; its database is used only to create
/// and drop the test databases.
pub const POSTGRES_URL_ENV: &str = "CONFAB_TEST_POSTGRES_URL";

/// The PostgreSQL server for tests, when [`POSTGRES_URL_ENV`] names one.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_ENV)
        .ok()
        .filter(|url| !url.trim().is_empty())
}

/// A migrated SQLite database in a temporary directory, removed when this is dropped.
#[derive(Debug)]
pub struct SqliteTemp {
    url: String,
    db: DatabaseConnection,
    // Dropped last: the directory outlives the pool that has the file open.
    _dir: TempDir,
}

/// Creates a SQLite database file in a new temporary directory, opened with
/// [`connect`] and migrated with the real migrations.
///
/// # Errors
/// When the directory cannot be made or the database cannot be opened or migrated.
pub async fn sqlite_temp() -> Result<SqliteTemp, RepoError> {
    let dir = tempfile::Builder::new()
        .prefix("confab-test-")
        .tempdir()
        .map_err(|e| RepoError::Unavailable(Box::new(e)))?;
    let path = dir.path().join("confab.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let db = connect(&url).await?;
    migrate(&db).await?;
    Ok(SqliteTemp { url, db, _dir: dir })
}

impl SqliteTemp {
    /// The database's URL, for code under test that connects by itself.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The pool.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A store on the pool.
    pub fn store(&self) -> SeaOrmStore {
        SeaOrmStore::new(self.db.clone())
    }
}

/// A migrated PostgreSQL database created for one test. Drop it with
/// [`PostgresTemp::drop_database`]; if the value is dropped without that (a test
/// panicked), `Drop` drops the database on a thread of its own.
#[derive(Debug)]
pub struct PostgresTemp {
    admin_url: String,
    name: String,
    url: String,
    db: DatabaseConnection,
    dropped: bool,
}

/// Creates the database `confab_test_<uuid>` on the server of `admin_url`, opens it
/// with [`connect`] and migrates it with the real migrations.
///
/// # Errors
/// When the server cannot be reached, or the database cannot be created, opened or
/// migrated.
pub async fn postgres_temp(admin_url: &str) -> Result<PostgresTemp, RepoError> {
    let name = format!("confab_test_{}", uuid::Uuid::now_v7().simple());
    let url = database_url(admin_url, &name)?;
    let admin = admin_connection(admin_url).await?;
    let created = admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(repo_error);
    // Closing is best effort: the statement's outcome is what matters.
    let _ = admin.close().await;
    created?;
    let mut temp = PostgresTemp {
        admin_url: admin_url.to_owned(),
        name,
        url,
        // Replaced below once the database exists; a lazy pool opens nothing.
        db: DatabaseConnection::default(),
        dropped: false,
    };
    temp.db = connect(&temp.url).await?;
    migrate(&temp.db).await?;
    Ok(temp)
}

impl PostgresTemp {
    /// The database's URL, for code under test that connects by itself.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pool.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// A store on the pool.
    pub fn store(&self) -> SeaOrmStore {
        SeaOrmStore::new(self.db.clone())
    }

    /// Drops the database, ending every connection still open to it.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses.
    pub async fn drop_database(mut self) -> Result<(), RepoError> {
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for PostgresTemp {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // `Drop` cannot await, and blocking on the caller's runtime could deadlock it,
        // so the database is dropped on a thread with a runtime of its own.
        let outcome = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| RepoError::Internal(Box::new(e)))?;
            runtime.block_on(drop_database(&admin_url, &name))
        })
        .join();
        // A failure to clean up is reported where cargo shows a failed test's output;
        // panicking in `Drop` could abort a test that is already unwinding.
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop test database {}: {error:?}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}

async fn admin_connection(admin_url: &str) -> Result<DatabaseConnection, RepoError> {
    let mut options = ConnectOptions::new(admin_url);
    options.max_connections(1).sqlx_logging(false);
    Database::connect(options).await.map_err(repo_error)
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), RepoError> {
    let admin = admin_connection(admin_url).await?;
    // `WITH (FORCE)` ends the sessions of pools that tests still hold.
    let dropped = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .map(|_| ())
        .map_err(repo_error);
    let _ = admin.close().await;
    dropped
}

/// `url` with its database (the path) replaced by `name`, keeping any query string.
fn database_url(url: &str, name: &str) -> Result<String, RepoError> {
    let invalid = || RepoError::Internal(format!("not a database URL: {url:?}").into());
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").ok_or_else(invalid)? + 3;
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    Ok(match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::database_url;

    #[test]
    fn the_database_of_a_url_is_replaced_and_the_rest_kept() {
        let cases = [
            ("postgres://u@h:5432/postgres", "postgres://u@h:5432/db"),
            ("postgres://u@h:5432", "postgres://u@h:5432/db"),
            (
                "postgres://u:p@h/x?sslmode=disable",
                "postgres://u:p@h/db?sslmode=disable",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(database_url(url, "db").unwrap(), expected);
        }
        assert!(database_url("nonsense", "db").is_err());
    }
}
