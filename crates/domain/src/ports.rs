//! The ports: traits through which the domain reaches storage, bots, subscribers, time
//! and id generation. Adapters implement them; the storage contract suite in
//! `testing::contract` checks the `# Errors` promises below for every storage adapter.
//!
//! Besides the traits, this module holds what every user of the ports shares: the
//! [`Ports`] bundle, `publish` and [`pages_after`]. They live here, beside the
//! traits, so that the services, the reply pipeline and administration each import
//! the ports and never one another. This module imports only the model (`cargo
//! xtask tidy` checks it).

use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use crate::analytics::{BucketSummary, SummaryQuery};
use crate::bot::{Bot, BotId};
use crate::conversation::{
    Conversation, ConversationChange, ConversationId, ConversationPage, ConversationSelection,
    ListQuery, PageSize,
};
use crate::error::{BotError, EventBusError, RepoError};
use crate::event::{ConversationEvent, EventKind, SharedEvent};
use crate::handoff::{HandoffChange, HandoffListing};
use crate::lease::{Claim, LeaseHolder, Release};
use crate::message::{
    Appended, Attachments, Feedback, HistoryBound, HistoryPage, HistoryQuery, Message, MessageId,
    NewMessage, Seq, Suggestion,
};
use crate::search::SearchQuery;
use crate::session::{Session, SessionId};
use crate::timestamp::Timestamp;
use crate::user::UserId;

mod webhooks;
#[cfg(any(test, feature = "test-util"))]
pub use webhooks::{MockSecretSource, MockWebhookOutbox, MockWebhookRepository, MockWebhookSender};
pub use webhooks::{
    SecretSource, WebhookOutbox, WebhookRepository, WebhookSendError, WebhookSender,
};

/// Conversations and their sessions, stored together.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait ConversationRepository: Send + Sync {
    /// Stores a new conversation and its session in one transaction.
    ///
    /// # Errors
    /// MUST return `RepoError::Conflict` and store nothing when a conversation with the
    /// same id or a session with the same id exists.
    async fn create(&self, conversation: &Conversation, session: &Session)
    -> Result<(), RepoError>;

    /// Loads one conversation, whoever owns it (ownership is the service's check).
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when no conversation has this id.
    async fn get(&self, id: ConversationId) -> Result<Conversation, RepoError>;

    /// Loads the conversation a session belongs to.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when no session has this id.
    async fn get_by_session(&self, id: SessionId) -> Result<Conversation, RepoError>;

    /// One page of `user`'s conversations matching the query's filter, ordered by
    /// `last_activity` descending, then id descending. `total` counts every match;
    /// `next_cursor` is set exactly when `has_more` is and names the page's last item.
    ///
    /// # Errors
    /// MUST NOT fail for a user with no conversations: that is an empty page.
    async fn list(&self, user: &UserId, query: &ListQuery) -> Result<ConversationPage, RepoError>;

    /// Applies a change and returns the conversation as it now is.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` and change nothing when no conversation has
    /// this id.
    async fn update(
        &self,
        id: ConversationId,
        change: &ConversationChange,
    ) -> Result<Conversation, RepoError>;

    /// Erases a conversation, its session and every one of its messages, in one
    /// transaction.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when no conversation has this id.
    async fn delete(&self, id: ConversationId) -> Result<(), RepoError>;

    /// Ids of up to `limit` conversations whose user messages wait for a bot reply
    /// (`replied_seq < last_user_seq`), oldest activity first.
    ///
    /// # Errors
    /// MUST NOT fail when there are none: that is an empty list.
    async fn with_pending_replies(&self, limit: u32) -> Result<Vec<ConversationId>, RepoError>;

    /// Moves the conversation's handoff state from `change.from` to `change.to`,
    /// provided it still is `change.from`, and in the same transaction:
    /// - sets `handoff_since` to `notice.timestamp`, or clears it back with the bot;
    /// - keeps the log of handoffs that analytics count: a move to `waiting` opens a
    ///   handoff (closing any still open), a claim records its agent and time, a move
    ///   back to the bot closes it;
    /// - appends `notice`, the `system` message that tells the change, exactly as
    ///   [`MessageRepository::append`] would, and returns it stored.
    ///
    /// # Errors
    /// - MUST return `RepoError::Conflict` and change nothing when the state is no
    ///   longer `change.from`: of two agents claiming at once, exactly one succeeds.
    /// - MUST return `RepoError::NotFound` and change nothing when the conversation
    ///   does not exist.
    async fn change_handoff(
        &self,
        id: ConversationId,
        change: &HandoffChange,
        notice: &NewMessage,
    ) -> Result<Message, RepoError>;

    /// Up to `limit` conversations of the listing (waiting for an agent, or held by
    /// one), the longest in their state first: by `handoff_since`, then id.
    ///
    /// # Errors
    /// MUST NOT fail when there are none: that is an empty list.
    async fn in_handoff(
        &self,
        listing: &HandoffListing,
        limit: u32,
    ) -> Result<Vec<Conversation>, RepoError>;
}

