//! Group commit of message appends on SQLite: one writer takes every append waiting at
//! that moment and stores them in one transaction.
//!
//! SQLite has one write lock per file. With one transaction per append, concurrent
//! appends queue on that lock inside SQLite's busy handler, which sleeps in steps of
//! milliseconds, and each pays its own `BEGIN`/`COMMIT`. Here appends queue in memory
//! instead: the first caller to find no writer running starts one (a spawned task, so
//! a caller that gives up cannot abandon a batch half way), the writer drains the queue
//! batch by batch, and each caller gets its result only once its batch has committed.
//!
//! Within a batch the appends run in arrival order, each exactly as
//! [`MessageRepository::append`](confab_domain::ports::MessageRepository::append)
//! would alone: seqs stay gap-free per conversation because each append's `UPDATE`
//! reads the counter its predecessor in the same transaction wrote. An append whose
//! `client_message_id` was seen before, or whose reply was stored before, changes
//! nothing (its `UPDATE` is guarded) and is sorted out after the commit, so no
//! statement of a batch is expected to fail; should one fail anyway, the batch is
//! rolled back and each of its appends is retried in a transaction of its own, so one
//! bad append never fails the others. PostgreSQL is not batched: its row locks let
//! appends to different conversations commit side by side, and it groups WAL flushes
//! itself.

use std::mem;
use std::sync::{Arc, Mutex};

use confab_domain::error::RepoError;
use confab_domain::message::{Appended, Message, NewMessage};
use sea_orm::sqlx::query::Query;
use sea_orm::sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnection};
use sea_orm::sqlx::{self, Row};
use sea_orm::{DatabaseConnection, DbBackend, Value};
use tokio::sync::oneshot;

use crate::append::{
    ADVANCE_SQL, INSERT_ADVANCED_SQL, advanced, append_alone, not_advanced, parameters,
};
use crate::error::{RowError, sqlx_error};
use crate::sql::render;

/// Appends taken into one transaction at most. Bounds how long the write lock is held
/// and how long the first append of a batch waits for the last.
const MAX_BATCH: usize = 256;

/// The appends waiting for the writer, and whether a writer runs.
#[derive(Default)]
pub(crate) struct AppendQueue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    pending: Vec<Pending>,
    writing: bool,
}

struct Pending {
    message: NewMessage,
    done: oneshot::Sender<Result<Appended, RepoError>>,
}

impl std::fmt::Debug for AppendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendQueue").finish_non_exhaustive()
    }
}

