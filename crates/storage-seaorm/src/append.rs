//! The append rule, written once for both ways a message is stored: alone in a
//! transaction of its own (PostgreSQL, and SQLite's fallback) and in a batch of the
//! SQLite group-commit writer (`group_commit`).
//!
//! An append first moves its conversation on in one guarded `UPDATE`
//! ([`ADVANCE_RETURNING_SQL`]), which takes the conversation's row lock (PostgreSQL)
//! or the write lock (SQLite) before anything is read: concurrent appends queue there
//! and each sees the seq its predecessor committed, so seqs stay gap-free. Only when
//! that `UPDATE` changed the row is the message inserted, with the seq and timestamp
//! the row now holds. An append that stored nothing is sorted out by
//! [`not_advanced`]: a duplicate `client_message_id` (on PostgreSQL refused by the
//! unique index, which rolls the statement back), a reply stored before, or a
//! missing conversation.

use std::sync::LazyLock;

use confab_domain::conversation::{Conversation, ConversationId, ConversationStatus, preview};
use confab_domain::error::RepoError;
use confab_domain::message::{Appended, ClientMessageId, Message, NewMessage, Sender, Seq};
use confab_domain::ports::OwnAppend;
use confab_domain::timestamp::Timestamp;
use confab_domain::user::UserId;
use sea_orm::sqlx::{self, postgres::PgConnection};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    FromQueryResult, IdenStatic, IntoActiveModel, Iterable, QueryFilter, QueryResult, Statement,
    Value, Values,
};
use sea_query_sqlx::SqlxValues;

use crate::connection::begin_write;
use crate::entity::{conversation, message};
use crate::error::{RowError, repo_error, sqlx_error};
use crate::rows::{message_row, millis, seq_value};
use crate::sql::Template;

/// The `SET` of the conversation's side of an append (the text before its `WHERE`),
/// with its parameters as `#n#` (numbers of [`parameters`]):
/// - `last_seq` and `message_count` up by one;
/// - `last_activity` to the message's time, never below the previous message's (SET
///   expressions read the row as it was, so `last_seq` and `last_activity_ms` there
///   are the previous message's);
/// - `last_message` to its preview;
/// - `last_user_seq` for a user message;
/// - `replied_seq` for a reply, and for a user message stored while people answer
///   (`handoff` other than `bot`): the bot must never answer that one.
macro_rules! advance_set_sql {
    () => {
        "UPDATE conversations SET last_seq = last_seq + 1, \
         message_count = message_count + 1, \
         last_activity_ms = CASE WHEN last_seq > 0 AND last_activity_ms > #1# \
         THEN last_activity_ms ELSE #1# END, \
         last_message = #2#, \
         last_user_seq = CASE WHEN #3# THEN last_seq + 1 ELSE last_user_seq END, \
         replied_seq = CASE WHEN #3# AND handoff <> 'bot' THEN last_seq + 1 \
         ELSE COALESCE(#4#, replied_seq) END"
    };
}

/// The guard of the conversation's side of an append that a batch keeps: a reply
/// moves the conversation only while the message it answers is still pending.
macro_rules! reply_pending_sql {
    () => {
        "(#4# IS NULL OR replied_seq < #4#)"
    };
}

/// The `SET` of an append's `UPDATE` of its conversation, as `advance_set_sql!` gives it.
pub(crate) const ADVANCE_SET_SQL: &str = advance_set_sql!();

/// The guard that a reply's answer is still pending, as `reply_pending_sql!` gives it.
pub(crate) const REPLY_PENDING_SQL: &str = reply_pending_sql!();

/// [`ADVANCE_SET_SQL`] for the conversation `#5#`, guarded by [`REPLY_PENDING_SQL`].
macro_rules! guarded_advance_sql {
    () => {
        concat!(
            advance_set_sql!(),
            " WHERE id = #5# AND ",
            reply_pending_sql!()
        )
    };
}

/// The conversation's side of an append: [`ADVANCE_SET_SQL`] for the conversation
/// `#5#`, guarded by [`REPLY_PENDING_SQL`] and by the `client_message_id` `#6#` not
/// having been stored before (nothing changes then). PostgreSQL's appends of their own
/// leave the `client_message_id` to the unique index instead ([`APPEND_POSTGRES_SQL`]).
macro_rules! advance_sql {
    () => {
        concat!(
            guarded_advance_sql!(),
            " AND (#6# IS NULL OR NOT EXISTS (SELECT 1 FROM message_history \
             WHERE conversation_id = #5# AND client_message_id = #6#))"
        )
    };
}

