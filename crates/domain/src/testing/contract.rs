//! The storage contract suite: one set of async checks, written against the
//! repository ports alone, that every storage adapter must pass. Each check tests a
//! promise of the ports' `# Errors` docs (the MUST sentences) or of their
//! descriptions, and DESIGN.md §4 for history and list paging.
//!
//! # How an adapter runs it
//! In an integration test of the adapter's crate (e.g. `tests/storage_contract.rs`),
//! invoke [`storage_contract_tests!`](crate::storage_contract_tests) once, at module
//! level, with an expression that can be called with no argument and returns a
//! future of fresh, empty [`Stores`] (a closure `|| async { … }` or the path of an
//! `async fn`):
//!
//! ```
//! use std::sync::Arc;
//!
//! use confab_domain::testing::InMemoryStore;
//! use confab_domain::testing::contract::Stores;
//!
//! confab_domain::storage_contract_tests!(|| async {
//!     let store = InMemoryStore::new();
//!     Stores {
//!         conversations: Arc::new(store.clone()),
//!         messages: Arc::new(store.clone()),
//!         sessions: Arc::new(store.clone()),
//!         bots: Arc::new(store.clone()),
//!         leases: Arc::new(store),
//!         teardown: None,
//!     }
//! });
//! # fn main() {}
//! ```
//!
//! The macro expands, in the calling module, to one
//! `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` per check, named
//! after the check (`concurrent_appends_get_gap_free_unique_seqs`, …). So:
//!
//! - the calling crate needs `confab-domain` with feature `test-util` and `tokio`
//!   with features `macros` and `rt-multi-thread` among its dev-dependencies;
//! - invoke it once per module; to run the suite against several backends, invoke
//!   it in one module per backend (`mod sqlite { … }`, `mod postgres { … }`);
//! - every call of the expression must return stores that share nothing with those
//!   of other calls (checks run in parallel) and hold no bots, conversations or
//!   messages;
//! - `teardown`, when set, runs after the check, whether the check passed or
//!   panicked (the check runs in its own task), e.g. to drop a PostgreSQL test
//!   database:
//!
//! ```text
//! confab_domain::storage_contract_tests!(|| async {
//!     let db = TestDatabase::create().await; // the adapter's own helper
//!     let repos = SeaOrmRepositories::new(db.connection());
//!     Stores {
//!         conversations: Arc::new(repos.clone()),
//!         messages: Arc::new(repos.clone()),
//!         sessions: Arc::new(repos.clone()),
//!         bots: Arc::new(repos.clone()),
//!         leases: Arc::new(repos),
//!         teardown: Some(Box::pin(async move { db.drop().await })),
//!     }
//! });
//! ```
//!
//! Each check is also a public `async fn(Repositories)` in the submodules below, for
//! an adapter that wants to run one on its own through [`run`].

use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::bot::BotId;
use crate::conversation::{
    Conversation, ConversationChange, ConversationFilter, ConversationId, ConversationStatus,
    ListPosition, ListQuery, PageSize,
};
use crate::error::RepoError;
use crate::message::{Appended, HistoryBound, HistoryPage, HistoryQuery, Message, NewMessage, Seq};
use crate::ports::{
    BotRepository, ConversationRepository, MessageRepository, ReplyLeases, SessionRepository,
};
use crate::session::{Session, SessionId};
use crate::timestamp::Timestamp;
use crate::user::UserId;

use super::fakes::TEST_START_MILLIS;
use super::fixtures::{bot_reply, seed_bot_in, test_bot, user_message};
use super::memory::InMemoryStore;

pub mod bots;
pub mod conversations;
pub mod feedback;
pub mod handoff;
pub mod history;
pub mod leases;
pub mod messages;
pub mod own_appends;
pub mod search;
pub mod sessions;

/// Fresh, empty stores of the adapter under test, and how to dispose of them.
pub struct Stores {
    /// The conversation repository.
    pub conversations: Arc<dyn ConversationRepository>,
    /// The message repository.
    pub messages: Arc<dyn MessageRepository>,
    /// The session repository.
    pub sessions: Arc<dyn SessionRepository>,
    /// The bot repository.
    pub bots: Arc<dyn BotRepository>,
    /// The reply leases.
    pub leases: Arc<dyn ReplyLeases>,
    /// Runs once the check is over, passed or failed (e.g. drops a test database).
    pub teardown: Option<BoxFuture<'static, ()>>,
}

impl Stores {
    /// Fresh stores on one new [`InMemoryStore`].
    pub fn in_memory() -> Self {
        let store = InMemoryStore::new();
        Self {
            conversations: Arc::new(store.clone()),
            messages: Arc::new(store.clone()),
            sessions: Arc::new(store.clone()),
            bots: Arc::new(store.clone()),
            leases: Arc::new(store),
            teardown: None,
        }
    }