/// What [`MessageRepository::append_own`] did.
#[derive(Debug, Clone, PartialEq)]
// Nearly every send is `Stored`: boxing it would allocate on every send to spare
// the rare `NotTaken` some bytes of stack.
#[allow(clippy::large_enum_variant)]
pub enum OwnAppend {
    /// The message was stored with a new seq.
    Stored {
        /// The message as stored.
        message: Message,
        /// Its conversation just before the append: the `last_seq` is the message's
        /// seq minus one, and the rest what the reply pipeline decides from (whether a
        /// reply was pending, who answers).
        before: Conversation,
    },
    /// Nothing was stored: the caller takes the long way.
    NotTaken,
}

/// The messages of conversations.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait MessageRepository: Send + Sync {
    /// Appends a message in one transaction: assigns `seq = last_seq + 1`, stores the
    /// message with `timestamp = max(message.timestamp, previous message's timestamp)`
    /// and updates the conversation's `last_seq`, `message_count`, `last_activity`,
    /// `last_message` (the content's first 200 characters), `last_user_seq` for user
    /// messages and `replied_seq` for messages with `reply_to`, and for user messages
    /// stored while the conversation's handoff state is not `bot` (people answer
    /// those, so the bot must never: the state is read in the same transaction).
    /// Concurrent appends to one conversation get distinct, gap-free seqs.
    ///
    /// # Errors
    /// - MUST return `Ok(Appended::Existing(original))` and store nothing when the
    ///   conversation already holds a message with the same `client_message_id`.
    /// - MUST return `RepoError::Conflict` and store nothing when `reply_to` is set and
    ///   the conversation's `replied_seq` is already at or past `reply_to.seq`: that
    ///   reply was stored before.
    /// - MUST return `RepoError::NotFound` and store nothing when the conversation does
    ///   not exist.
    async fn append(&self, message: &NewMessage) -> Result<Appended, RepoError>;

    /// Appends a user message to its sender's own conversation, making in the same
    /// step the checks a send otherwise reads the conversation for: one trip to
    /// storage per send instead of a read and an append.
    ///
    /// Stores `message` as [`append`](Self::append) would, but only when it is a user
    /// message (`sender` is `User`) that answers nothing (`answers` is `None`), its
    /// conversation exists, belongs to `owner` and is active, and it does not repeat a
    /// stored `client_message_id`. Otherwise it stores nothing and returns [`OwnAppend::NotTaken`], and
    /// the caller takes the long way: it reads the conversation, checks it, and calls
    /// `append`, which tells a retry, an archived or a missing conversation apart.
    ///
    /// The default takes nothing: a store without a cheaper way than the long way
    /// keeps that way, as a send did before this method.
    ///
    /// # Errors
    /// - MUST store nothing and return `NotTaken` (never an error) when the
    ///   conversation is missing, another user's or archived, when it holds a message
    ///   with the same `client_message_id`, or when `message` is not a user message
    ///   or answers one.
    /// - MUST return in `OwnAppend::Stored` the conversation exactly as the append
    ///   found it: concurrent appends to one conversation each see the one before.
    async fn append_own(
        &self,
        message: &NewMessage,
        owner: &UserId,
    ) -> Result<OwnAppend, RepoError> {
        let _ = (message, owner);
        Ok(OwnAppend::NotTaken)
    }

    /// One page of a conversation's history, oldest first: with no bound the newest
    /// `limit` messages; with `before` only the newest `limit` older than it; with
    /// `after` (and maybe `before`) the oldest `limit` newer than it. Bounds are
    /// exclusive. `has_more` tells whether more exist in that direction.
    ///
    /// # Errors
    /// MUST NOT fail for an unknown or empty conversation: that is an empty page with
    /// `has_more == false`.
    async fn history(
        &self,
        conversation: ConversationId,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, RepoError>;

    /// Records that the user message at `seq` needs no stored reply (its bot answers
    /// later by itself): sets `replied_seq` to `seq`, storing no message.
    ///
    /// # Errors
    /// - MUST return `RepoError::Conflict` and change nothing when `replied_seq` is
    ///   already at or past `seq`.
    /// - MUST return `RepoError::NotFound` when the conversation does not exist.
    async fn mark_answered(&self, conversation: ConversationId, seq: Seq) -> Result<(), RepoError>;

    /// Loads one message of a conversation.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when the conversation holds no message with
    /// this id.
    async fn get(&self, conversation: ConversationId, id: MessageId) -> Result<Message, RepoError>;

    /// Sets (or, with `None`, removes) the feedback on a message of the conversation
    /// and returns the message as it now is.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` and change nothing when the conversation
    /// holds no message with this id.
    async fn set_feedback(
        &self,
        conversation: ConversationId,
        id: MessageId,
        feedback: Option<Feedback>,
    ) -> Result<Message, RepoError>;

    /// Messages that hold every word of `query.text` (whole words, compared in
    /// lowercase, as [`crate::search`] defines them) in the conversations of the
    /// query's scope, bot and status, in the query's order from its cursor on: at
    /// most `query.limit + 1` (the one more tells whether another page follows).
    /// Newest first is by timestamp, then id, both descending, and a `Before` cursor
    /// excludes its own message; rank order skips `Offset` results.
    ///
    /// # Errors
    /// MUST NOT fail when nothing matches: that is an empty list.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Message>, RepoError>;
}

