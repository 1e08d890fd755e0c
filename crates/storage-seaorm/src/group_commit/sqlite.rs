//! SQLite's side of the group commit: a batch in one `BEGIN IMMEDIATE` transaction,
//! sent as a few multi-statement queries.

use confab_domain::error::RepoError;
use confab_domain::message::{Message, NewMessage};
use sea_orm::sqlx::query::Query;
use sea_orm::sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnection};
use sea_orm::sqlx::{self, Row};
use sea_orm::{DatabaseConnection, DbBackend, Value};

use crate::append::{ADVANCE_SQL, INSERT_ADVANCED_SQL, advanced, parameters};
use crate::error::{RowError, sqlx_error};
use crate::sql::render;

/// Runs every append of the batch in one write transaction and commits it.
pub(super) async fn commit_batch(
    db: &DatabaseConnection,
    batch: &[&NewMessage],
) -> Result<Vec<Option<Message>>, RepoError> {
    // A connection of the pool's own, held for the whole transaction: `BEGIN` and
    // `COMMIT` travel inside the chunks' queries (one round trip for a batch of up
    // to 32), so a failure half way may leave the transaction open on it. Such a
    // connection is closed rather than returned, which rolls the transaction
    // back; failures are rare (the appends are then retried one by one).
    let mut connection = db
        .get_sqlite_connection_pool()
        .acquire()
        .await
        .map_err(sqlx_error)?;
    let applied = apply(&mut connection, batch).await;
    if applied.is_err() {
        let _ = connection.close().await;
    }
    applied
}

/// Checkpoints the WAL without waiting for readers or the writer (`PASSIVE`): it copies
/// back what it can, and what a reader still needs stays for the next checkpoint.
pub(super) async fn checkpoint(db: &DatabaseConnection) -> Result<(), RepoError> {
    let mut connection = db
        .get_sqlite_connection_pool()
        .acquire()
        .await
        .map_err(sqlx_error)?;
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .execute(&mut *connection)
        .await
        .map_err(sqlx_error)?;
    Ok(())
}

/// Chunk sizes of a batch, largest first. Each chunk is one multi-statement query, and
/// keeping to a few sizes keeps to a few SQL texts, each prepared once per connection.
const CHUNK_SIZES: [usize; 6] = [32, 16, 8, 4, 2, 1];

/// Runs the batch as a few multi-statement queries: sqlx runs SQLite on a thread of
/// its own per connection, and each query sent there costs two thread hand-offs,
/// which cost more than the statements themselves (docs/benchmarks.md). Per append:
///
/// 1. the `UPDATE` of the conversation every append makes ([`ADVANCE_SQL`]),
///    `RETURNING` the append's index in its chunk with the new `last_seq` and
///    `last_activity_ms`;
/// 2. an `INSERT … SELECT` of the message that takes its seq and timestamp from the
///    row just updated, and inserts nothing when the update changed no row.
///
/// Every append has the same SQL whatever its sender, reply or client id: those are
/// parameters. An append whose index comes back was stored; the others (`None`: the
/// conversation is gone, the reply was stored before, or the `client_message_id` was
/// seen before) are sorted out after the commit.
async fn apply(
    connection: &mut SqliteConnection,
    batch: &[&NewMessage],
) -> Result<Vec<Option<Message>>, RepoError> {
    let mut returned: Vec<Option<(i64, i64)>> = vec![None; batch.len()];
    let mut offset = 0;
    while offset < batch.len() {
        let left = batch.len() - offset;
        let size = CHUNK_SIZES
            .into_iter()
            .find(|size| *size <= left)
            .unwrap_or(1);
        let chunk = &batch[offset..offset + size];
        let (sql, values) = chunk_statement(chunk, offset == 0, offset + size == batch.len())?;
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for value in values {
            query = bind(query, value)?;
        }
        let rows = query
            .fetch_all(&mut *connection)
            .await
            .map_err(sqlx_error)?;
        for row in rows {
            let index: i64 = row.try_get(0).map_err(sqlx_error)?;
            let last_seq: i64 = row.try_get(1).map_err(sqlx_error)?;
            let last_activity_ms: i64 = row.try_get(2).map_err(sqlx_error)?;
            let slot = usize::try_from(index)
                .ok()
                .filter(|index| *index < size)
                .and_then(|index| returned.get_mut(offset + index))
                .ok_or_else(|| RowError::new("conversations", "unknown batch index returned"))?;
            *slot = Some((last_seq, last_activity_ms));
        }
        offset += size;
    }
    batch
        .iter()
        .zip(returned)
        .map(|(new, returned)| {
            let Some((last_seq, last_activity_ms)) = returned else {
                return Ok(None);
            };
            let (seq, timestamp) = advanced(last_seq, last_activity_ms)?;
            Ok(Some(new.stored(seq, timestamp)))
        })
        .collect()
}

/// One query for the appends of `chunk`, beginning the transaction if it is the
/// batch's `first` chunk and committing it if it is the `last`. Its text depends on
/// those and the chunk's size alone.
///
fn chunk_statement(
    chunk: &[&NewMessage],
    first: bool,
    last: bool,
) -> Result<(String, Vec<Value>), RepoError> {
    let mut sql = String::new();
    if first {
        // The write lock at once: a transaction that read first and wrote later could
        // fail with `SQLITE_BUSY` without waiting for the busy timeout.
        sql.push_str("BEGIN IMMEDIATE;\n");
    }
    let mut values: Vec<Value> = Vec::new();
    for (index, new) in chunk.iter().enumerate() {
        let parameters = parameters(new)?;
        let statements = format!(
            "{ADVANCE_SQL} RETURNING {index}, last_seq, last_activity_ms;\n\
             {INSERT_ADVANCED_SQL}conversations WHERE id = #5# AND changes() = 1;\n"
        );
        render(
            &statements,
            &parameters,
            DbBackend::Sqlite,
            &mut sql,
            &mut values,
        )?;
    }
    if last {
        sql.push_str("COMMIT;\n");
    }
    Ok((sql, values))
}

/// Binds one value of [`parameters`] to `query`.
fn bind<'q>(
    query: Query<'q, Sqlite, SqliteArguments>,
    value: Value,
) -> Result<Query<'q, Sqlite, SqliteArguments>, RepoError> {
    Ok(match value {
        Value::BigInt(value) => query.bind(value),
        Value::Bool(value) => query.bind(value),
        Value::String(value) => query.bind(value),
        Value::Uuid(value) => query.bind(value),
        other => {
            return Err(RepoError::Internal(
                format!("no binding for {other:?} in a group commit").into(),
            ));
        }
    })
}