    /// The repositories, apart from the teardown.
    pub fn split(self) -> (Repositories, Option<BoxFuture<'static, ()>>) {
        let repositories = Repositories {
            conversations: self.conversations,
            messages: self.messages,
            sessions: self.sessions,
            bots: self.bots,
            leases: self.leases,
        };
        (repositories, self.teardown)
    }
}

/// The repositories a check runs against.
#[derive(Clone)]
pub struct Repositories {
    /// The conversation repository.
    pub conversations: Arc<dyn ConversationRepository>,
    /// The message repository.
    pub messages: Arc<dyn MessageRepository>,
    /// The session repository.
    pub sessions: Arc<dyn SessionRepository>,
    /// The bot repository.
    pub bots: Arc<dyn BotRepository>,
    /// The reply leases.
    pub leases: Arc<dyn ReplyLeases>,
}

/// Runs one check on `stores` in a task of its own, then the stores' teardown, then
/// re-raises the check's panic if it had one, so that the teardown runs either way.
///
/// # Panics
/// When the check panics (a failed assertion), with the check's own panic.
pub async fn run<C, F>(stores: Stores, check: C)
where
    C: FnOnce(Repositories) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let (repositories, teardown) = stores.split();
    let outcome = tokio::spawn(check(repositories)).await;
    if let Some(teardown) = teardown {
        teardown.await;
    }
    if let Err(error) = outcome {
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("the check did not finish: {error}"),
        }
    }
}

