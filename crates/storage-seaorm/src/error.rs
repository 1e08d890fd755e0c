//! The one place where database errors become [`RepoError`]s, and the error for rows
//! that do not make a valid domain value.

use confab_domain::error::RepoError;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// Maps a database error to what the domain can act on.
///
/// Unique and foreign-key violations are recognised through [`DbErr::sql_err`], which
/// classifies them alike on SQLite and PostgreSQL. Failures a retry may cure (no
/// connection, pool exhausted, database busy, serialisation failure, a full disk)
/// are `Unavailable`; everything else is `Internal`.
pub(crate) fn repo_error(error: DbErr) -> RepoError {
    let violation = error.sql_err();
    if matches!(
        violation,
        Some(SqlErr::UniqueConstraintViolation(_) | SqlErr::ForeignKeyConstraintViolation(_))
    ) {
        RepoError::Conflict
    } else if is_transient(&error) {
        RepoError::Unavailable(Box::new(error))
    } else if matches!(error, DbErr::RecordNotFound(_)) {
        RepoError::NotFound
    } else {
        RepoError::Internal(Box::new(error))
    }
}

/// [`repo_error`] for an error of a query run through sqlx directly.
pub(crate) fn sqlx_error(error: sea_orm::sqlx::Error) -> RepoError {
    repo_error(DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(
        error,
    ))))
}

fn is_transient(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(sqlx_error))
        | DbErr::Query(RuntimeErr::SqlxError(sqlx_error)) => is_transient_sqlx(sqlx_error),
        _ => false,
    }
}

fn is_transient_sqlx(error: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error as SqlxError;
    match error {
        SqlxError::Io(_)
        | SqlxError::Tls(_)
        | SqlxError::PoolTimedOut
        | SqlxError::PoolClosed
        | SqlxError::WorkerCrashed => true,
        SqlxError::Database(database) => {
            let code = database.code();
            let code = code.as_deref().unwrap_or_default();
            if database
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some()
            {
                code.parse::<i32>().is_ok_and(is_transient_sqlite)
            } else {
                // SQLSTATE: connection exceptions (08…), insufficient resources (53…,
                // a full disk among them: 53100), operator intervention such as a
                // restarting server (57P…), serialisation failures and deadlocks
                // (40001, 40P01).
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57P")
                    || code == "40001"
                    || code == "40P01"
            }
        }
        _ => false,
    }
}

/// Whether a SQLite error, by its extended result code, is one a retry may cure.
fn is_transient_sqlite(extended_code: i32) -> bool {
    // The primary code is the low byte. SQLITE_BUSY (5) and SQLITE_LOCKED (6): another
    // writer held the database for longer than the busy timeout. SQLITE_FULL (13): the
    // disk is full; SQLite rolled the statement back, and the same write succeeds once
    // space is freed.
    matches!(extended_code & 0xff, 5 | 6 | 13)
}

/// [`repo_error`] for an error of SQLite driven directly (rusqlite: the group
/// commit's writer), mapped as sqlx's errors of the same codes are.
pub(crate) fn rusqlite_error(error: rusqlite::Error) -> RepoError {
    let Some(code) = error.sqlite_error().map(|e| e.extended_code) else {
        return RepoError::Internal(Box::new(error));
    };
    // SQLITE_CONSTRAINT_FOREIGNKEY (787), _PRIMARYKEY (1555), _UNIQUE (2067).
    if matches!(code, 787 | 1555 | 2067) {
        RepoError::Conflict
    } else if is_transient_sqlite(code) {
        RepoError::Unavailable(Box::new(error))
    } else {
        RepoError::Internal(Box::new(error))
    }
}

/// A stored row that does not make a valid domain value: corrupt data or a schema the
/// code does not expect. Reported as [`RepoError::Internal`], never a panic.
#[derive(Debug, thiserror::Error)]
#[error("invalid {table} row: {problem}")]
pub(crate) struct RowError {
    table: &'static str,
    problem: String,
}

impl RowError {
    /// A row of `table` with `problem`.
    pub(crate) fn new(table: &'static str, problem: impl Into<String>) -> Self {
        Self {
            table,
            problem: problem.into(),
        }
    }
}

impl From<RowError> for RepoError {
    fn from(error: RowError) -> Self {
        RepoError::Internal(Box::new(error))
    }
}
