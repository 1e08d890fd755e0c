//! PostgreSQL's side of the group commit: a batch of appends, at most one per
//! conversation, in one statement, which is its own transaction: one round trip, one
//! snapshot and one WAL flush for the whole batch.
//!
//! The batch travels as one typed array per column, read back as rows by `unnest`, so
//! the text of the statement is the same whatever the batch's size and is prepared
//! once per connection. The statement is the lone append's (the advance, then
//! [`INSERT_ADVANCED_SQL`]) with the parameters read from the batch's rows:
//!
//! 1. `locked` takes the conversations' row locks in the order of their ids, before
//!    anything else (it runs whole, as the `UPDATE`'s one-time filter), so two
//!    batches (of this instance's writers or of another instance's) that share
//!    conversations wait for each other instead of deadlocking; it reads each
//!    conversation as it then stands;
//! 2. `moved` moves each conversation on, with the same reply guard as a lone
//!    append, and for an own append (`owner` set) only while `locked` shows the
//!    conversation as the owner's and active;
//! 3. the `INSERT` stores the message of each conversation that moved, with the seq
//!    and time it now holds, and the statement returns each with its conversation
//!    as `locked` read it.
//!
//! Unlike SQLite's advance, the statement does not look for an earlier message with
//! the same `client_message_id`: the unique index on `(conversation_id,
//! client_message_id)` refuses the repeat, and the whole statement with it. A lookup
//! of its own is planned once per connection, and a plan made while `message_history`
//! is nearly empty reads the table instead of that index: an append would then read
//! every stored message until the table's first `ANALYZE`. So a statement that fails
//! (a retry of a message stored before, two appends racing with one
//! `client_message_id` across instances, a duplicate message id) is rolled back whole,
//! and the caller stores its appends one by one, where a repeat is told apart.
//!
//! An append whose conversation did not move comes back without a row and is sorted
//! out by the caller.

use std::collections::HashMap;
use std::sync::LazyLock;

use confab_domain::error::RepoError;
use confab_domain::message::Seq;
use confab_domain::user::UserId;
use sea_orm::QueryResult;
use sea_orm::sqlx::postgres::PgConnection;
use sea_orm::sqlx::{self, Row as _};
use uuid::Uuid;

use super::{Append, Committed};
use crate::append::{
    ADVANCE_SET_SQL, Advance, BEFORE, Before, INSERT_ADVANCED_SQL, PARAMETERS, REPLY_PENDING_SQL,
    advanced, before_columns, conversation_before,
};
use crate::error::{repo_error, sqlx_error};
use crate::rows::message_row;

/// The columns of a batch row, in the order of [`crate::append::parameters`]: the
/// `#n#` of the append SQL is the column `n - 1` here, and the statement's parameter
/// `$n` its array.
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
    ("owner", "text"),
];

/// The parameter that holds the batch's conversations (`#5#`).
const CONVERSATIONS: usize = 5;

/// The batch statement; its parameters are the arrays of [`COLUMNS`].
static BATCH_SQL: LazyLock<String> = LazyLock::new(batch_sql);