/// Expands to the storage contract suite: one
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` per check of
/// [`testing::contract`](crate::testing::contract), named after the check, each
/// running it on the stores that `($fresh)().await` returns. See the
/// [module docs](crate::testing::contract) for how to call it.
#[macro_export]
macro_rules! storage_contract_tests {
    (@checks $fresh:expr; $($module:ident: [$($check:ident),+ $(,)?])+) => {
        $($(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                $crate::testing::contract::run(
                    ($fresh)().await,
                    $crate::testing::contract::$module::$check,
                )
                .await;
            }
        )+)+
    };
    ($fresh:expr $(,)?) => {
        $crate::storage_contract_tests! { @checks $fresh;
            messages: [
                concurrent_appends_get_gap_free_unique_seqs,
                timestamps_never_decrease_in_seq_order_even_when_given_ones_go_back,
                an_appended_message_is_stored_with_every_field,
                a_repeated_client_message_id_returns_the_original_and_stores_nothing,
                concurrent_retries_with_one_client_message_id_store_one_message,
                the_same_client_message_id_in_another_conversation_is_independent,
                a_reply_advances_replied_seq_and_a_second_reply_to_that_seq_conflicts,
                marking_a_message_answered_advances_replied_seq_once_and_stores_nothing,
                appending_to_an_unknown_conversation_is_not_found_and_stores_nothing,
                appending_updates_the_counters_and_the_last_message_preview,
                getting_a_message_returns_it_and_an_unknown_or_foreign_one_is_not_found,
            ]
            own_appends: [
                an_own_append_is_stored_as_an_append_with_the_conversation_before_it,
                an_own_append_to_a_missing_foreign_or_archived_conversation_or_a_retry_is_not_taken,
                an_own_append_during_a_handoff_is_stored_answered,
                concurrent_own_appends_each_see_the_conversation_the_one_before_left,
            ]
            history: [
                history_without_bounds_returns_the_newest_messages_oldest_first,
                history_before_a_seq_returns_the_newest_older_messages_oldest_first,
                history_after_a_seq_returns_the_oldest_newer_messages_oldest_first,
                history_between_two_bounds_returns_the_oldest_messages_between_them,
                history_time_bounds_are_exclusive_even_when_timestamps_tie,
                history_time_bounds_find_what_comparing_every_time_finds,
                history_of_an_empty_conversation_is_an_empty_page,
                history_of_an_unknown_conversation_is_an_empty_page,
                history_pages_of_one_and_of_one_hundred_messages,
                paging_backwards_and_forwards_visits_every_message_once,
            ]
            conversations: [
                a_created_conversation_and_its_session_can_be_read_back,
                creating_a_conversation_with_a_taken_id_conflicts_and_stores_nothing,
                an_unknown_conversation_or_session_is_not_found,
                listing_shows_only_the_users_own_conversations,
                listing_filters_by_bot_and_by_status_and_by_both,
                listing_orders_by_last_activity_then_id_descending,
                a_conversation_that_gets_a_message_moves_to_the_top_of_the_list,
                offset_paging_walks_every_conversation_once,
                cursor_paging_walks_every_conversation_once_and_stays_stable,
                list_pages_report_total_has_more_and_next_cursor,
                updating_changes_status_title_and_metadata_only,
                updating_an_unknown_conversation_is_not_found,
                deleting_erases_the_conversation_its_session_and_messages,
                deleting_an_unknown_conversation_is_not_found,
                conversations_with_pending_replies_are_listed_oldest_activity_first,
            ]
            handoff: [
                a_handoff_moves_through_its_states_with_a_notice_each_time,
                a_handoff_change_from_a_stale_state_conflicts_and_changes_nothing,
                concurrent_claims_of_a_waiting_conversation_have_one_winner,
                user_messages_during_a_handoff_need_no_bot_reply,
                conversations_in_handoff_are_listed_by_state_longest_first,
                changing_the_handoff_of_an_unknown_conversation_is_not_found,
            ]
            feedback: [
                feedback_is_kept_on_its_message_replaced_and_removed,
                feedback_on_an_unknown_message_is_not_found,
            ]
            search: [
                search_finds_whole_words_in_any_case_newest_first,
                search_keeps_to_its_scope_and_forgets_deleted_conversations,
                search_filters_by_bot_and_status,
                search_pages_walk_every_match_once_in_both_orders,
                search_finds_the_newest_matches_whatever_order_they_were_stored_in,
            ]
            sessions: [
                a_session_context_round_trips,
                an_unknown_session_is_not_found,
            ]
            leases: [
                a_lease_has_one_holder_until_it_runs_out,
                leases_of_different_conversations_are_independent,
                concurrent_claims_have_exactly_one_winner,
                claiming_an_unknown_conversation_is_not_found,
                a_claim_that_reads_returns_the_conversation_as_it_left_it,
                a_lease_is_kept_while_user_messages_wait_and_let_go_after,
                orphaned_work_is_pending_work_without_a_live_lease,
            ]
            bots: [
                upserting_a_bot_creates_then_updates_it_keeping_created_at,
                bots_are_listed_by_id,
                deleting_a_bot_removes_it_and_an_unknown_one_is_not_found,
            ]
        }
    };
}

// Fixtures shared by the checks. Times are fixed offsets from the test epoch so that
// every check is deterministic; ids are fresh UUIDv7s, unique across checks that
// share a database.

/// The test epoch plus `offset` milliseconds.
fn at(offset: i64) -> Timestamp {
    Timestamp::from_unix_millis(TEST_START_MILLIS + offset).expect("test times are in range")
}

fn user_id(id: &str) -> UserId {
    UserId::parse(id).expect("valid user id")
}

fn bot_id(id: &str) -> BotId {
    BotId::parse(id).expect("valid bot id")
}

fn new_uuid() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// A conversation of `user` with `bot`, created at `created`, with no messages.
fn new_conversation(user: &str, bot: &str, created: Timestamp) -> (Conversation, Session) {
    new_conversation_with_id(ConversationId::from_uuid(new_uuid()), user, bot, created)
}

fn new_conversation_with_id(
    id: ConversationId,
    user: &str,
    bot: &str,
    created: Timestamp,
) -> (Conversation, Session) {
    let conversation = Conversation::begun(
        id,
        SessionId::from_uuid(new_uuid()),
        user_id(user),
        bot_id(bot),
        created,
    );
    let session = Session::new(&conversation);
    (conversation, session)
}

/// Stores the bot (storage may require it) and a new conversation with it.
async fn create(r: &Repositories, user: &str, bot: &str, created: Timestamp) -> Conversation {
    let (conversation, session) = new_conversation(user, bot, created);
    store(r, &conversation, &session).await;
    conversation
}

async fn store(r: &Repositories, conversation: &Conversation, session: &Session) {
    seed_bot_in(&*r.bots, conversation.bot_id.as_str()).await;
    r.conversations
        .create(conversation, session)
        .await
        .expect("creating a conversation");
}

/// Appends a message that must be stored, and returns it as stored.
async fn append(r: &Repositories, message: &NewMessage) -> Message {
    append_to(&*r.messages, message).await
}

async fn append_to(messages: &dyn MessageRepository, message: &NewMessage) -> Message {
    match messages.append(message).await {
        Ok(Appended::Stored(stored)) => stored,
        other => panic!("expected the message to be stored, got {other:?}"),
    }
}

/// A conversation with one user message per timestamp, in order.
async fn conversation_with(r: &Repositories, times: &[Timestamp]) -> (Conversation, Vec<Message>) {
    let conversation = create(r, "ana", "alpha", at(0)).await;
    let mut stored = Vec::new();
    for (n, time) in times.iter().enumerate() {
        let content = format!("message {}", n + 1);
        stored.push(append(r, &user_message(&conversation, &content, *time)).await);
    }
    let conversation = get(r, conversation.id).await;
    (conversation, stored)
}

/// Sets the conversation's status; returns the conversation as changed.
async fn set_status(
    r: &Repositories,
    id: ConversationId,
    status: ConversationStatus,
) -> Conversation {
    r.conversations
        .update(
            id,
            &ConversationChange {
                status: Some(status),
                ..ConversationChange::default()
            },
        )
        .await
        .expect("changing the status")
}

async fn get(r: &Repositories, id: ConversationId) -> Conversation {
    r.conversations
        .get(id)
        .await
        .expect("loading a conversation")
}

fn history_query(
    before: Option<HistoryBound>,
    after: Option<HistoryBound>,
    limit: u32,
) -> HistoryQuery {
    HistoryQuery {
        before,
        after,
        limit: PageSize::parse(u64::from(limit), PageSize::HISTORY_MAX).expect("valid limit"),
    }
}

async fn history(
    r: &Repositories,
    conversation: ConversationId,
    before: Option<HistoryBound>,
    after: Option<HistoryBound>,
    limit: u32,
) -> HistoryPage {
    r.messages
        .history(conversation, &history_query(before, after, limit))
        .await
        .expect("history never fails")
}

/// Every message of a conversation, read forward page by page.
async fn all_messages(r: &Repositories, conversation: ConversationId) -> Vec<Message> {
    let mut all: Vec<Message> = Vec::new();
    loop {
        let after = all.last().map_or(Seq::ZERO, |m| m.seq);
        let page = history(r, conversation, None, Some(HistoryBound::Seq(after)), 100).await;
        let has_more = page.has_more;
        assert!(
            !(has_more && page.messages.is_empty()),
            "an empty page must not claim more"
        );
        all.extend(page.messages);
        if !has_more {
            return all;
        }
    }
}

fn seqs(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.seq.get()).collect()
}

fn seq(n: u64) -> Option<HistoryBound> {
    Some(HistoryBound::Seq(Seq::new(n)))
}

fn time(offset: i64) -> Option<HistoryBound> {
    Some(HistoryBound::Time(at(offset)))
}

fn list_query(filter: ConversationFilter, position: ListPosition, limit: u32) -> ListQuery {
    ListQuery {
        filter,
        position,
        limit: PageSize::parse(u64::from(limit), PageSize::LIST_MAX).expect("valid limit"),
    }
}

fn ids(conversations: &[Conversation]) -> Vec<ConversationId> {
    conversations.iter().map(|c| c.id).collect()
}

/// The order lists must have: last activity descending, then id descending.
fn sorted_for_list(conversations: &mut [Conversation]) {
    conversations.sort_by_key(|c| std::cmp::Reverse((c.last_activity, c.id)));
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, RepoError>, what: &str) {
    assert!(
        matches!(result, Err(RepoError::NotFound)),
        "{what}: expected RepoError::NotFound, got {result:?}"
    );
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, RepoError>, what: &str) {
    assert!(
        matches!(result, Err(RepoError::Conflict)),
        "{what}: expected RepoError::Conflict, got {result:?}"
    );
}

/// Ids of `n` fresh conversations in increasing order, for checks of the id
/// tie-break.
fn increasing_ids(n: usize) -> Vec<ConversationId> {
    let mut ids: Vec<ConversationId> = (0..n)
        .map(|_| ConversationId::from_uuid(new_uuid()))
        .collect();
    ids.sort();
    ids
}

/// A bot as [`test_bot`] makes it, under another name.
fn named_bot(id: &str, name: &str) -> crate::bot::Bot {
    crate::bot::Bot {
        name: crate::bot::BotName::parse(name).expect("valid bot name"),
        ..test_bot(id)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    fn stores_with_teardown(done: &Arc<AtomicBool>) -> Stores {
        let done = Arc::clone(done);
        Stores {
            teardown: Some(Box::pin(async move { done.store(true, Ordering::SeqCst) })),
            ..Stores::in_memory()
        }
    }

    #[tokio::test]
    async fn teardown_runs_and_the_panic_resumes_when_a_check_fails() {
        let torn_down = Arc::new(AtomicBool::new(false));
        let stores = stores_with_teardown(&torn_down);
        let outcome = tokio::spawn(run(stores, |_| async { panic!("the check failed") })).await;
        assert!(torn_down.load(Ordering::SeqCst), "teardown did not run");
        let panic = outcome
            .expect_err("the check's panic was swallowed")
            .into_panic();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"the check failed"));
    }

    #[tokio::test]
    async fn teardown_runs_after_a_check_that_passes() {
        let torn_down = Arc::new(AtomicBool::new(false));
        run(
            stores_with_teardown(&torn_down),
            |r: Repositories| async move {
                assert!(r.bots.list().await.expect("listing").is_empty());
            },
        )
        .await;
        assert!(torn_down.load(Ordering::SeqCst), "teardown did not run");
    }
}
