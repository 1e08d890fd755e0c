//! Opening the database and bringing its schema up to date.

use std::path::{Path, PathBuf};
use std::time::Duration;

use confab_domain::error::RepoError;
use confab_migrations::{Migrator, MigratorTrait};
use rusqlite::OpenFlags;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, Statement, TransactionOptions, TransactionTrait,
};

use crate::error::repo_error;

/// How long a SQLite connection waits for another writer before giving up with
/// "database is locked". Writes are short, so this is only reached under overload.
pub(crate) const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a pooled PostgreSQL connection may sit idle before it is pinged on its
/// next use, rather than on every use.
pub(crate) const POOLED_IDLE_BEFORE_PING: Duration = Duration::from_secs(5);

/// How long a request waits for a pooled PostgreSQL connection. While the database is
/// away no connection comes free, and a client is better served by a 503 after a few
/// seconds than by sqlx's default of 30; under mere load a connection frees within
/// milliseconds.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The PostgreSQL advisory lock that serialises migrations: "confab" in ASCII.
const MIGRATION_LOCK_KEY: i64 = 0x636f_6e66_6162;

/// The WAL size, in pages, at which a pooled SQLite connection's commit checkpoints
/// it, after which the next write starts the WAL over from its beginning: 80 MB. The
/// appends go through the group commit's own connection, which never checkpoints by
/// itself (`open_sqlite_writer`): the group commit has the WAL checkpointed and
/// started over in the background, and under the heaviest load it then reaches what
/// 200 ms of commits write, up to 80 MB (docs/benchmarks-history.md, part eleven). Below that
/// a pooled commit (a conversation created, a lease taken) never does the checkpoint's
/// work inline; above it, which only writes through the pool alone reach (a retention
/// sweep with no messages coming), the commit that crosses it does.
pub(crate) const WAL_AUTOCHECKPOINT_PAGES: u32 = 20_000;

/// Pooled SQLite connections: everything but the appends and the reads of
/// `direct_reads`. WAL lets readers run beside the one writer, so a few connections
/// keep reads from queueing behind a write.
const SQLITE_POOL_SIZE: u32 = 8;

/// Opens a connection pool for a `sqlite:` or `postgres:` URL, e.g.
/// `sqlite://confab.db?mode=rwc` or `postgres://user@host/confab`.
///
/// Every pooled SQLite connection runs in WAL mode with `foreign_keys=ON`,
/// `synchronous=NORMAL` (durable across application crashes; WAL keeps the file
/// consistent across power loss) and a busy timeout. PostgreSQL URLs are used as given.
///
/// # Errors
/// `RepoError::Unavailable` when the database cannot be reached or the URL names no
/// supported backend.
pub async fn connect(url: &str) -> Result<DatabaseConnection, RepoError> {
    let mut options = ConnectOptions::new(url);
    // Statements are not logged one by one: they would drown the request logs, and
    // errors surface through `RepoError` anyway.
    options.sqlx_logging(false);
    if url.starts_with("sqlite:") {
        // A file cannot drop a connection the way a network server can, and a ping
        // before every statement doubled the hand-offs to sqlx's per-connection
        // SQLite thread, which dominate the cost of a statement (docs/benchmarks.md).
        options.test_before_acquire(false);
        // sqlx opens an in-memory URL as one shared-cache database: it vanishes when
        // its last connection closes, and its table locks fail at once instead of
        // waiting out the busy timeout. So such a pool keeps exactly one connection,
        // for ever.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        if in_memory {
            options
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        } else {
            options.max_connections(SQLITE_POOL_SIZE);
        }
        // A connection must never go back to the pool inside a transaction. When a
        // write fails with SQLITE_FULL (or SQLITE_IOERR, SQLITE_NOMEM), SQLite may
        // roll the transaction back by itself; sqlx's own ROLLBACK then fails, sqlx
        // still counts the connection as inside a transaction, and every later
        // transaction on it would nest inside one that is never committed: their
        // COMMITs would succeed, be acknowledged, and be lost (found by the disk-full
        // test). Such a connection runs its queued rollback on release, and is closed
        // if that does not end the transaction.
        options.map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_release(|connection, _| {
                Box::pin(async move {
                    use sea_orm::sqlx::Connection as _;
                    if !connection.is_in_transaction() {
                        return Ok(true);
                    }
                    connection.ping().await?;
                    Ok(!connection.is_in_transaction())
                })
            })
        });
        // `open_sqlite_writer` sets the same per-connection pragmas for the group
        // commit's own connection (but keeps its statement journals in memory and
        // leaves checkpoints to the group commit); a change here belongs there too.
        options.map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
        });
    }
    if !url.starts_with("sqlite:") {
        // A connection that served a statement moments ago is alive; one idle for
        // longer may have been cut by a server restart and is pinged before use.
        options.test_before_acquire_if_idle_for(POOLED_IDLE_BEFORE_PING);
        options.acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT);
    }
    Database::connect(options).await.map_err(repo_error)
}