/// The conversation's side of an append (`advance_sql!`), returning the seq and time
/// the conversation's row then holds.
pub(crate) static ADVANCE_RETURNING_SQL: LazyLock<Template> = LazyLock::new(|| {
    Template::new(concat!(
        advance_sql!(),
        " RETURNING last_seq, last_activity_ms"
    ))
});

/// How many parameters [`parameters`] gives.
pub(crate) const PARAMETERS: usize = 15;

/// What an append moves its conversation to, besides the conversation and client id:
/// the parameters `#1#`…`#4#` of [`ADVANCE_RETURNING_SQL`], typed.
pub(crate) struct Advance {
    /// `#1#`: the message's time.
    pub(crate) at_ms: i64,
    /// `#2#`: the conversation's new `last_message`.
    pub(crate) preview: String,
    /// `#3#`: whether it is a user message.
    pub(crate) from_user: bool,
    /// `#4#`: the seq of the user message a reply answers.
    pub(crate) answers: Option<i64>,
}

impl Advance {
    pub(crate) fn of(new: &NewMessage) -> Result<Self, RowError> {
        Ok(Self {
            at_ms: millis(new.timestamp),
            preview: preview(new.content.as_str()),
            from_user: new.sender == Sender::User,
            answers: new.answers.map(|r| seq_value(r.seq)).transpose()?,
        })
    }
}

/// The parameters `#1#`…`#6#` of [`ADVANCE_RETURNING_SQL`] for an append of `new`.
pub(crate) fn advance_parameters(new: &NewMessage) -> Result<[Value; 6], RepoError> {
    let advance = Advance::of(new)?;
    Ok([
        advance.at_ms.into(),
        advance.preview.into(),
        advance.from_user.into(),
        advance.answers.into(),
        new.conversation_id.as_uuid().into(),
        new.client_message_id
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .into(),
    ])
}

/// The parameters `#1#`…`#15#` of an append of `new`: those of
/// [`ADVANCE_RETURNING_SQL`] (1–6, [`advance_parameters`]), then the message's columns
/// (7–14: id, sender, sender id, content, attachments, suggestions, reply_to,
/// metadata), then (15) the owner an own append is guarded by, `NULL` for others.
pub(crate) fn parameters(
    new: &NewMessage,
    owner: Option<&UserId>,
) -> Result<[Value; PARAMETERS], RepoError> {
    // Seq and timestamp are placeholders here: the SQL takes both from the
    // conversation row.
    let row = message_row(new, Seq::ZERO, new.timestamp)?;
    let [p1, p2, p3, p4, p5, p6] = advance_parameters(new)?;
    Ok([
        p1,
        p2,
        p3,
        p4,
        p5,
        p6,
        row.id.into(),
        row.sender.into(),
        row.sender_id.into(),
        row.content.into(),
        row.attachments.into(),
        row.suggestions.into(),
        row.reply_to.into(),
        row.metadata.into(),
        owner.map(UserId::to_string).into(),
    ])
}

/// The seq and time a conversation's row holds after an advance, as the `RETURNING
/// last_seq, last_activity_ms` of [`ADVANCE_RETURNING_SQL`] gives them.
pub(crate) fn advanced(last_seq: i64, last_activity_ms: i64) -> Result<(Seq, Timestamp), RowError> {
    let seq = Seq::new(
        u64::try_from(last_seq).map_err(|_| RowError::new("conversations", "negative last_seq"))?,
    );
    let timestamp = Timestamp::from_unix_millis(last_activity_ms)
        .map_err(|_| RowError::new("conversations", "last_activity out of range"))?;
    Ok((seq, timestamp))
}

