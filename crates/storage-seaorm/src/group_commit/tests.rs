//! The group commit's tests: outcomes of batches on both backends, and SQLite's
//! checkpoint and lock waiting.

use std::collections::BTreeSet;
use std::time::Duration;

use confab_domain::conversation::ConversationId;
use confab_domain::message::{Message, MessageContent, Sender, Seq};
use confab_domain::ports::{ConversationRepository, MessageRepository, OwnAppend};
use confab_domain::user::UserId;

use super::*;
use crate::SeaOrmStore;
use crate::fixtures::{conversation, message, now};
use crate::testing::{postgres_temp, postgres_url, sqlite_temp};

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

/// A client's retry of a message stored long before, queued with appends to other
/// conversations: the retry gets the original, and every other append is stored.
async fn a_retry_of_a_stored_message_among_other_appends_gets_the_original(store: SeaOrmStore) {
    let retried = conversation(&store).await.id;
    let original = store
        .append(&message(retried, Some("sent-once")))
        .await
        .expect("first send")
        .into_message();
    let mut others = Vec::new();
    for _ in 0..8 {
        others.push(conversation(&store).await.id);
    }
    let mut messages: Vec<NewMessage> = others.iter().map(|id| message(*id, None)).collect();
    messages.insert(4, message(retried, Some("sent-once")));
    let results = append_together(&store, messages).await;
    let mut stored = 0;
    for result in results {
        match result.expect("append succeeds") {
            Appended::Stored(message) => {
                assert_ne!(message.conversation_id, retried);
                assert_eq!(message.seq, Seq::new(1));
                stored += 1;
            }
            Appended::Existing(message) => assert_eq!(message, original),
        }
    }
    assert_eq!(stored, 8);
    let reloaded = ConversationRepository::get(&store, retried)
        .await
        .expect("conversation");
    assert_eq!(
        (reloaded.last_seq, reloaded.message_count),
        (Seq::new(1), 1)
    );
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
    let mut messages: Vec<NewMessage> = (0..20).map(|_| message(conversation.id, None)).collect();
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
    let mut messages: Vec<NewMessage> = (0..30).map(|_| message(conversation.id, None)).collect();
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

/// Own appends queued together with appends to other conversations: the owner's are
/// stored, each with its conversation as it found it; one to another user's
/// conversation and one repeating a stored `client_message_id` are not taken and
/// change nothing; the plain appends of the batch are stored all the same.
async fn own_appends_in_a_batch_are_stored_with_their_conversation_or_not_taken(
    store: SeaOrmStore,
) {
    let alice = UserId::parse("alice").expect("user id");
    let retried = conversation(&store).await;
    store
        .append(&message(retried.id, Some("sent-once")))
        .await
        .expect("first send");
    let retried = ConversationRepository::get(&store, retried.id)
        .await
        .expect("conversation");
    let mut owned = Vec::new();
    for _ in 0..6 {
        owned.push(conversation(&store).await);
    }
    let foreign = conversation(&store).await;
    let plain = conversation(&store).await;

    let mut offers = vec![
        (message(retried.id, Some("sent-once")), Some(alice.clone())),
        (
            message(foreign.id, None),
            Some(UserId::parse("bob").expect("user id")),
        ),
        (message(plain.id, None), None),
    ];
    offers.extend(
        owned
            .iter()
            .map(|conversation| (message(conversation.id, None), Some(alice.clone()))),
    );
    let tasks: Vec<_> = offers
        .into_iter()
        .map(|(new, owner)| {
            let store = store.clone();
            tokio::spawn(async move {
                let outcome = match &owner {
                    Some(owner) => store.append_own(&new, owner).await.map(Some),
                    None => store.append(&new).await.map(|_| None),
                };
                (new, outcome.expect("no storage error"))
            })
        })
        .collect();
    let mut stored_own = 0;
    for task in tasks {
        let (new, outcome) = task.await.expect("append task");
        let conversation = new.conversation_id;
        match outcome {
            Some(OwnAppend::Stored { message, before }) => {
                let found = owned
                    .iter()
                    .find(|c| c.id == conversation)
                    .expect("only the owner's conversations are stored to");
                assert_eq!(&before, found, "not the conversation as it was");
                assert_eq!(message, new.stored(Seq::new(1), now()));
                stored_own += 1;
            }
            Some(OwnAppend::NotTaken) => {
                assert!(conversation == retried.id || conversation == foreign.id);
            }
            None => assert_eq!(conversation, plain.id),
        }
    }
    assert_eq!(stored_own, owned.len());
    for (id, messages) in [(retried.id, 1), (foreign.id, 0), (plain.id, 1)] {
        let reloaded = ConversationRepository::get(&store, id)
            .await
            .expect("conversation");
        assert_eq!(reloaded.message_count, messages);
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
    a_retry_of_a_stored_message_among_other_appends_gets_the_original,
    two_replies_to_one_message_in_one_batch_store_one_and_the_other_conflicts,
    a_batch_that_fails_half_way_is_retried_append_by_append_and_the_store_goes_on,
    an_append_to_a_missing_conversation_fails_alone_and_the_others_get_gap_free_seqs,
    appends_to_many_conversations_at_once_get_gap_free_seqs_in_each,
    a_duplicate_message_id_across_conversations_fails_alone,
    two_stores_appending_to_the_same_conversations_keep_seqs_gap_free,
    own_appends_in_a_batch_are_stored_with_their_conversation_or_not_taken,
);

/// An in-memory SQLite database has no writer connection of its own: its one pooled
/// connection takes each append in a transaction of its own, own appends included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_appends_on_an_in_memory_database_are_stored_alone_with_their_conversation() {
    let db = crate::connect("sqlite::memory:").await.expect("database");
    crate::migrate(&db).await.expect("migrated");
    own_appends_in_a_batch_are_stored_with_their_conversation_or_not_taken(SeaOrmStore::new(db))
        .await;
}

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
    let remove_copy = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{copy}{suffix}"));
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut last_seen = String::from("nothing read yet");
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the database file never held the 20 messages: {last_seen}"
        );
        std::fs::copy(&file, &copy).expect("database file copied");
        // A copy taken while a checkpoint writes the file may be torn: try again.
        let reader = match crate::connect(&format!("sqlite://{copy}?mode=rw")).await {
            Ok(reader) => reader,
            Err(error) => {
                last_seen = format!("the copy did not open: {error}");
                remove_copy();
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
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
        remove_copy();
        if stored == 20 {
            break;
        }
        last_seen = format!("the file held {stored} of 20 messages");
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

/// The backend's own id of the session behind `connection`.
async fn backend_pid(connection: &mut PoolConnection<Postgres>) -> i32 {
    sea_orm::sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut **connection)
        .await
        .expect("backend pid")
}

/// A stopped writer's PostgreSQL connection serves the next writer while it is fresh,
/// without going back through the pool; one idle for longer goes back to the pool,
/// which tests it before anyone uses it again (a server restart may have cut it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_writers_connection_serves_the_next_writer_while_fresh() {
    let admin = postgres_url().expect("CONFAB_TEST_POSTGRES_URL is set");
    let db = postgres_temp(&admin).await.expect("database");
    let queue = Arc::new(AppendQueue::default());
    let mut connection = db
        .connection()
        .get_postgres_connection_pool()
        .acquire()
        .await
        .expect("a connection");
    let pid = backend_pid(&mut connection).await;

    queue.keep_idle(connection);
    let mut reused = queue
        .idle_connection()
        .expect("the fresh connection is kept");
    assert_eq!(backend_pid(&mut reused).await, pid);
    assert!(queue.idle_connection().is_none(), "it was handed out once");

    let long_ago = Instant::now()
        .checked_sub(crate::connection::POOLED_IDLE_BEFORE_PING)
        .expect("the machine has been up for seconds");
    queue.parked().connections.push((reused, long_ago));
    assert!(
        queue.idle_connection().is_none(),
        "a connection idle past the ping threshold goes back to the pool"
    );
    db.drop_database().await.expect("database dropped");
}