fn batch_sql() -> String {
    // The append SQL with each `#n#` naming the column of `row`. The conversation's
    // own columns (`last_seq`, `handoff`, `id` …) stay unqualified: no column of the
    // batch shares their names.
    let columns_of = |row: &str, template: &str| {
        let mut sql = template.to_owned();
        for (index, (name, _)) in COLUMNS.iter().enumerate().rev() {
            sql = sql.replace(&format!("#{}#", index + 1), &format!("{row}.{name}"));
        }
        sql
    };
    let arrays = COLUMNS
        .iter()
        .enumerate()
        .map(|(index, (_, kind))| format!("${}::{kind}[]", index + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let names = COLUMNS
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ");
    // The count of `locked` is an uncorrelated subquery in a condition that reads no
    // row: PostgreSQL evaluates it once, whole, before the `UPDATE` reads a row.
    // `locked` holds each conversation as the batch found it, once locked: an own
    // append moves it only while it is the owner's and active, and returns it.
    let advance = columns_of(
        "batch",
        &format!(
            "{ADVANCE_SET_SQL} FROM unnest({arrays}) AS batch({names}) \
             JOIN locked ON locked.{BEFORE}id = batch.conversation \
             WHERE id = batch.conversation AND (SELECT count(*) FROM locked) >= 0 \
             AND {REPLY_PENDING_SQL} AND (batch.owner IS NULL \
             OR (locked.{BEFORE}user_id = batch.owner AND locked.{BEFORE}status = 'active'))"
        ),
    );
    let insert = columns_of("moved", INSERT_ADVANCED_SQL);
    let before = before_columns("moved", Before::Read);
    format!(
        "WITH locked AS (SELECT {} FROM conversations \
         WHERE id = ANY(${CONVERSATIONS}::uuid[]) ORDER BY id FOR NO KEY UPDATE), \
         moved AS ({advance} RETURNING conversations.id, conversations.last_seq, \
         conversations.last_activity_ms, batch.*, locked.*), \
         inserted AS ({insert}moved RETURNING id, seq, timestamp_ms) \
         SELECT inserted.id, inserted.seq, inserted.timestamp_ms, {before} \
         FROM inserted JOIN moved ON moved.message_id = inserted.id",
        before_columns("conversations", Before::Name)
    )
}

/// The batch's rows, one array per column of [`COLUMNS`].
#[derive(Default)]
struct Arrays {
    at_ms: Vec<i64>,
    preview: Vec<String>,
    from_user: Vec<bool>,
    answers: Vec<Option<i64>>,
    conversation: Vec<Uuid>,
    client_message_id: Vec<Option<String>>,
    message_id: Vec<Uuid>,
    sender: Vec<String>,
    sender_id: Vec<String>,
    content: Vec<String>,
    attachments: Vec<String>,
    suggestions: Vec<String>,
    reply_to: Vec<Option<Uuid>>,
    metadata: Vec<String>,
    owner: Vec<Option<String>>,
}

impl Arrays {
    fn of(batch: &[Append<'_>]) -> Result<Self, RepoError> {
        let mut arrays = Self::default();
        for &Append {
            message: new,
            owner,
        } in batch
        {
            // The seq is a placeholder: the statement takes it from the conversation.
            let row = message_row(new, Seq::ZERO, new.timestamp)?;
            let advance = Advance::of(new)?;
            arrays.at_ms.push(advance.at_ms);
            arrays.preview.push(advance.preview);
            arrays.from_user.push(advance.from_user);
            arrays.answers.push(advance.answers);
            arrays.conversation.push(row.conversation_id);
            arrays.client_message_id.push(row.client_message_id);
            arrays.message_id.push(row.id);
            arrays.sender.push(row.sender);
            arrays.sender_id.push(row.sender_id);
            arrays.content.push(row.content);
            arrays.attachments.push(row.attachments);
            arrays.suggestions.push(row.suggestions);
            arrays.reply_to.push(row.reply_to);
            arrays.metadata.push(row.metadata);
            arrays.owner.push(owner.map(UserId::to_string));
        }
        Ok(arrays)
    }
}

/// Stores `batch` (at most one append per conversation) in one statement; `None` for
/// each append whose conversation did not move. An own append comes back with its
/// conversation as it found it. The outer error is the statement's, which stored
/// nothing; an inner one is an append's whose returned row could not be read, once
/// stored: it is that append's caller's alone, and the batch is not stored again.
pub(super) async fn commit_batch(
    connection: &mut PgConnection,
    batch: &[Append<'_>],
) -> Result<Vec<Option<Result<Committed, RepoError>>>, RepoError> {
    let arrays = Arrays::of(batch)?;
    // Bound in the order of `COLUMNS`, through sqlx itself: SeaORM's values bind an
    // array only when no element is NULL.
    let returned = sqlx::query(BATCH_SQL.as_str())
        .bind(arrays.at_ms)
        .bind(arrays.preview)
        .bind(arrays.from_user)
        .bind(arrays.answers)
        .bind(arrays.conversation)
        .bind(arrays.client_message_id)
        .bind(arrays.message_id)
        .bind(arrays.sender)
        .bind(arrays.sender_id)
        .bind(arrays.content)
        .bind(arrays.attachments)
        .bind(arrays.suggestions)
        .bind(arrays.reply_to)
        .bind(arrays.metadata)
        .bind(arrays.owner)
        .fetch_all(connection)
        .await
        .map_err(sqlx_error)?;
    let mut stored: HashMap<Uuid, QueryResult> = HashMap::with_capacity(returned.len());
    for row in returned {
        // The first column is the message's id, a uuid: only a statement of another
        // shape would fail here, and then every row would.
        let id: Uuid = row.try_get(0).map_err(sqlx_error)?;
        stored.insert(id, QueryResult::from(row));
    }
    Ok(batch
        .iter()
        .map(|append| {
            let row = stored.remove(&append.message.id.as_uuid())?;
            Some(committed(append, &row))
        })
        .collect())
}

/// A stored append from its row of the batch's result.
fn committed(append: &Append<'_>, row: &QueryResult) -> Result<Committed, RepoError> {
    let seq: i64 = row.try_get_by_index(1).map_err(repo_error)?;
    let timestamp_ms: i64 = row.try_get_by_index(2).map_err(repo_error)?;
    let (seq, timestamp) = advanced(seq, timestamp_ms)?;
    let before = match append.owner {
        Some(_) => Some(conversation_before(row)?),
        None => None,
    };
    Ok(Committed {
        message: append.message.stored(seq, timestamp),
        before,
    })
}
