//! Group commit of message appends: writers take the appends waiting at that moment and
//! store them together, one transaction (SQLite) or one statement (PostgreSQL) for many.
//!
//! Appends queue in memory: a caller that finds fewer writers running than its backend
//! allows starts one (a spawned task, so a caller that gives up cannot abandon a batch
//! half way), writers drain the queue batch by batch, and each caller gets its result
//! only once its batch has committed. An append whose `client_message_id` was seen
//! before, or whose reply was stored before, changes nothing (its `UPDATE` is guarded,
//! and a repeat within one SQLite batch is caught before it) and is sorted out after
//! the commit, so no statement of a batch is expected to fail. Should one fail anyway,
//! each append of the batch is retried on its own, so one bad append never fails the
//! others; only when the database is unavailable (locked past the busy timeout, a full
//! disk, no connection) does every append of the batch fail at once.
//!
//! - **SQLite** ([`sqlite`]) has one write lock per file. With one transaction per
//!   append, concurrent appends queue on that lock inside SQLite's busy handler, which
//!   sleeps in steps of milliseconds, and each pays its own `BEGIN`/`COMMIT`. One writer
//!   runs every append waiting, in arrival order, in one `BEGIN IMMEDIATE`
//!   transaction on a connection of its own (rusqlite): seqs stay gap-free because
//!   each append's `UPDATE` reads the counter its predecessor in the same transaction
//!   wrote.
//! - **PostgreSQL** ([`postgres`]) locks rows, not the file, but each statement and
//!   each commit has a cost of its own (a round trip, a snapshot, a WAL flush). A few
//!   writers each store a batch in one statement, each on a connection of its own.
//!   A batch holds at most one append per conversation, and a conversation with an
//!   append in flight is left to the writer that has it: a conversation's appends are
//!   stored one after the other, in arrival order, like the lone append they replace.

mod postgres;
mod sqlite;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use confab_domain::conversation::ConversationId;
use confab_domain::error::RepoError;
use confab_domain::message::{Appended, NewMessage};
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::oneshot;

use crate::append::{append_alone, not_advanced};

/// Appends taken into one batch at most. Bounds how long a lock is held and how long
/// the first append of a batch waits for the last.
const MAX_BATCH: usize = 256;

/// How many PostgreSQL writers run at once: enough that one batch is prepared and
/// answered while another is stored, and that appends to other conversations do not
/// wait for a slow one; each holds a pooled connection while it writes.
const POSTGRES_WRITERS: usize = 4;