/// Moves the conversation on for `new` ([`ADVANCE_RETURNING_SQL`]); `None` when no
/// row changed.
async fn advance<C: ConnectionTrait>(
    db: &C,
    new: &NewMessage,
) -> Result<Option<(Seq, Timestamp)>, RepoError> {
    let advance =
        ADVANCE_RETURNING_SQL.statement(&advance_parameters(new)?, db.get_database_backend())?;
    let Some(row) = db.query_one_raw(advance).await.map_err(repo_error)? else {
        return Ok(None);
    };
    let last_seq: i64 = row.try_get_by_index(0).map_err(repo_error)?;
    let last_activity_ms: i64 = row.try_get_by_index(1).map_err(repo_error)?;
    Ok(Some(advanced(last_seq, last_activity_ms)?))
}

/// The message's side of an append, for SQL that inserts it in the statement after
/// the advance: its columns from [`parameters`] 6-14, its conversation, seq and time
/// from a row of the advanced conversation, which the caller names after this text
/// (`FROM …`): the advance's `RETURNING`, in PostgreSQL's lone append and batches.
pub(crate) const INSERT_ADVANCED_SQL: &str = "\
INSERT INTO message_history (id, conversation_id, seq, sender, sender_id, content, \
attachments, suggestions, client_message_id, reply_to, timestamp_ms, metadata) \
SELECT #7#, id, last_seq, #8#, #9#, #10#, #11#, #12#, #6#, #13#, last_activity_ms, #14# \
FROM ";

/// PostgreSQL's whole append as one statement: the advance as a data-modifying `WITH`,
/// and the insert reading the seq and time it returned (nothing when it changed no
/// row). One statement is its own transaction, so an append costs one round trip
/// instead of four (`BEGIN`, `UPDATE`, `INSERT`, `COMMIT`), and holds the
/// conversation's row lock for no longer than the statement runs.
///
/// A `client_message_id` stored before is refused by the unique index, which rolls
/// the whole statement back, rather than looked up first: PostgreSQL plans the lookup
/// once per connection, and a plan made while `message_history` is nearly empty reads
/// the whole table instead of the index (see `group_commit::postgres`).
static APPEND_POSTGRES_SQL: LazyLock<Template> = LazyLock::new(|| {
    Template::new(format!(
        "WITH advanced AS ({} RETURNING id, last_seq, last_activity_ms) \
         {INSERT_ADVANCED_SQL}advanced RETURNING seq, timestamp_ms",
        guarded_advance_sql!()
    ))
});

/// The prefix of the columns of a conversation's row as an own append found it, in
/// the `RETURNING` of PostgreSQL's own appends (`before_id`, `before_last_seq` …), so
/// that they clash with no column of the conversation or of a batch.
pub(crate) const BEFORE: &str = "before_";