/// The file of a SQLite pool's database, as SQLite opened it: the one that connections
/// of their own beside the pool (`direct_reads`, the group commit's writer) open too.
/// `None` for PostgreSQL, for an in-memory database (which lives inside the pool's one
/// connection, whatever name its URL gives), and when the pool cannot be asked.
pub(crate) async fn sqlite_file(db: &DatabaseConnection) -> Option<PathBuf> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    // The first row is the main database; its file is empty when it is in memory.
    let main = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA database_list",
        ))
        .await
        .ok()??;
    let file: String = main.try_get_by_index(2).ok()?;
    (!file.is_empty()).then(|| PathBuf::from(file))
}

/// A read-only connection to the pool's SQLite file that never waits for a lock (its
/// busy timeout is zero): for reads run where they are asked for (`direct_reads`).
pub(crate) fn open_sqlite_reader(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    open_beside_pool(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
}

/// The group commit's own connection to the pool's SQLite file, set up as the pool's
/// (`connect`), except that it never waits for a lock by itself (the writer waits off
/// the tokio worker instead).
///
/// Unlike the pool's connections it keeps statement journals in memory: one is kept
/// by each statement that may fail half way, as the batch's many-row inserts do (they
/// fire the search index's trigger and check a foreign key), and past 64 KiB SQLite
/// spilled it into a temporary file, a `write` system call per page: a sixth of the
/// group commit's time outside SQLite's B-trees (docs/benchmarks-history.md, part nine). A
/// batch's journal holds a few hundred KiB at most. The pool keeps SQLite's default,
/// where a conversation's deletion or a retention sweep may journal far more.
///
/// It never checkpoints by itself (`wal_autocheckpoint = 0`). At the pool's threshold
/// the commit that crossed it would copy back everything since the last background
/// checkpoint and wait for two `fsync`s, which set the p99 of REST sends (20 ms against
/// about 9 without; docs/benchmarks-history.md, parts ten and eleven). The group commit has the
/// WAL checkpointed in the background and started over between two batches instead
/// (`group_commit`).
pub(crate) fn open_sqlite_writer(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let writer = open_beside_pool(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    writer.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
         PRAGMA wal_autocheckpoint = 0; PRAGMA temp_store = MEMORY;",
    )?;
    Ok(writer)
}

/// A connection of its own to the pool's file: used by one thread at a time (no mutex
/// inside SQLite), and never waiting for a lock.
fn open_beside_pool(path: &Path, access: OpenFlags) -> rusqlite::Result<rusqlite::Connection> {
    let connection =
        rusqlite::Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    connection.busy_timeout(Duration::ZERO)?;
    Ok(connection)
}

/// Applies every pending migration of `confab_migrations`.
///
/// Instances that start together migrate one after the other: the whole run is one
/// write transaction (on PostgreSQL also holding an advisory lock), so that the later
/// ones wait and then find nothing left to do instead of failing on tables the first
/// one created.
///
/// # Errors
/// `RepoError::Unavailable` when the database cannot be reached, `RepoError::Internal`
/// when a migration fails.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), RepoError> {
    let txn = begin_write(db).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        // Released at commit or rollback. PostgreSQL has no table-free lock that
        // `BEGIN` alone would take, and the migrations table may not exist yet.
        txn.execute_unprepared(&format!(
            "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
        ))
        .await
        .map_err(repo_error)?;
    }
    Migrator::up(&txn, None).await.map_err(repo_error)?;
    txn.commit().await.map_err(repo_error)
}

/// Begins a transaction that will write. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a transaction that read first and wrote later could fail with
/// `SQLITE_BUSY` without waiting, because its snapshot may be stale. On PostgreSQL it
/// is a plain `BEGIN`.
pub(crate) async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, RepoError> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
    .map_err(repo_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_keeps_statement_journals_in_memory_and_never_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("writer.db");
        rusqlite::Connection::open(&path).unwrap();
        let writer = open_sqlite_writer(&path).unwrap();
        let pragma = |name: &str| -> i64 {
            writer
                .pragma_query_value(None, name, |row| row.get(0))
                .unwrap()
        };
        // 2 is MEMORY.
        assert_eq!(pragma("temp_store"), 2);
        assert_eq!(pragma("wal_autocheckpoint"), 0);
        assert_eq!(pragma("foreign_keys"), 1);
        // 1 is NORMAL.
        assert_eq!(pragma("synchronous"), 1);
    }
}