/// How often the WAL of SQLite is checkpointed while appends commit: often enough
/// that the WAL stays a few megabytes (readers look pages up in it), rarely enough
/// that a page many commits change is copied back once for all of them.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The appends waiting for a writer, and the writers at work.
#[derive(Default)]
pub(crate) struct AppendQueue {
    state: Mutex<QueueState>,
    /// SQLite: the writer's own connection (`sqlite`).
    sqlite: sqlite::SqliteWriter,
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<Pending>,
    writers: usize,
    /// Conversations with an append in a PostgreSQL batch being stored.
    in_flight: HashSet<ConversationId>,
    /// SQLite: whether the background checkpoint runs, and whether a batch committed
    /// since its last checkpoint started.
    checkpointing: bool,
    committed_since_checkpoint: bool,
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
    /// Appends `new` to `db` through a writer; resolves once its batch has committed.
    pub(crate) async fn append(
        self: &Arc<Self>,
        db: &DatabaseConnection,
        new: &NewMessage,
    ) -> Result<Appended, RepoError> {
        let backend = db.get_database_backend();
        let (done, result) = oneshot::channel();
        let start_writer = {
            let mut state = self.lock();
            state.pending.push_back(Pending {
                message: new.clone(),
                done,
            });
            let start = state.writers < max_writers(backend);
            if start {
                state.writers += 1;
            }
            start
        };
        if start_writer {
            tokio::spawn(Arc::clone(self).write_batches(db.clone()));
        }
        result
            .await
            .map_err(|_| RepoError::Internal("the append writer stopped before answering".into()))?
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // The critical sections only move queue entries, sets and counters, so a
        // poisoned lock still guards consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A writer: commits batches until it finds nothing it may take, then stops.
    async fn write_batches(self: Arc<Self>, db: DatabaseConnection) {
        let backend = db.get_database_backend();
        // Should this task ever panic, the next append starts a new writer, and the
        // conversations of its batch are free again.
        let mut writer = Writer {
            queue: Arc::clone(&self),
            taken: Vec::new(),
            stopped: false,
        };
        loop {
            let batch = {
                let mut state = self.lock();
                writer.release(&mut state);
                let batch = state.take(backend);
                if batch.is_empty() {
                    state.writers -= 1;
                    writer.stopped = true;
                    return;
                }
                if backend == DbBackend::Postgres {
                    writer.taken = batch.iter().map(|p| p.message.conversation_id).collect();
                }
                batch
            };
            if backend == DbBackend::Postgres && batch.len() == 1 {
                // Nothing to share: the lone append's own statement is the cheaper
                // one to plan and to run.
                for pending in batch {
                    let result = append_alone(&db, &pending.message).await;
                    let _ = pending.done.send(result);
                }
                continue;
            }
            let messages: Vec<&NewMessage> = batch.iter().map(|p| &p.message).collect();
            let committed = match backend {
                DbBackend::Postgres => postgres::commit_batch(&db, &messages).await,
                _ => match self.sqlite.commit_batch(&db, &messages).await {
                    Ok(Some(steps)) => Ok(steps),
                    // In memory: the pool's one connection takes them one by one.
                    Ok(None) => {
                        for pending in batch {
                            let result = append_alone(&db, &pending.message).await;
                            let _ = pending.done.send(result);
                        }
                        continue;
                    }
                    Err(error) => Err(error),
                },
            };
            match committed {
                Ok(steps) => {
                    if backend == DbBackend::Sqlite {
                        self.checkpoint_soon(&db);
                    }
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
                // The database cannot be reached: retrying one by one would make each
                // append of the batch wait out the pool's timeout in turn, and the
                // queue behind them with it. Each caller hears at once, as it would
                // alone; nothing was acknowledged.
                Err(RepoError::Unavailable(cause)) => {
                    let cause = cause.to_string();
                    for pending in batch {
                        let _ = pending
                            .done
                            .send(Err(RepoError::Unavailable(cause.clone().into())));
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

impl AppendQueue {
    /// Has the WAL's committed pages copied back into the database file in the
    /// background, on a task and a connection of its own: every [`CHECKPOINT_EVERY`]
    /// while commits come, and once more after the last. SQLite would otherwise
    /// checkpoint inside the commit that crosses its threshold, and every append of
    /// that batch would wait for the copy and its `fsync`. A passive checkpoint does
    /// not block the writer, and one that fails leaves the pages for the next one (or
    /// for SQLite's own threshold, which `connect` keeps as a backstop).
    fn checkpoint_soon(self: &Arc<Self>, db: &DatabaseConnection) {
        {
            let mut state = self.lock();
            state.committed_since_checkpoint = true;
            if state.checkpointing {
                return;
            }
            state.checkpointing = true;
        }
        let queue = Arc::clone(self);
        let db = db.clone();
        tokio::spawn(async move {
            loop {
                queue.lock().committed_since_checkpoint = false;
                let _ = sqlite::checkpoint(&db).await;
                tokio::time::sleep(CHECKPOINT_EVERY).await;
                let mut state = queue.lock();
                if !state.committed_since_checkpoint {
                    state.checkpointing = false;
                    return;
                }
            }
        });
    }
}

impl QueueState {
    /// The next batch for a writer of `backend`: on SQLite the oldest appends; on
    /// PostgreSQL the oldest append of each conversation that no writer holds, which
    /// it marks as held.
    fn take(&mut self, backend: DbBackend) -> Vec<Pending> {
        if backend != DbBackend::Postgres {
            let take = self.pending.len().min(MAX_BATCH);
            return self.pending.drain(..take).collect();
        }
        let mut batch = Vec::new();
        let mut left = VecDeque::with_capacity(self.pending.len());
        for pending in self.pending.drain(..) {
            if batch.len() < MAX_BATCH && self.in_flight.insert(pending.message.conversation_id) {
                batch.push(pending);
            } else {
                left.push_back(pending);
            }
        }
        self.pending = left;
        batch
    }
}

fn max_writers(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Postgres => POSTGRES_WRITERS,
        _ => 1,
    }
}

/// A running writer's hold on the queue: the conversations of the batch it stores, given
/// back before it takes the next. Dropped by a panic, it gives them back and counts the
/// writer out, so that a panic cannot leave appends waiting for a writer that is gone.
struct Writer {
    queue: Arc<AppendQueue>,
    taken: Vec<ConversationId>,
    stopped: bool,
}

impl Writer {
    fn release(&mut self, state: &mut QueueState) {
        for conversation in self.taken.drain(..) {
            state.in_flight.remove(&conversation);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let queue = Arc::clone(&self.queue);
        let mut state = queue.lock();
        self.release(&mut state);
        state.writers -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use confab_domain::bot::{Bot, BotId, BotName, EngineKind, EngineSpec};
    use confab_domain::conversation::{Conversation, ConversationId, Metadata};
    use confab_domain::message::{
        Attachments, ClientMessageId, Message, MessageContent, MessageId, Sender, Seq,
    };
    use confab_domain::ports::{BotRepository, ConversationRepository, MessageRepository};
    use confab_domain::session::{Session, SessionId};
    use confab_domain::user::UserId;

    use confab_domain::timestamp::Timestamp;

    use super::*;
    use crate::SeaOrmStore;
    use crate::testing::{postgres_temp, postgres_url, sqlite_temp};

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

    /// The conversation's first 50 messages.
    async fn first_page(store: &SeaOrmStore, conversation: ConversationId) -> Vec<Message> {
        let query = confab_domain::message::HistoryQuery {
            before: None,
            after: None,
            limit: confab_domain::conversation::PageSize::parse(50, 100).expect("page size"),
        };
        store
            .history(conversation, &query)
            .await
            .expect("history")
            .messages
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

    async fn appends_sharing_a_client_message_id_store_one_message_and_return_it_to_all(
        store: SeaOrmStore,
    ) {
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

    async fn two_replies_to_one_message_in_one_batch_store_one_and_the_other_conflicts(
        store: SeaOrmStore,
    ) {
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
        let history = first_page(&store, conversation.id).await;
        assert_eq!(history.len(), 2);
        assert_eq!(history[1], stored[0], "stored as returned");
    }

    async fn a_batch_that_fails_half_way_is_retried_append_by_append_and_the_store_goes_on(
        store: SeaOrmStore,
    ) {
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

    async fn an_append_to_a_missing_conversation_fails_alone_and_the_others_get_gap_free_seqs(
        store: SeaOrmStore,
    ) {
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

    async fn appends_to_many_conversations_at_once_get_gap_free_seqs_in_each(store: SeaOrmStore) {
        let mut conversations = Vec::new();
        for _ in 0..12 {
            conversations.push(conversation(&store).await.id);
        }
        let messages = (0..15)
            .flat_map(|_| conversations.iter().map(|id| message(*id, None)))
            .collect();
        let results = append_together(&store, messages).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        for id in conversations {
            let reloaded = ConversationRepository::get(&store, id)
                .await
                .expect("conversation");
            assert_eq!(
                (reloaded.last_seq, reloaded.message_count),
                (Seq::new(15), 15)
            );
        }
    }

    async fn a_duplicate_message_id_across_conversations_fails_alone(store: SeaOrmStore) {
        let first = conversation(&store).await.id;
        let second = conversation(&store).await.id;
        let mut messages: Vec<NewMessage> = (0..10)
            .flat_map(|_| [message(first, None), message(second, None)])
            .collect();
        let mut twin = messages[4].clone();
        twin.conversation_id = if twin.conversation_id == first {
            second
        } else {
            first
        };
        messages.insert(5, twin);
        let results = append_together(&store, messages).await;
        let stored = results
            .iter()
            .filter(|r| matches!(r, Ok(Appended::Stored(_))))
            .count();
        let refused = results.iter().filter(|r| r.is_err()).count();
        assert_eq!((stored, refused), (20, 1), "{results:?}");
        for id in [first, second] {
            let after = store
                .append(&message(id, None))
                .await
                .expect("the store still appends");
            let reloaded = ConversationRepository::get(&store, id)
                .await
                .expect("conversation");
            assert_eq!(after.into_message().seq, reloaded.last_seq);
        }
    }

    /// Two stores on one database, as two instances are: their writers batch the same
    /// conversations at the same time.
    async fn two_stores_appending_to_the_same_conversations_keep_seqs_gap_free(store: SeaOrmStore) {
        let other = SeaOrmStore::new(store.db.clone());
        let mut conversations = Vec::new();
        for _ in 0..6 {
            conversations.push(conversation(&store).await.id);
        }
        let tasks: Vec<_> = (0..20)
            .flat_map(|round| conversations.iter().map(move |id| (round, *id)))
            .map(|(round, id)| {
                let store = if round % 2 == 0 {
                    store.clone()
                } else {
                    other.clone()
                };
                tokio::spawn(async move { store.append(&message(id, None)).await })
            })
            .collect();
        for task in tasks {
            task.await.expect("append task").expect("append succeeds");
        }
        for id in conversations {
            let history = first_page(&store, id).await;
            let seqs: Vec<u64> = history.iter().map(|m| m.seq.get()).collect();
            assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
        }
    }

    /// Each check above, as a test on SQLite and one on PostgreSQL.
    macro_rules! on_both_backends {
        ($($check:ident),* $(,)?) => {
            mod on_sqlite {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $check() {
                        let db = super::sqlite_temp().await.expect("database");
                        super::$check(db.store()).await;
                    }
                )*
            }
            mod on_postgres {
                $(
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $check() {
                        let admin = super::postgres_url().expect("CONFAB_TEST_POSTGRES_URL is set");
                        let db = super::postgres_temp(&admin).await.expect("database");
                        super::$check(db.store()).await;
                        db.drop_database().await.expect("database dropped");
                    }
                )*
            }
        };
    }

    on_both_backends!(
        appends_sharing_a_client_message_id_store_one_message_and_return_it_to_all,
        two_replies_to_one_message_in_one_batch_store_one_and_the_other_conflicts,
        a_batch_that_fails_half_way_is_retried_append_by_append_and_the_store_goes_on,
        an_append_to_a_missing_conversation_fails_alone_and_the_others_get_gap_free_seqs,
        appends_to_many_conversations_at_once_get_gap_free_seqs_in_each,
        a_duplicate_message_id_across_conversations_fails_alone,
        two_stores_appending_to_the_same_conversations_keep_seqs_gap_free,
    );

    /// SQLite's own checkpoint would wait for 10 000 pages of WAL; twenty appends reach
    /// the database file only if the writer has the WAL checkpointed in the background.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_appends_reach_the_database_file_through_a_background_checkpoint() {
        let db = sqlite_temp().await.expect("database");
        let store = db.store();
        let id = conversation(&store).await.id;
        let messages = (0..20).map(|_| message(id, None)).collect();
        let results = append_together(&store, messages).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        let file = db
            .url()
            .trim_start_matches("sqlite://")
            .trim_end_matches("?mode=rwc")
            .to_owned();
        // The file alone, without its WAL, holds only what was checkpointed.
        let copy = format!("{file}.checkpointed");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            std::fs::copy(&file, &copy).expect("database file copied");
            let reader = crate::connect(&format!("sqlite://{copy}?mode=rw"))
                .await
                .expect("copy opened");
            // Before the first checkpoint the file has not even the tables.
            let query = confab_domain::message::HistoryQuery {
                before: None,
                after: None,
                limit: confab_domain::conversation::PageSize::parse(50, 100).expect("page size"),
            };
            let stored = SeaOrmStore::new(reader.clone())
                .history(id, &query)
                .await
                .map_or(0, |page| page.messages.len());
            reader.close().await.expect("copy closed");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{copy}{suffix}"));
            }
            if stored == 20 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the database file holds {stored} of 20 messages"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The writer does not wait for a lock on the tokio worker: a batch that finds the
    /// write lock taken by another connection of the pool waits on a blocking thread,
    /// for as long as a pooled connection would, and is stored once the lock is free.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_appends_wait_for_a_write_lock_another_connection_holds() {
        let db = sqlite_temp().await.expect("database");
        let store = db.store();
        let id = conversation(&store).await.id;
        let holder = crate::connection::begin_write(db.connection())
            .await
            .expect("write lock taken");
        let appending = tokio::spawn({
            let store = store.clone();
            async move { store.append(&message(id, None)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!appending.is_finished(), "the append waits for the lock");
        holder.commit().await.expect("lock released");
        let appended = appending
            .await
            .expect("append task")
            .expect("stored once the lock is free");
        assert_eq!(appended.into_message().seq, Seq::new(1));
    }
}