/// The columns of `conversations` as [`BEFORE`] names them, for a select list:
/// `conversations.id AS before_id, …` ([`Before::Name`]) from the table, or
/// `moved.before_id, …` ([`Before::Read`]) from a relation that holds them already.
pub(crate) fn before_columns(from: &str, how: Before) -> String {
    conversation::Column::iter()
        .map(|column| match how {
            Before::Name => format!("{from}.{0} AS {BEFORE}{0}", column.as_str()),
            Before::Read => format!("{from}.{BEFORE}{}", column.as_str()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How [`before_columns`] lists them.
#[derive(Clone, Copy)]
pub(crate) enum Before {
    /// The table's columns, named with the prefix.
    Name,
    /// Columns already named with the prefix.
    Read,
}

/// Whether an own append may move `conversation`: it is `owner`'s and active.
pub(crate) fn takes_own(conversation: &conversation::Model, owner: &UserId) -> bool {
    conversation.user_id == owner.as_str()
        && conversation.status == ConversationStatus::Active.as_str()
}

/// The conversation an own append found, from the [`BEFORE`] columns of `row`.
pub(crate) fn conversation_before(row: &QueryResult) -> Result<Conversation, RepoError> {
    let model = conversation::Model::from_query_result(row, BEFORE).map_err(repo_error)?;
    Ok(Conversation::try_from(model)?)
}

/// PostgreSQL's own append (`MessageRepository::append_own`) as one statement: the
/// lone append, after `before` has locked the conversation (`FOR NO KEY UPDATE`) and
/// read it as it then stands. The advance joins `before` and moves the conversation
/// only if it is the owner's (`#15#`) and active, so a conversation that is not, or
/// is missing, moves on no more than the message is stored. The row lock is the one
/// the `UPDATE` would take anyway; taking it first makes what `before` read the state
/// the append starts from, whatever committed while it waited.
///
/// `before` finds the row by its id alone: with the owner and status in its `WHERE`,
/// PostgreSQL, before the table's first `ANALYZE`, read the conversation through the
/// `(user_id, status, …)` index and filtered every conversation of the user by id
/// (1 270 against 233 µs of PostgreSQL's CPU per append with 1 000 conversations of
/// one user, `pgbench`).
static APPEND_OWN_POSTGRES_SQL: LazyLock<Template> = LazyLock::new(|| {
    Template::new(format!(
        "WITH before AS (SELECT {} FROM conversations WHERE id = #5# FOR NO KEY UPDATE), \
         advanced AS ({ADVANCE_SET_SQL} FROM before WHERE id = before.{BEFORE}id \
         AND before.{BEFORE}user_id = #15# AND before.{BEFORE}status = 'active' \
         AND {REPLY_PENDING_SQL} RETURNING id, last_seq, last_activity_ms), \
         inserted AS ({INSERT_ADVANCED_SQL}advanced RETURNING seq, timestamp_ms) \
         SELECT inserted.seq, inserted.timestamp_ms, before.* FROM inserted, before",
        before_columns("conversations", Before::Name)
    ))
});

/// Appends `new` inside the caller's write transaction `txn`, as one step of a larger
/// change (a handoff and its notice). `Conflict` when the conversation did not move
/// (the caller's guard failed, or the reply was stored before); the caller rolls back.
pub(crate) async fn append_within(
    txn: &DatabaseTransaction,
    new: &NewMessage,
) -> Result<Message, RepoError> {
    store_within(txn, new).await?.ok_or(RepoError::Conflict)
}

/// The advance, then the insert, inside `txn`: the stored message, `None` when the
/// conversation did not move, `Conflict` when a unique index refused the message. The
/// caller commits or rolls back.
async fn store_within(
    txn: &DatabaseTransaction,
    new: &NewMessage,
) -> Result<Option<Message>, RepoError> {
    let Some((seq, timestamp)) = advance(txn, new).await? else {
        return Ok(None);
    };
    let row = message_row(new, seq, timestamp)?;
    message::Entity::insert(row.into_active_model())
        .exec_without_returning(txn)
        .await
        .map_err(repo_error)?;
    Ok(Some(new.stored(seq, timestamp)))
}

/// Appends `new` on its own: in one statement on PostgreSQL (run on `held` when
/// given), in a write transaction of two on SQLite (whose `UPDATE` cannot stand in a
/// `WITH`).
pub(crate) async fn append_alone(
    db: &DatabaseConnection,
    held: Held<'_>,
    new: &NewMessage,
) -> Result<Appended, RepoError> {
    if db.get_database_backend() == DbBackend::Postgres {
        return append_in_one_statement(db, held, new).await;
    }
    let txn = begin_write(db).await?;
    let stored = store_within(&txn, new).await;
    if let Ok(Some(message)) = stored {
        txn.commit().await.map_err(repo_error)?;
        return Ok(Appended::Stored(message));
    }
    // Anything the original is looked up for comes after the rollback.
    txn.rollback().await.map_err(repo_error)?;
    match (stored, &new.client_message_id) {
        (Ok(_), _) => not_advanced(db, new).await,
        // A unique index refused the message (SQLite holds the write lock, so the
        // guard saw every committed message: a repeated message id, or a database
        // changed under the writer).
        (Err(RepoError::Conflict), Some(_)) => not_advanced(db, new).await,
        (Err(error), _) => Err(error),
    }
}

async fn append_in_one_statement(
    db: &DatabaseConnection,
    held: Held<'_>,
    new: &NewMessage,
) -> Result<Appended, RepoError> {
    let append = APPEND_POSTGRES_SQL.statement(&parameters(new, None)?, DbBackend::Postgres)?;
    let row = match query_one(db, held, append).await {
        Ok(Some(row)) => row,
        Ok(None) => return not_advanced(db, new).await,
        // A `client_message_id` stored before, or stored by a racing append: the
        // unique index refuses it, and the statement is rolled back whole.
        Err(RepoError::Conflict) if new.client_message_id.is_some() => {
            return not_advanced(db, new).await;
        }
        Err(error) => return Err(error),
    };
    let seq: i64 = row.try_get_by_index(0).map_err(repo_error)?;
    let timestamp_ms: i64 = row.try_get_by_index(1).map_err(repo_error)?;
    let (seq, timestamp) = advanced(seq, timestamp_ms)?;
    Ok(Appended::Stored(new.stored(seq, timestamp)))
}

/// An own append on its own: on PostgreSQL in one statement
/// ([`APPEND_OWN_POSTGRES_SQL`]), on SQLite in a write transaction that reads the
/// conversation first. Anything that leaves it unstored is not taken: a conversation
/// that is missing, another user's or not active, and a `client_message_id` stored
/// before (the unique index refuses it on PostgreSQL, the advance's guard on SQLite);
/// the caller's long way tells which. The PostgreSQL statement runs on `held` when
/// given.
pub(crate) async fn append_own_alone(
    db: &DatabaseConnection,
    held: Held<'_>,
    new: &NewMessage,
    owner: &UserId,
) -> Result<OwnAppend, RepoError> {
    if db.get_database_backend() != DbBackend::Postgres {
        return append_own_in_transaction(db, new, owner).await;
    }
    let append =
        APPEND_OWN_POSTGRES_SQL.statement(&parameters(new, Some(owner))?, DbBackend::Postgres)?;
    let row = match query_one(db, held, append).await {
        Ok(Some(row)) => row,
        Ok(None) | Err(RepoError::Conflict) => return Ok(OwnAppend::NotTaken),
        Err(error) => return Err(error),
    };
    let seq: i64 = row.try_get_by_index(0).map_err(repo_error)?;
    let timestamp_ms: i64 = row.try_get_by_index(1).map_err(repo_error)?;
    let (seq, timestamp) = advanced(seq, timestamp_ms)?;
    Ok(OwnAppend::Stored {
        message: new.stored(seq, timestamp),
        before: conversation_before(&row)?,
    })
}

/// A PostgreSQL connection that a writer of the group commit holds from one append to
/// the next (`group_commit`), for a lone append's statement to run on instead of one
/// from the pool: the pool tests every connection given back with a round trip of its
/// own, a second one per append.
pub(crate) type Held<'c> = Option<&'c mut PgConnection>;

/// The row `statement` returns, if any, run on `held` or else through the pool.
async fn query_one(
    db: &DatabaseConnection,
    held: Held<'_>,
    statement: Statement,
) -> Result<Option<QueryResult>, RepoError> {
    let Some(connection) = held else {
        return db.query_one_raw(statement).await.map_err(repo_error);
    };
    // The text is one of the append's templates with placeholders only; its values
    // are bound as SeaORM binds them.
    let values = SqlxValues(statement.values.unwrap_or(Values(Vec::new())));
    sqlx::query_with(sqlx::AssertSqlSafe(statement.sql), values)
        .fetch_optional(connection)
        .await
        .map(|row| row.map(QueryResult::from))
        .map_err(sqlx_error)
}

/// SQLite's own append on its own: the conversation read and checked, then the
/// advance and the insert, in one write transaction.
async fn append_own_in_transaction(
    db: &DatabaseConnection,
    new: &NewMessage,
    owner: &UserId,
) -> Result<OwnAppend, RepoError> {
    let txn = begin_write(db).await?;
    let found = conversation::Entity::find_by_id(new.conversation_id.as_uuid())
        .one(&txn)
        .await
        .map_err(repo_error)?
        .filter(|found| takes_own(found, owner));
    let stored = match found {
        Some(found) => match Conversation::try_from(found) {
            Ok(before) => store_within(&txn, new)
                .await
                .map(|stored| stored.map(|message| (message, before))),
            Err(error) => Err(error.into()),
        },
        None => Ok(None),
    };
    if let Ok(Some((message, before))) = stored {
        txn.commit().await.map_err(repo_error)?;
        return Ok(OwnAppend::Stored { message, before });
    }
    txn.rollback().await.map_err(repo_error)?;
    match stored {
        // Not the owner's, not active, missing, or a unique index refused the message.
        Ok(_) | Err(RepoError::Conflict) => Ok(OwnAppend::NotTaken),
        Err(error) => Err(error),
    }
}

/// What an append that did not move its conversation on comes to: the message stored
/// before under its `client_message_id`, or why the conversation did not move.
pub(crate) async fn not_advanced(
    db: &DatabaseConnection,
    new: &NewMessage,
) -> Result<Appended, RepoError> {
    if let Some(client_id) = &new.client_message_id
        && let Some(original) = by_client_message_id(db, new.conversation_id, client_id).await?
    {
        return Ok(Appended::Existing(original));
    }
    Err(why_not_advanced(db, new.conversation_id).await)
}

/// Why a guarded update of conversation `id` matched no row: the conversation is
/// missing, or the reply it would record was stored before.
pub(crate) async fn why_not_advanced(db: &DatabaseConnection, id: ConversationId) -> RepoError {
    match conversation::Entity::find_by_id(id.as_uuid()).one(db).await {
        Ok(Some(_)) => RepoError::Conflict,
        Ok(None) => RepoError::NotFound,
        Err(error) => repo_error(error),
    }
}

async fn by_client_message_id(
    db: &DatabaseConnection,
    conversation: ConversationId,
    client_id: &ClientMessageId,
) -> Result<Option<Message>, RepoError> {
    let row = message::Entity::find()
        .filter(message::Column::ConversationId.eq(conversation.as_uuid()))
        .filter(message::Column::ClientMessageId.eq(client_id.as_str()))
        .one(db)
        .await
        .map_err(repo_error)?;
    Ok(row.map(Message::try_from).transpose()?)
}

#[cfg(test)]
mod tests {
    use confab_domain::bot::BotId;
    use confab_domain::conversation::Metadata;
    use confab_domain::message::{Attachments, MessageContent, MessageId};
    use confab_domain::ports::ConversationRepository;
    use confab_domain::session::{Session, SessionId};

    use super::*;
    use crate::testing::{postgres_temp, postgres_url};

    /// `before` must read the conversation through its primary key whatever PostgreSQL
    /// knows of the table: asked for the owner and status too, it chose the
    /// `(user_id, status, …)` index on a table not yet analysed and filtered every
    /// conversation of the user by id.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_own_append_reads_its_conversation_by_primary_key_before_any_analyze() {
        let admin = postgres_url().expect("CONFAB_TEST_POSTGRES_URL is set");
        let db = postgres_temp(&admin).await.expect("database");
        let store = db.store();
        let owner = UserId::parse("many").expect("user id");
        let at = Timestamp::from_unix_millis(1_764_000_000_000).expect("time");
        let mut last = None;
        for _ in 0..200 {
            let conversation = Conversation::begun(
                ConversationId::from_uuid(uuid::Uuid::now_v7()),
                SessionId::from_uuid(uuid::Uuid::now_v7()),
                owner.clone(),
                BotId::parse("echo").expect("bot id"),
                at,
            );
            store
                .create(&conversation, &Session::new(&conversation))
                .await
                .expect("conversation stored");
            last = Some(conversation.id);
        }
        let new = NewMessage {
            id: MessageId::from_uuid(uuid::Uuid::now_v7()),
            conversation_id: last.expect("a conversation"),
            sender: Sender::User,
            sender_id: owner.to_string(),
            content: MessageContent::trusted("hello"),
            attachments: Attachments::none(),
            suggestions: Vec::new(),
            client_message_id: None,
            answers: None,
            timestamp: at,
            metadata: Metadata::default(),
        };
        let own = APPEND_OWN_POSTGRES_SQL
            .statement(
                &parameters(&new, Some(&owner)).expect("parameters"),
                DbBackend::Postgres,
            )
            .expect("statement");
        let explain = sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("EXPLAIN {}", own.sql),
            own.values.map(|values| values.0).unwrap_or_default(),
        );
        let plan: Vec<String> = db
            .connection()
            .query_all_raw(explain)
            .await
            .expect("explain")
            .iter()
            .map(|row| row.try_get_by_index::<String>(0).expect("plan line"))
            .collect();
        let plan = plan.join("\n");
        assert!(
            !plan.contains("idx_conversations_user"),
            "read through a listing index:\n{plan}"
        );
        assert!(plan.contains("conversations_pkey"), "{plan}");
        db.drop_database().await.expect("database dropped");
    }
}