impl AppendQueue {
    /// Appends `new` to `db` through the writer; resolves once its batch has
    /// committed.
    pub(crate) async fn append(
        self: &Arc<Self>,
        db: &DatabaseConnection,
        new: &NewMessage,
    ) -> Result<Appended, RepoError> {
        let (done, result) = oneshot::channel();
        let start_writer = {
            let mut state = self.lock();
            state.pending.push(Pending {
                message: new.clone(),
                done,
            });
            !mem::replace(&mut state.writing, true)
        };
        if start_writer {
            tokio::spawn(Arc::clone(self).write_batches(db.clone()));
        }
        result
            .await
            .map_err(|_| RepoError::Internal("the append writer stopped before answering".into()))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // The critical sections only move vectors and flags, so a poisoned lock still
        // guards consistent state.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The writer: commits batches until the queue is empty, then stops.
    async fn write_batches(self: Arc<Self>, db: DatabaseConnection) {
        // Should this task ever panic, the next append starts a new writer.
        let _reset = ResetWriting(Arc::clone(&self));
        loop {
            let batch: Vec<Pending> = {
                let mut state = self.lock();
                if state.pending.is_empty() {
                    state.writing = false;
                    return;
                }
                let take = state.pending.len().min(MAX_BATCH);
                state.pending.drain(..take).collect()
            };
            let messages: Vec<&NewMessage> = batch.iter().map(|p| &p.message).collect();
            match commit_batch(&db, &messages).await {
                Ok(steps) => {
                    for (pending, stored) in batch.into_iter().zip(steps) {
                        let result = match stored {
                            Some(message) => Ok(Appended::Stored(message)),
                            None => not_advanced(&db, &pending.message).await,
                        };
                        // A caller that gave up no longer listens; its message is
                        // stored all the same, as it would be without batching.
                        let _ = pending.done.send(result);
                    }
                }
                Err(_) => {
                    for pending in batch {
                        let result = append_alone(&db, &pending.message).await;
                        let _ = pending.done.send(result);
                    }
                }
            }
        }
    }
}

/// Runs every append of the batch in one write transaction and commits it.
async fn commit_batch(
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

/// Marks the writer stopped when its task panics, so that a panic cannot leave
/// appends waiting for a writer that is gone. (A writer that ends normally clears the
/// flag itself, under the same lock it found the queue empty with.)
struct ResetWriting(Arc<AppendQueue>);

impl Drop for ResetWriting {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut state = self
            .0
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.writing = false;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use confab_domain::bot::{Bot, BotId, BotName, EngineKind, EngineSpec};
    use confab_domain::conversation::{Conversation, ConversationId, Metadata};
    use confab_domain::message::{
        Attachments, ClientMessageId, MessageContent, MessageId, Sender, Seq,
    };
    use confab_domain::ports::{BotRepository, ConversationRepository, MessageRepository};
    use confab_domain::session::{Session, SessionId};
    use confab_domain::user::UserId;

    use confab_domain::timestamp::Timestamp;

    use super::*;
    use crate::SeaOrmStore;
    use crate::testing::sqlite_temp;

    fn now() -> Timestamp {
        Timestamp::from_unix_millis(1_764_000_000_000).expect("valid time")
    }

    async fn conversation(store: &SeaOrmStore) -> Conversation {
        let bot = Bot {
            id: BotId::parse("echo").expect("bot id"),
            name: BotName::parse("Echo").expect("bot name"),
            description: String::new(),
            engine: EngineSpec::of(EngineKind::Echo),
            created_at: now(),
            updated_at: now(),
        };
        store.upsert(&bot).await.expect("bot stored");
        let conversation = Conversation::begun(
            ConversationId::from_uuid(uuid::Uuid::now_v7()),
            SessionId::from_uuid(uuid::Uuid::now_v7()),
            UserId::parse("alice").expect("user id"),
            bot.id,
            now(),
        );
        let session = Session::new(&conversation);
        store
            .create(&conversation, &session)
            .await
            .expect("conversation stored");
        conversation
    }

    fn message(conversation: ConversationId, client_id: Option<&str>) -> NewMessage {
        NewMessage {
            id: MessageId::from_uuid(uuid::Uuid::now_v7()),
            conversation_id: conversation,
            sender: Sender::User,
            sender_id: "alice".to_owned(),
            content: MessageContent::trusted("hello"),
            attachments: Attachments::none(),
            suggestions: Vec::new(),
            client_message_id: client_id.map(|id| ClientMessageId::parse(id).expect("id")),
            answers: None,
            timestamp: now(),
            metadata: Metadata::default(),
        }
    }

    /// Appends every message at once from tasks of their own, so that they queue
    /// together and share batches.
    async fn append_together(
        store: &SeaOrmStore,
        messages: Vec<NewMessage>,
    ) -> Vec<Result<Appended, RepoError>> {
        let tasks: Vec<_> = messages
            .into_iter()
            .map(|new| {
                let store = store.clone();
                tokio::spawn(async move { store.append(&new).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("append task"));
        }
        results
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_sharing_a_client_message_id_store_one_message_and_return_it_to_all() {
        let db = sqlite_temp().await.expect("database");
        let store = db.store();
        let conversation = conversation(&store).await;
        let same = (0..20)
            .map(|_| message(conversation.id, Some("same")))
            .collect();
        let results = append_together(&store, same).await;
        let mut stored = 0;
        let mut ids = BTreeSet::new();
        for result in results {
            match result.expect("append succeeds") {
                Appended::Stored(message) => {
                    stored += 1;
                    ids.insert(message.id);
                }
                Appended::Existing(message) => {
                    ids.insert(message.id);
                }
            }
        }
        assert_eq!((stored, ids.len()), (1, 1));
        let reloaded = ConversationRepository::get(&store, conversation.id)
            .await
            .expect("conversation");
        assert_eq!(reloaded.last_seq, Seq::new(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replies_to_one_message_in_one_batch_store_one_and_the_other_conflicts() {
        let db = sqlite_temp().await.expect("database");
        let store = db.store();
        let conversation = conversation(&store).await;
        let question = store
            .append(&message(conversation.id, None))
            .await
            .expect("question stored")
            .into_message();
        let replies: Vec<NewMessage> = (0..2)
            .map(|n| NewMessage {
                sender: Sender::Bot,
                sender_id: "echo".to_owned(),
                content: MessageContent::trusted(format!("reply {n}")),
                answers: Some(confab_domain::message::ReplyTo {
                    message_id: question.id,
                    seq: question.seq,
                }),
                ..message(conversation.id, None)
            })
            .collect();
        let results = append_together(&store, replies).await;
        let stored: Vec<Message> = results
            .iter()
            .filter_map(|r| match r {
                Ok(Appended::Stored(message)) => Some(message.clone()),
                _ => None,
            })
            .collect();
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Err(RepoError::Conflict)))
            .count();
        assert_eq!((stored.len(), conflicts), (1, 1), "{results:?}");
        assert_eq!(stored[0].seq, Seq::new(2));
        let reloaded = ConversationRepository::get(&store, conversation.id)
            .await
            .expect("conversation");
        assert_eq!(
            (
                reloaded.last_seq,
                reloaded.replied_seq,
                reloaded.message_count
            ),
            (Seq::new(2), question.seq, 2)
        );
        let history = store
            .history(
                conversation.id,
                &confab_domain::message::HistoryQuery {
                    before: None,
                    after: None,
                    limit: confab_domain::conversation::PageSize::parse(50, 100)
                        .expect("page size"),
                },
            )
            .await
            .expect("history");
        assert_eq!(history.messages.len(), 2);
        assert_eq!(history.messages[1], stored[0], "stored as returned");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_that_fails_half_way_is_retried_append_by_append_and_the_store_goes_on() {
        let db = sqlite_temp().await.expect("database");
        let store = db.store();
        let conversation = conversation(&store).await;
        let mut messages: Vec<NewMessage> =
            (0..20).map(|_| message(conversation.id, None)).collect();
        // The same message id twice: the second insert violates the primary key,
        // which fails the whole query its batch is in.
        messages.push(messages[7].clone());
        let results = append_together(&store, messages).await;
        let stored = results
            .iter()
            .filter(|r| matches!(r, Ok(Appended::Stored(_))))
            .count();
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Err(RepoError::Conflict)))
            .count();
        assert_eq!((stored, conflicts), (20, 1), "{results:?}");
        let after = store
            .append(&message(conversation.id, None))
            .await
            .expect("the store still appends");
        assert_eq!(after.into_message().seq, Seq::new(21));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_to_a_missing_conversation_fails_alone_and_the_others_get_gap_free_seqs() {
        let db = sqlite_temp().await.expect("database");
        let store = db.store();
        let conversation = conversation(&store).await;
        let missing = ConversationId::from_uuid(uuid::Uuid::now_v7());
        let mut messages: Vec<NewMessage> =
            (0..30).map(|_| message(conversation.id, None)).collect();
        messages.insert(15, message(missing, None));
        let results = append_together(&store, messages).await;
        let mut seqs = Vec::new();
        let mut not_found = 0;
        for result in results {
            match result {
                Ok(Appended::Stored(message)) => seqs.push(message.seq.get()),
                Err(RepoError::NotFound) => not_found += 1,
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        seqs.sort_unstable();
        assert_eq!(not_found, 1);
        assert_eq!(seqs, (1..=30).collect::<Vec<u64>>());
    }
}
