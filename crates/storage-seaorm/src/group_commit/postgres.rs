//! PostgreSQL's side of the group commit: a batch of appends, at most one per
//! conversation, in one statement, which is its own transaction: one round trip, one
//! snapshot and one WAL flush for the whole batch.
//!
//! The batch travels as one JSON parameter read by `jsonb_to_recordset`, so the text
//! of the statement is the same whatever the batch's size and is prepared once per
//! connection. The statement is the lone append's (`ADVANCE_SQL`, then
//! [`INSERT_ADVANCED_SQL`]) with the parameters read from the batch's rows:
//!
//! 1. `fresh` leaves out the appends whose `client_message_id` was stored before;
//! 2. `locked` takes the conversations' row locks in the order of their ids, so two
//!    batches (of this instance's writers or of another instance's) that share
//!    conversations wait for each other instead of deadlocking;
//! 3. `moved` moves each conversation on, with the same guards as a lone append;
//! 4. the `INSERT` stores the message of each conversation that moved, with the seq
//!    and time it now holds.
//!
//! An append whose conversation did not move comes back without a row and is sorted
//! out by the caller. A statement that fails (two appends racing with one
//! `client_message_id` across instances, a duplicate message id) is rolled back whole,
//! and the caller retries its appends one by one.

use std::collections::HashMap;
use std::sync::LazyLock;

use confab_domain::error::RepoError;
use confab_domain::message::{Message, NewMessage};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, Value};
use serde_json::json;
use uuid::Uuid;

use crate::append::{
    ADVANCE_SET_SQL, INSERT_ADVANCED_SQL, PARAMETERS, REPLY_PENDING_SQL, advanced, parameters,
};
use crate::error::{RowError, repo_error};

/// The columns of a batch row, in the order of [`parameters`]: the `#n#` of the append
/// SQL is the column `n - 1` here.
const COLUMNS: [(&str, &str); PARAMETERS] = [
    ("at_ms", "bigint"),
    ("preview", "text"),
    ("from_user", "boolean"),
    ("answers", "bigint"),
    ("conversation", "uuid"),
    ("client_message_id", "text"),
    ("message_id", "uuid"),
    ("sender", "text"),
    ("sender_id", "text"),
    ("content", "text"),
    ("attachments", "text"),
    ("suggestions", "text"),
    ("reply_to", "uuid"),
    ("metadata", "text"),
];

/// The batch statement; its one parameter is the JSON array of the batch's rows.
static BATCH_SQL: LazyLock<String> = LazyLock::new(batch_sql);

fn batch_sql() -> String {
    let record = COLUMNS
        .iter()
        .map(|(name, kind)| format!("{name} {kind}"))
        .collect::<Vec<_>>()
        .join(", ");
    // The append SQL with each `#n#` naming the batch row's column instead of a
    // parameter. The advance's own columns (`last_seq`, `handoff`, `id` …) stay
    // unqualified: no column of `batch` or `locked` shares their names.
    let from_batch = |template: &str| {
        let mut sql = template.to_owned();
        for (index, (name, _)) in COLUMNS.iter().enumerate().rev() {
            sql = sql.replace(&format!("#{}#", index + 1), &format!("batch.{name}"));
        }
        sql
    };
    let advance = from_batch(&format!(
        "{ADVANCE_SET_SQL} FROM fresh AS batch JOIN locked ON locked.locked_id = batch.conversation \
         WHERE id = batch.conversation AND {REPLY_PENDING_SQL}"
    ));
    let insert = from_batch(INSERT_ADVANCED_SQL);
    // `fresh` leaves out the appends whose `client_message_id` was stored before: a
    // lateral lookup per row, an index probe each, where the lone append's
    // `NOT EXISTS` would be planned for a batch as a hash of every stored client id.
    format!(
        "WITH batch AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS batch({record})), \
         fresh AS (SELECT batch.* FROM batch LEFT JOIN LATERAL (SELECT true AS seen \
         FROM message_history WHERE conversation_id = batch.conversation \
         AND client_message_id = batch.client_message_id LIMIT 1) earlier ON true \
         WHERE earlier.seen IS NULL), \
         locked AS (SELECT id AS locked_id FROM conversations \
         WHERE id IN (SELECT conversation FROM batch) ORDER BY id FOR NO KEY UPDATE), \
         moved AS ({advance} RETURNING batch.message_id, conversations.id, \
         conversations.last_seq, conversations.last_activity_ms) \
         {insert}moved JOIN batch USING (message_id) RETURNING id, seq, timestamp_ms"
    )
}

/// Stores `batch` (at most one append per conversation) in one statement; `None` for
/// each append whose conversation did not move.
pub(super) async fn commit_batch(
    db: &DatabaseConnection,
    batch: &[&NewMessage],
) -> Result<Vec<Option<Message>>, RepoError> {
    let mut rows = Vec::with_capacity(batch.len());
    for new in batch {
        let row: serde_json::Map<String, serde_json::Value> = COLUMNS
            .iter()
            .zip(parameters(new)?)
            .map(|((name, _), value)| Ok(((*name).to_owned(), json_of(value)?)))
            .collect::<Result<_, RepoError>>()?;
        rows.push(serde_json::Value::Object(row));
    }
    let statement = Statement::from_sql_and_values(
        DbBackend::Postgres,
        BATCH_SQL.as_str(),
        [Value::from(serde_json::Value::Array(rows).to_string())],
    );
    let returned = db.query_all_raw(statement).await.map_err(repo_error)?;
    let mut stored: HashMap<Uuid, (i64, i64)> = HashMap::with_capacity(returned.len());
    for row in returned {
        let id: Uuid = row.try_get_by_index(0).map_err(repo_error)?;
        let seq: i64 = row.try_get_by_index(1).map_err(repo_error)?;
        let timestamp_ms: i64 = row.try_get_by_index(2).map_err(repo_error)?;
        stored.insert(id, (seq, timestamp_ms));
    }
    batch
        .iter()
        .map(|new| {
            let Some((seq, timestamp_ms)) = stored.remove(&new.id.as_uuid()) else {
                return Ok(None);
            };
            let (seq, timestamp) = advanced(seq, timestamp_ms)?;
            Ok(Some(new.stored(seq, timestamp)))
        })
        .collect()
}

/// A parameter of [`parameters`] as the batch's JSON carries it.
fn json_of(value: Value) -> Result<serde_json::Value, RepoError> {
    Ok(match value {
        Value::BigInt(value) => json!(value),
        Value::Bool(value) => json!(value),
        Value::String(value) => json!(value),
        Value::Uuid(value) => json!(value),
        other => {
            return Err(RowError::new(
                "message_history",
                format!("no JSON form for {other:?} in a group commit"),
            )
            .into());
        }
    })
}
