//! Seeding large data sets straight into confab's database, which no API could fill
//! in reasonable time: one `INSERT … SELECT` over a generated series of rows.
//!
//! The rows are what the server would have stored: user and bot messages in turn,
//! gap-free seqs, rising timestamps; the conversation's counters are moved on in the
//! same transaction so that the server continues after the last seeded seq.

use anyhow::{Context as _, Result};
use sea_orm::{
    ConnectionTrait, Database, DbBackend, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait, Value,
};
use uuid::Uuid;

/// How seeded messages read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    /// `seeded message <n>`.
    Plain,
    /// `seeded message <n> word<n % 1000>`: each `word<k>` is in one message of a
    /// thousand, a word as rare as a search's typical one.
    Vocabulary,
}

impl Wording {
    /// The SQL of the content of message `n`, in SQL both backends read alike.
    fn content_sql(self) -> &'static str {
        match self {
            Self::Plain => "'seeded message ' || n",
            Self::Vocabulary => "'seeded message ' || n || ' word' || (n % 1000)",
        }
    }
}

/// Appends `count` messages to the (empty) conversation `conversation_id` of `user_id`.
pub async fn messages(
    database_url: &str,
    conversation_id: &str,
    user_id: &str,
    count: u64,
) -> Result<()> {
    messages_worded(
        database_url,
        conversation_id,
        user_id,
        count,
        Wording::Plain,
    )
    .await
}

/// [`messages`], worded as `wording` says.
pub async fn messages_worded(
    database_url: &str,
    conversation_id: &str,
    user_id: &str,
    count: u64,
    wording: Wording,
) -> Result<()> {
    let conversation = Uuid::parse_str(conversation_id).context("a malformed conversation id")?;
    let db = Database::connect(database_url)
        .await
        .context("cannot open the database to seed it")?;
    let backend = db.get_database_backend();
    let count = i64::try_from(count).context("too many messages")?;
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_millis(),
    )
    .context("the clock is too far ahead")?;
    // One millisecond per message, ending a second ago.
    let base_ms = now_ms - count - 1000;
    let insert = match backend {
        DbBackend::Postgres => format!(
            "INSERT INTO message_history (id, conversation_id, seq, sender, sender_id, content, \
             attachments, suggestions, client_message_id, reply_to, timestamp_ms, metadata) \
             SELECT gen_random_uuid(), $1, n, \
               CASE WHEN n % 2 = 1 THEN 'user' ELSE 'bot' END, \
               CASE WHEN n % 2 = 1 THEN $2 ELSE 'echo' END, \
               {content}, '[]', '[]', NULL, NULL, $3 + n, '{{}}' \
             FROM generate_series(1, $4::bigint) AS n",
            content = wording.content_sql()
        ),
        _ => format!(
            "INSERT INTO message_history (id, conversation_id, seq, sender, sender_id, content, \
             attachments, suggestions, client_message_id, reply_to, timestamp_ms, metadata) \
             WITH RECURSIVE series(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM series WHERE n < $4) \
             SELECT randomblob(16), $1, n, \
               CASE WHEN n % 2 = 1 THEN 'user' ELSE 'bot' END, \
               CASE WHEN n % 2 = 1 THEN $2 ELSE 'echo' END, \
               {content}, '[]', '[]', NULL, NULL, $3 + n, '{{}}' \
             FROM series",
            content = wording.content_sql()
        ),
    };
    // Every seeded user message counts as answered, so the server does not set out
    // to answer them.
    let last_user_seq = if count % 2 == 1 { count } else { count - 1 };
    let advance = "UPDATE conversations SET last_seq = $1, message_count = $1, \
                   last_user_seq = $2, replied_seq = $2, last_activity_ms = $3, \
                   last_message = 'seeded message' WHERE id = $4";
    // On SQLite the write lock is taken at once: a transaction that started reading
    // (the schema, as its first statement is prepared) fails at once with
    // `SQLITE_BUSY` when the server commits in between, instead of waiting its turn.
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await
        .context("cannot begin the seeding")?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        insert,
        [
            Value::from(conversation),
            Value::from(user_id.to_owned()),
            Value::from(base_ms),
            Value::from(count),
        ],
    ))
    .await
    .context("cannot insert the seeded messages")?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        advance,
        [
            Value::from(count),
            Value::from(last_user_seq),
            Value::from(base_ms + count),
            Value::from(conversation),
        ],
    ))
    .await
    .context("cannot move the conversation on")?;
    txn.commit().await.context("cannot commit the seeding")?;
    db.close()
        .await
        .context("cannot close the seeding connection")
}