/// Session state kept for bots.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Loads a session.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when no session has this id.
    async fn get(&self, id: SessionId) -> Result<Session, RepoError>;

    /// Replaces a session's context and sets its `updated_at`.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` and change nothing when no session has this id.
    async fn save_context(
        &self,
        id: SessionId,
        context: &serde_json::Map<String, serde_json::Value>,
        at: Timestamp,
    ) -> Result<(), RepoError>;
}

/// The registry of bots.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait BotRepository: Send + Sync {
    /// Loads a bot.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when no bot has this id.
    async fn get(&self, id: &BotId) -> Result<Bot, RepoError>;

    /// Every bot, ordered by id.
    ///
    /// # Errors
    /// MUST NOT fail when there are none: that is an empty list.
    async fn list(&self) -> Result<Vec<Bot>, RepoError>;

    /// Creates the bot, or replaces the stored bot with this id, keeping its
    /// `created_at`.
    ///
    /// # Errors
    /// Only storage failures.
    async fn upsert(&self, bot: &Bot) -> Result<(), RepoError>;

    /// Removes a bot.
    ///
    /// # Errors
    /// MUST return `RepoError::NotFound` when no bot has this id.
    async fn delete(&self, id: &BotId) -> Result<(), RepoError>;
}

/// Which instance answers a conversation's pending user messages, when several
/// instances share one database (see [`crate::lease`]). A lease belongs to one
/// [`LeaseHolder`] until a given time; its holder renews it while it works.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait ReplyLeases: Send + Sync {
    /// Claims the conversation's reply work for `holder` until `until`, or renews
    /// `holder`'s lease. Returns whether `holder` holds the lease now. Atomic: of
    /// several holders claiming a free lease at once, exactly one gets it.
    ///
    /// # Errors
    /// - MUST return `Ok(false)` and change nothing when another holder's lease runs
    ///   past `now`.
    /// - MUST return `Ok(true)` when no one holds the lease, when `holder` does, or
    ///   when the last holder's lease ran out at or before `now`.
    /// - MUST return `RepoError::NotFound` when the conversation does not exist.
    async fn claim(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, RepoError>;

    /// Claims as [`claim`](Self::claim) does and, when `holder` holds the lease, reads
    /// the conversation in the same step: the reply worker looks at the conversation
    /// right after its claim, and a store that reads the row it just wrote spares it a
    /// round trip. The default claims and reads nothing (`Claim::Held(None)`), and
    /// the worker reads the conversation itself.
    ///
    /// # Errors
    /// - MUST decide, and change, exactly what [`claim`](Self::claim) would.
    /// - MUST return `Claim::Taken` when `claim` would return `Ok(false)`.
    /// - A conversation returned in `Claim::Held` MUST be the conversation as the claim
    ///   left it, as [`ConversationRepository::get`] would have read it right after.
    /// - MUST return `RepoError::NotFound` when the conversation does not exist.
    async fn claim_reading(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Claim, RepoError> {
        Ok(if self.claim(conversation, holder, now, until).await? {
            Claim::Held(None)
        } else {
            Claim::Taken
        })
    }

    /// Lets go of `holder`'s lease unless user messages wait for a reply, in one
    /// atomic step with respect to appends: a user message stored before the
    /// release is seen by it.
    ///
    /// # Errors
    /// - MUST return `Ok(Release::WorkRemains)` and keep the lease when `holder`
    ///   holds it and `replied_seq < last_user_seq`.
    /// - MUST return `Ok(Release::Released)` when it let go, and when `holder` did not
    ///   hold the lease or the conversation does not exist (nothing to let go of).
    async fn release(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
    ) -> Result<Release, RepoError>;

    /// Ids of up to `limit` conversations whose user messages wait for a reply
    /// (`replied_seq < last_user_seq`) and whose lease is free or ran out at or
    /// before `now`, oldest activity first: work whose holder died or gave up.
    ///
    /// # Errors
    /// MUST NOT fail when there are none: that is an empty list.
    async fn orphaned(&self, now: Timestamp, limit: u32) -> Result<Vec<ConversationId>, RepoError>;

    /// Whether other instances hold these leases too. When they do, a message this
    /// instance stored may have been answered by another before this one's claim
    /// succeeded, so the pipeline reads what is pending instead of answering the
    /// message it was handed.
    fn shared(&self) -> bool {
        true
    }
}

/// What a bot engine is asked to answer.
#[derive(Debug, Clone)]
pub struct BotRequest {
    /// The bot.
    pub bot: Bot,
    /// The conversation.
    pub conversation: Conversation,
    /// Its session, with the bot's context; with an empty context for an engine whose
    /// [`BotEngine::reads_session`] is `false`.
    pub session: Session,
    /// The user message to answer.
    pub message: Message,
    /// Recent history up to and including `message`, oldest first; empty for an
    /// engine whose [`BotEngine::reads_history`] is `false`.
    pub history: Vec<Message>,
}

/// A bot's finished reply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BotReply {
    /// The text.
    pub content: String,
    /// Attachments the bot sends.
    pub attachments: Attachments,
    /// Quick replies the bot offers.
    pub suggestions: Vec<Suggestion>,
    /// The session context to keep, when the bot changed it.
    pub context: Option<serde_json::Map<String, serde_json::Value>>,
    /// Data stored on the reply message, e.g. `{"cut": true}` on a reply the engine
    /// could only deliver in part.
    pub metadata: crate::conversation::Metadata,
    /// Whether the bot asks for a person to take the conversation over (see
    /// [`crate::handoff`]). A reply with no text and no attachments that asks this
    /// stores no message: the handoff's own notice says what happens.
    pub handoff: bool,
}

