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
//! would alone: seqs stay gap-free per conversation because each `advance` reads the
//! counter its predecessor in the same transaction wrote. A `client_message_id` seen
//! before is looked up *before* anything is written, so no statement of a batch is
//! expected to fail; should one fail anyway, the batch is rolled back and each of its
//! appends is retried in a transaction of its own, so one bad append never fails the
//! others. PostgreSQL is not batched: its row locks let appends to different
//! conversations commit side by side, and it groups WAL flushes itself.

use std::mem;
use std::sync::{Arc, Mutex};

use confab_domain::conversation::ConversationId;
use confab_domain::error::RepoError;
use confab_domain::message::{Appended, Message, NewMessage, Seq};
use confab_domain::timestamp::Timestamp;
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter};
use tokio::sync::oneshot;

use crate::entity::message;
use crate::error::{RowError, repo_error};
use crate::messages::advance;
use crate::rows::{message_row, stored_message};
use crate::store::SeaOrmStore;

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

/// What one append of a batch came to inside the transaction.
enum Step {
    Stored(Message),
    Existing(Message),
    /// `advance` matched no row; why is looked up after the commit.
    NotAdvanced(ConversationId),
}

impl SeaOrmStore {
    /// Appends `new` through the writer; resolves once its batch has committed.
    pub(crate) async fn append_grouped(&self, new: &NewMessage) -> Result<Appended, RepoError> {
        let (done, result) = oneshot::channel();
        let start_writer = {
            let mut state = self.lock_queue();
            state.pending.push(Pending {
                message: new.clone(),
                done,
            });
            !mem::replace(&mut state.writing, true)
        };
        if start_writer {
            tokio::spawn(self.clone().write_batches());
        }
        result
            .await
            .map_err(|_| RepoError::Internal("the append writer stopped before answering".into()))?
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // The critical sections only move vectors and flags, so a poisoned lock still
        // guards consistent state.
        self.appends
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The writer: commits batches until the queue is empty, then stops.
    async fn write_batches(self) {
        // Should this task ever panic, the next append starts a new writer.
        let _reset = ResetWriting(self.appends.clone());
        loop {
            let batch: Vec<Pending> = {
                let mut state = self.lock_queue();
                if state.pending.is_empty() {
                    state.writing = false;
                    return;
                }
                let take = state.pending.len().min(MAX_BATCH);
                state.pending.drain(..take).collect()
            };
            let messages: Vec<&NewMessage> = batch.iter().map(|p| &p.message).collect();
            match self.commit_batch(&messages).await {
                Ok(steps) => {
                    for (pending, step) in batch.into_iter().zip(steps) {
                        let result = match step {
                            Step::Stored(message) => Ok(Appended::Stored(message)),
                            Step::Existing(message) => Ok(Appended::Existing(message)),
                            Step::NotAdvanced(id) => Err(self.why_not_advanced(id).await),
                        };
                        // A caller that gave up no longer listens; its message is
                        // stored all the same, as it would be without batching.
                        let _ = pending.done.send(result);
                    }
                }
                Err(_) => {
                    for pending in batch {
                        let result = self.append_alone(&pending.message).await;
                        let _ = pending.done.send(result);
                    }
                }
            }
        }
    }

    /// Runs every append of the batch in one write transaction and commits it.
    async fn commit_batch(&self, batch: &[&NewMessage]) -> Result<Vec<Step>, RepoError> {
        let txn = self.begin_write().await?;
        match apply(&txn, batch).await {
            Ok(steps) => {
                txn.commit().await.map_err(repo_error)?;
                Ok(steps)
            }
            Err(error) => {
                txn.rollback().await.map_err(repo_error)?;
                Err(error)
            }
        }
    }
}

async fn apply(txn: &DatabaseTransaction, batch: &[&NewMessage]) -> Result<Vec<Step>, RepoError> {
    let mut steps = Vec::with_capacity(batch.len());
    for new in batch {
        if let Some(client_id) = &new.client_message_id {
            let existing = message::Entity::find()
                .filter(message::Column::ConversationId.eq(new.conversation_id.as_uuid()))
                .filter(message::Column::ClientMessageId.eq(client_id.as_str()))
                .one(txn)
                .await
                .map_err(repo_error)?;
            if let Some(row) = existing {
                steps.push(Step::Existing(Message::try_from(row)?));
                continue;
            }
        }
        let Some(advanced) = advance(txn, new).await? else {
            steps.push(Step::NotAdvanced(new.conversation_id));
            continue;
        };
        let seq = Seq::new(
            u64::try_from(advanced.last_seq)
                .map_err(|_| RowError::new("conversations", "negative last_seq"))?,
        );
        let timestamp = Timestamp::from_unix_millis(advanced.last_activity_ms)
            .map_err(|_| RowError::new("conversations", "last_activity out of range"))?;
        let row = message_row(new, seq, timestamp)?;
        message::Entity::insert(row.into_active_model())
            .exec_without_returning(txn)
            .await
            .map_err(repo_error)?;
        steps.push(Step::Stored(stored_message(new, seq, timestamp)));
    }
    Ok(steps)
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
    use confab_domain::conversation::{Conversation, ConversationStatus, Metadata};
    use confab_domain::message::{Attachments, ClientMessageId, MessageContent, MessageId, Sender};
    use confab_domain::ports::{BotRepository, ConversationRepository, MessageRepository};
    use confab_domain::session::{Session, SessionId};
    use confab_domain::user::UserId;

    use super::*;
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
        let conversation = Conversation {
            id: ConversationId::from_uuid(uuid::Uuid::now_v7()),
            session_id: SessionId::from_uuid(uuid::Uuid::now_v7()),
            user_id: UserId::parse("alice").expect("user id"),
            bot_id: bot.id.clone(),
            status: ConversationStatus::Active,
            title: None,
            metadata: Metadata::default(),
            created_at: now(),
            last_activity: now(),
            last_message: None,
            message_count: 0,
            last_seq: Seq::ZERO,
            last_user_seq: Seq::ZERO,
            replied_seq: Seq::ZERO,
        };
        let session = Session {
            id: conversation.session_id,
            conversation_id: conversation.id,
            user_id: conversation.user_id.clone(),
            bot_id: bot.id,
            context: serde_json::Map::new(),
            created_at: now(),
            updated_at: now(),
        };
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
            reply_to: None,
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
