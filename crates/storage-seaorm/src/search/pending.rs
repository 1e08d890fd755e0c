//! SQLite's search index takes messages after their commit: the insert trigger only
//! notes each new message in `message_search_pending`
//! (`m20261206_000002_defer_sqlite_search_indexing`), and [`index_pending`] moves
//! what is noted into `message_search`, many messages to a statement. FTS5 writes a
//! segment per statement and merges segments as they pile up, so a few large
//! batches cost it far less than a statement per commit did.
//!
//! Two callers: the group commit's background task while messages come (with the
//! WAL checkpoint, `group_commit`), which keeps the notes few, and every search
//! before it reads, which is what makes a search find every message committed
//! before it began.

use confab_domain::error::RepoError;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};

use crate::connection::begin_write;
use crate::error::repo_error;

/// Notes taken by one transaction at most: bounds how long it holds the write lock,
/// which appends wait for.
const NOTES_PER_TRANSACTION: i64 = 4096;

/// Indexes every message noted when it is called, in transactions of at most
/// [`NOTES_PER_TRANSACTION`] notes; returns how many notes it took. Notes made
/// meanwhile may be left for the next call.
pub(crate) async fn index_pending(db: &DatabaseConnection) -> Result<u64, RepoError> {
    // A look without the write lock first: after a background pass there is
    // mostly nothing noted, and a search then takes no lock at all.
    let Some(last) = newest_note(db).await? else {
        return Ok(0);
    };
    let mut taken = 0;
    loop {
        let txn = begin_write(db).await?;
        // The same notes for both statements: the write lock keeps others out.
        let batch = "SELECT note FROM message_search_pending WHERE note <= ? \
                     ORDER BY note LIMIT ?";
        let values = || -> Vec<Value> { vec![last.into(), NOTES_PER_TRANSACTION.into()] };
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            format!(
                "INSERT INTO message_search (rowid, content, message_id) \
                 SELECT m.rowid, m.content, m.id FROM message_search_pending p \
                 JOIN message_history m ON m.id = p.message_id \
                 WHERE p.note IN ({batch}) ORDER BY p.note"
            ),
            values(),
        ))
        .await
        .map_err(repo_error)?;
        let deleted = txn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Sqlite,
                format!("DELETE FROM message_search_pending WHERE note IN ({batch})"),
                values(),
            ))
            .await
            .map_err(repo_error)?
            .rows_affected();
        txn.commit().await.map_err(repo_error)?;
        taken += deleted;
        if deleted < NOTES_PER_TRANSACTION.unsigned_abs() {
            return Ok(taken);
        }
    }
}

/// The newest note, `None` when nothing is noted.
async fn newest_note(db: &DatabaseConnection) -> Result<Option<i64>, RepoError> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "SELECT max(note) FROM message_search_pending",
        ))
        .await
        .map_err(repo_error)?;
    match row {
        Some(row) => row.try_get_by_index(0).map_err(repo_error),
        None => Ok(None),
    }
}