/// One piece of a reply as an engine produces it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyChunk {
    /// More text; shown to subscribers at once, not stored.
    Delta(String),
    /// The finished reply; ends the stream.
    Done(BotReply),
    /// No reply now: the bot answers later by itself, posting with a bot token (a
    /// webhook that returned `204`). Nothing is stored and the user message counts as
    /// handed over to the bot; ends the stream.
    Deferred,
}

/// Produces a bot's replies.
pub trait BotEngine: Send + Sync {
    /// Answers a user message as a stream of deltas ended by [`ReplyChunk::Done`].
    /// A stream that ends without `Done` is treated as a failed reply.
    ///
    /// # Errors
    /// An item MAY be `Err(BotError)`, which ends the reply as failed; the pipeline
    /// then stores a `system` message saying so.
    fn reply(&self, request: BotRequest) -> BoxStream<'static, Result<ReplyChunk, BotError>>;

    /// Whether the engine reads [`BotRequest::history`]. An engine that answers from
    /// the message (and the session) alone returns `false`, and the pipeline then
    /// gives it an empty history instead of reading the window from storage.
    fn reads_history(&self) -> bool {
        true
    }

    /// Whether the engine reads [`BotRequest::session`]'s context. An engine that
    /// neither reads nor returns a context returns `false`, and the pipeline then
    /// gives it [`Session::new`](crate::session::Session::new) instead of
    /// reading the session from storage.
    fn reads_session(&self) -> bool {
        true
    }
}

/// Finds the engine that serves a bot.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait EngineRegistry: Send + Sync {
    /// The engine for `bot`.
    ///
    /// # Errors
    /// MUST return `BotError::Misconfigured` when no engine of the bot's kind exists
    /// or the bot's settings are unusable.
    fn engine_for(&self, bot: &Bot) -> Result<Arc<dyn BotEngine>, BotError>;
}

/// A stream of the events of one conversation. Every subscriber of the conversation
/// receives the same [`SharedEvent`]s, not copies of them.
pub type EventStream = BoxStream<'static, SharedEvent>;

/// Carries conversation events to every subscriber, on this instance or others.
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes an event to the current subscribers of its conversation.
    ///
    /// # Errors
    /// MUST return `EventBusError::Unavailable` when the bus cannot take the event.
    async fn publish(&self, event: ConversationEvent) -> Result<(), EventBusError>;

    /// Subscribes to a conversation's events from now on. Events published after this
    /// returns are delivered in publication order; a subscriber that falls too far
    /// behind sees its stream end, and resumes from storage.
    ///
    /// # Errors
    /// MUST return `EventBusError::Unavailable` when the bus cannot be reached.
    async fn subscribe(&self, conversation: ConversationId) -> Result<EventStream, EventBusError>;
}

/// The time now.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::new(time::OffsetDateTime::now_utc())
    }
}

/// New ids for conversations, sessions and messages.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
pub trait IdGenerator: Send + Sync {
    /// A new unique id.
    fn new_id(&self) -> uuid::Uuid;
}

/// UUIDv7 ids: unique, and ordered by creation time.
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Generator;

impl IdGenerator for UuidV7Generator {
    fn new_id(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }
}

/// Queries across every user's conversations, for administrators and retention jobs:
/// selections by bot, status and inactivity, and the aggregates of analytics.
///
/// A separate trait from [`ConversationRepository`] so that adapters and embedders
/// without these needs implement nothing more.
#[async_trait]
pub trait ConversationMaintenance: Send + Sync {
    /// Ids of up to `limit` conversations matching `selection` whose id is greater
    /// than `after`, in ascending id order, so that a caller can page through a
    /// selection while it changes.
    ///
    /// # Errors
    /// MUST NOT fail when none match: that is an empty list.
    async fn select(
        &self,
        selection: &ConversationSelection,
        after: Option<ConversationId>,
        limit: u32,
    ) -> Result<Vec<ConversationId>, RepoError>;

    /// How many conversations match `selection`.
    ///
    /// # Errors
    /// MUST NOT fail when none match: that is zero.
    async fn count(&self, selection: &ConversationSelection) -> Result<u64, RepoError>;

    /// The analytics of `query`: one summary per bot and bucket that has any
    /// conversation started or message stored in the range, ordered by bot id then
    /// bucket, computed without loading messages (see [`crate::analytics`] for what
    /// each number counts).
    ///
    /// # Errors
    /// MUST NOT fail for a range with no data: that is an empty list.
    async fn summary(&self, query: &SummaryQuery) -> Result<Vec<BucketSummary>, RepoError>;
}

/// Every port the services and the reply pipeline need; the composition root fills it.
#[derive(Clone)]
pub struct Ports {
    /// Conversations and sessions.
    pub conversations: Arc<dyn ConversationRepository>,
    /// Messages.
    pub messages: Arc<dyn MessageRepository>,
    /// Session contexts.
    pub sessions: Arc<dyn SessionRepository>,
    /// Bots.
    pub bots: Arc<dyn BotRepository>,
    /// Bot engines.
    pub engines: Arc<dyn EngineRegistry>,
    /// Subscribers.
    pub events: Arc<dyn EventBus>,
    /// Which instance answers a conversation's pending messages:
    /// [`SingleInstanceLeases`](crate::reply::SingleInstanceLeases) for a server alone
    /// on its database, leases in shared storage for several.
    pub leases: Arc<dyn ReplyLeases>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Ids.
    pub ids: Arc<dyn IdGenerator>,
}

/// Publishes an event, logging rather than failing: what was stored stays stored, and
/// subscribers that missed the event catch up from storage when they resume.
pub(crate) async fn publish(events: &dyn EventBus, conversation: &Conversation, kind: EventKind) {
    let event = ConversationEvent {
        conversation_id: conversation.id,
        session_id: conversation.session_id,
        kind,
    };
    if let Err(error) = events.publish(event).await {
        tracing::warn!(conversation = %conversation.id, %error, "event not published");
    }
}

/// A conversation's messages after `after` (and before `before`, when set), oldest
/// first, one stream item per page of at most `limit`, read as the stream is polled.
/// After the first page it goes on from the last seq seen, so that messages sharing a
/// timestamp are never skipped, and it ends after the page that says nothing more
/// follows. Every forward walk through a history (waiting for replies, finding
/// unanswered messages, exports) goes through here; following a conversation reads
/// one page per step of its own loop with [`HistoryQuery::after_seq`], the same query.
pub fn pages_after(
    messages: Arc<dyn MessageRepository>,
    conversation: ConversationId,
    after: HistoryBound,
    before: Option<HistoryBound>,
    limit: PageSize,
) -> BoxStream<'static, Result<Vec<Message>, RepoError>> {
    stream::try_unfold(Some(after), move |after| {
        let messages = Arc::clone(&messages);
        async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let query = HistoryQuery {
                before,
                after: Some(after),
                limit,
            };
            let page = messages.history(conversation, &query).await?;
            let next = match page.messages.last() {
                Some(last) if page.has_more => Some(HistoryBound::Seq(last.seq)),
                _ => None,
            };
            Ok(Some((page.messages, next)))
        }
    })
    .boxed()
}
