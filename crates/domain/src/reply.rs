//! The reply pipeline: asks a conversation's bot engine to answer each user message,
//! in seq order, exactly once, and stores the answer.
//!
//! The pending work is durable without a queue table of its own: a conversation
//! whose `replied_seq` is below its `last_user_seq` has user messages waiting, and
//! storing a reply advances `replied_seq` in the same transaction as the reply (see
//! [`MessageRepository::append`](crate::ports::MessageRepository::append)). A server
//! that dies mid-reply therefore finds the work again at start-up
//! ([`ReplyPipeline::recover`]), and a reply stored twice is refused by storage.
//! With several instances, a lease decides which one answers (see [`crate::lease`]).
//!
//! # Layout
//! - this file: the pipeline, one worker per conversation, leases and sweeps.
//! - `answer`: producing one answer and storing it.
//! - `handed`: the messages stored on this instance, handed to their worker so that
//!   it need not read them back.
//! - `handoff`: moving a conversation between its bot and people, for bots that
//!   ask for a person and for the service's callers.
//! - `limits`: bots' own timeouts and concurrency, and replies in flight.
//! - `streaming`: the text streamed so far of each reply, for late subscribers.
//! - `leases`: [`SingleInstanceLeases`], the leases of a server alone on its database.

mod answer;
mod handed;
mod handoff;
mod leases;
mod limits;
mod streaming;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use self::handed::{Handed, Mailbox};
pub(crate) use self::handoff::move_handoff;
pub use self::leases::SingleInstanceLeases;
use self::limits::InFlight;
use self::streaming::Streaming;
pub use self::streaming::StreamingReply;
use crate::bot::BotId;
use crate::conversation::{Conversation, ConversationId};
use crate::error::{DomainError, RepoError, error_chain};
use crate::lease::{Claim, LeaseHolder, Release};
use crate::message::Message;
use crate::ports::Ports;
use crate::retry::Backoff;
use crate::timestamp::Timestamp;

/// How replies are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplySettings {
    /// How long a bot may take for one reply before a `system` message says it failed.
    pub timeout: Duration,
    /// How many recent messages a bot engine is given.
    pub history_window: u32,
    /// How long a claim on a conversation's reply work lasts unless renewed (see
    /// [`crate::lease`]): the time after which another instance takes over the work
    /// of one that died. The holder renews it three times per period.
    pub lease: Duration,
}

impl Default for ReplySettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            history_window: 20,
            lease: Duration::from_secs(10),
        }
    }
}

/// How many orphaned conversations one sweep schedules at most; the next sweep
/// takes the rest.
const SWEEP_BATCH: u32 = 1_000;

/// How many conversations with pending work [`ReplyPipeline::recover`] schedules at
/// most.
pub const RECOVER_BATCH: u32 = 10_000;

/// How long reply work that found storage unavailable waits before it tries again.
/// Each try may ask the bot again before it fails to store the answer (a full disk
/// still reads), so a long outage must not turn into a bot call every few seconds
/// per conversation.
const RETRY: Backoff = Backoff {
    first: Duration::from_millis(50),
    longest: Duration::from_secs(30),
};

/// The sender id of messages confab writes itself.
pub const SYSTEM_SENDER_ID: &str = "confab";

/// Runs at most one worker per conversation, which answers its pending user messages
/// one after another.
pub struct ReplyPipeline {
    ports: Ports,
    settings: ReplySettings,
    /// This instance, as the holder of reply leases.
    holder: LeaseHolder,
    /// Conversations with a running worker, each with its mailbox: whether more work
    /// arrived since the worker last looked, and the messages handed to it. A std
    /// mutex: it is held for a map operation, never across an await.
    workers: Mutex<HashMap<ConversationId, Mailbox>>,
    /// The text streamed so far of each reply being produced, for subscribers that
    /// arrive mid-reply (they get it as one snapshot delta).
    streaming: Streaming,
    /// Each bot's concurrency limit and the semaphore enforcing it; replaced when
    /// the limit changes.
    bot_permits: Mutex<HashMap<BotId, (usize, Arc<Semaphore>)>>,
    tasks: Arc<InFlight>,
    /// Set by [`shut_down`](Self::shut_down): workers waiting to try again after a
    /// storage failure stop waiting and leave their work to the next start.
    stopping: tokio::sync::watch::Sender<bool>,
}

impl ReplyPipeline {
    pub(crate) fn new(ports: Ports, settings: ReplySettings) -> Self {
        Self {
            holder: LeaseHolder::from_uuid(ports.ids.new_id()),
            ports,
            settings,
            workers: Mutex::new(HashMap::new()),
            streaming: Streaming::default(),
            bot_permits: Mutex::new(HashMap::new()),
            tasks: Arc::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Makes sure the conversation's pending user messages get answered.
    pub fn schedule(self: &Arc<Self>, conversation: ConversationId) {
        self.start_worker(conversation, None, None);
    }

    /// Takes on the user message `stored`, just appended to `read` (the conversation
    /// as it was read before the append).
    ///
    /// When nothing was pending in `read` and nothing was stored between that read
    /// and the append, `stored` is the only message waiting, and the worker answers
    /// it without reading back what is pending (see [`start_worker`](Self::start_worker)):
    /// the common case, spared a round trip to storage. Otherwise the worker reads
    /// what is pending, except for the history when the messages handed to it are all
    /// that is pending (`handed`). Answering a later message first would move
    /// `replied_seq` past an earlier one and skip it, which is why the shortcuts need
    /// `read` to be the conversation as the append found it.
    pub(crate) fn stored(self: &Arc<Self>, read: &Conversation, stored: &Message) {
        // During a handoff storage marks the message answered as it stores it, and
        // the worker finds nothing pending; it looks all the same, for the message
        // stored just after an agent gave the conversation back.
        let handed =
            (read.handoff.bot_answers() && stored.seq == read.last_seq.next()).then(|| Handed {
                previous_user_seq: read.last_user_seq,
                message: stored.clone(),
            });
        let alone = handed
            .as_ref()
            .filter(|_| !read.has_pending_replies())
            .map(|_| {
                let mut now = read.clone();
                now.record(stored);
                now
            });
        self.start_worker(read.id, handed, alone);
    }

    /// Has the conversation's worker answer what is pending, `handed` (just stored
    /// here) among it, starting one unless it runs already. With `alone` (the
    /// conversation as it stands with `handed` stored), `handed` is the only message
    /// pending and a new worker answers it without looking; a worker that runs
    /// already takes it in its turn instead.
    fn start_worker(
        self: &Arc<Self>,
        id: ConversationId,
        handed: Option<Handed>,
        alone: Option<Conversation>,
    ) {
        let known = {
            let mut workers = lock(&self.workers);
            if let Some(mailbox) = workers.get_mut(&id) {
                mailbox.rerun = true;
                mailbox.hand_in(handed);
                return;
            }
            // Handed in even when answered alone: with shared leases the worker may
            // find it is not alone after all, and answers it with the rest.
            let known = alone.zip(handed.as_ref().map(|handed| handed.message.clone()));
            let mut mailbox = Mailbox::default();
            mailbox.hand_in(handed);
            workers.insert(id, mailbox);
            known
        };
        let pipeline = Arc::clone(self);
        let guard = self.tasks.enter();
        tokio::spawn(async move {
            let _guard = guard;
            pipeline.work(id, known).await;
        });
    }

    /// Schedules the conversations that have user messages waiting for a reply, e.g.
    /// after a restart: at most [`RECOVER_BATCH`] of them, those with the oldest
    /// activity first. Returns how many were scheduled.
    ///
    /// Past that number the rest wait: for the sweep with shared leases, otherwise for
    /// their next message or the next restart. Paging further would need a cursor
    /// the port does not offer, and the first conversations stay pending (and listed
    /// first) until their workers finish.
    pub async fn recover(self: &Arc<Self>) -> Result<usize, DomainError> {
        let pending = self
            .ports
            .conversations
            .with_pending_replies(RECOVER_BATCH)
            .await?;
        for conversation in &pending {
            self.schedule(*conversation);
        }
        Ok(pending.len())
    }

    /// The reply being streamed in a conversation right now, if any.
    pub fn streaming_reply(&self, conversation: ConversationId) -> Option<StreamingReply> {
        self.streaming.get(conversation)
    }

    /// Waits, at shutdown, until no reply is being produced, or `timeout` passes;
    /// returns whether all work finished. Workers waiting to try again after a
    /// storage failure stop at once: their work is durable, and the next start's
    /// [`recover`](Self::recover) (or another instance's sweep) takes it.
    pub async fn shut_down(&self, timeout: Duration) -> bool {
        self.stopping.send_replace(true);
        self.drain(timeout).await
    }

    /// Waits until no reply is being produced, or `timeout` passes. Returns whether
    /// all work finished.
    pub async fn drain(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.tasks.idle())
            .await
            .is_ok()
    }

    /// One conversation's worker: claims the conversation's reply lease, answers
    /// until nothing is pending, lets go, and goes round again if more work arrived
    /// on this instance meanwhile.
    async fn work(
        self: Arc<Self>,
        conversation: ConversationId,
        mut known: Option<(Conversation, Message)>,
    ) {
        // Tries in a row that found storage unavailable: each waits longer.
        let mut failures = 0;
        loop {
            let claimed = self.claim_reading(conversation).await;
            let held = matches!(claimed, Ok(Claim::Held(_)));
            let outcome = match claimed {
                // Another instance holds the lease: it answers everything pending
                // before it lets go, this message included.
                Ok(Claim::Taken) => Ok(()),
                Ok(Claim::Held(read)) => {
                    tokio::select! {
                        outcome = self.answer_while_held(conversation, &mut known, read.map(|read| *read)) => outcome.map_err(Some),
                        lost = self.keep_lease(conversation) => Err(lost),
                    }
                }
                Err(error) => Err(Some(error)),
            };
            match outcome {
                Ok(()) => failures = 0,
                // Alone on its database, no sweep would come back to the work: the
                // worker tries again itself once storage may be back, the messages
                // stored meanwhile included (they raise the rerun flag).
                Err(Some(error)) if error.is_unavailable() && !self.ports.leases.shared() => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(%conversation, error = %error_chain(&error), "reply work waits for storage; it tries again until it can");
                    }
                    let mut stopping = self.stopping.subscribe();
                    tokio::select! {
                        () = tokio::time::sleep(RETRY.after(failures, conversation.as_uuid())) => continue,
                        _ = stopping.wait_for(|stopping| *stopping) => {
                            lock(&self.workers).remove(&conversation);
                            return;
                        }
                    }
                }
                // The lease, if held, is left to run out: the sweep of whichever
                // instance comes first (this one's included) retries then.
                Err(Some(error)) => {
                    tracing::error!(%conversation, error = %error_chain(&error), "reply work stopped; it resumes on the next message, sweep or restart");
                }
                Err(None) => {
                    tracing::warn!(%conversation, "reply lease lost to another instance; it answers from here");
                }
            }
            let mut workers = lock(&self.workers);
            match workers.get_mut(&conversation) {
                Some(mailbox) if mailbox.rerun && held => {
                    mailbox.rerun = false;
                }
                _ => {
                    workers.remove(&conversation);
                    return;
                }
            }
        }
    }

    /// Answers the conversation's pending user messages while this instance holds
    /// its lease, then lets the lease go once storage confirms nothing is pending.
    /// `claimed` is the conversation as the claim left it, when the claim read it:
    /// the first look starts from it instead of reading it again.
    async fn answer_while_held(
        &self,
        conversation: ConversationId,
        known: &mut Option<(Conversation, Message)>,
        mut claimed: Option<Conversation>,
    ) -> Result<(), DomainError> {
        if self.ports.leases.shared()
            && let Some((_, message)) = known.take()
        {
            // Another instance may have held the lease when the message was stored,
            // and answered it since: only storage knows what is still pending. The
            // message is still the only one waiting when nothing answered it and no
            // user message followed it (none before it was pending when it was
            // stored), which the conversation's counters tell without reading the
            // history.
            let now = match claimed.take() {
                Some(now) => now,
                None => match self.ports.conversations.get(conversation).await {
                    Ok(now) => now,
                    Err(RepoError::NotFound) => return Ok(()),
                    Err(error) => return Err(error.into()),
                },
            };
            if now.replied_seq < message.seq && now.last_user_seq == message.seq {
                *known = Some((now, message));
            } else {
                // Read after the claim either way: the look below starts from it.
                claimed = Some(now);
            }
        }
        if known.is_some() {
            // Answering the lone message moves on from what the claim read: a look
            // after it must read again.
            claimed = None;
        }
        loop {
            match known.take() {
                Some((snapshot, message)) => self.answer(&snapshot, message).await?,
                None => self.answer_pending(conversation, claimed.take()).await?,
            }
            {
                let mut workers = lock(&self.workers);
                if let Some(mailbox) = workers.get_mut(&conversation)
                    && mailbox.rerun
                {
                    mailbox.rerun = false;
                    continue;
                }
            }
            match self.ports.leases.release(conversation, self.holder).await? {
                Release::Released => return Ok(()),
                // Stored on another instance since the last look, whose worker found
                // the lease taken and left the message to this one.
                Release::WorkRemains => {}
            }
        }
    }

    /// Claims this instance's lease on the conversation's reply work, reading the
    /// conversation in the same step where storage can.
    async fn claim_reading(&self, conversation: ConversationId) -> Result<Claim, DomainError> {
        let (now, until) = self.lease_from_now();
        match self
            .ports
            .leases
            .claim_reading(conversation, self.holder, now, until)
            .await
        {
            Ok(claim) => Ok(claim),
            // Deleted meanwhile: nothing is left to answer.
            Err(RepoError::NotFound) => Ok(Claim::Taken),
            Err(error) => Err(error.into()),
        }
    }

    /// Renews this instance's lease on the conversation's reply work; a renewal
    /// needs no read of the conversation.
    async fn renew(&self, conversation: ConversationId) -> Result<bool, DomainError> {
        let (now, until) = self.lease_from_now();
        match self
            .ports
            .leases
            .claim(conversation, self.holder, now, until)
            .await
        {
            Ok(held) => Ok(held),
            // Deleted meanwhile: nothing is left to answer.
            Err(RepoError::NotFound) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Now, and when a lease taken now runs out.
    fn lease_from_now(&self) -> (Timestamp, Timestamp) {
        let now = self.ports.clock.now();
        (now, now.saturating_add(self.settings.lease))
    }

    /// Renews the lease three times per lease period, for as long as it is polled;
    /// returns only when the lease is lost (`None`: taken over after this instance
    /// failed to renew in time) or cannot be renewed (the error), so that the work
    /// stops before another instance asks the bot the same question.
    async fn keep_lease(&self, conversation: ConversationId) -> Option<DomainError> {
        let period = (self.settings.lease / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(period).await;
            match self.renew(conversation).await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => return Some(error),
            }
        }
    }

    /// Schedules the conversations whose pending work no live instance holds: work
    /// whose holder died or stopped, once its lease ran out. Returns how many were
    /// scheduled.
    pub async fn sweep(self: &Arc<Self>) -> Result<usize, DomainError> {
        let orphaned = self
            .ports
            .leases
            .orphaned(self.ports.clock.now(), SWEEP_BATCH)
            .await?;
        for conversation in &orphaned {
            self.schedule(*conversation);
        }
        Ok(orphaned.len())
    }

    /// Sweeps (see [`sweep`](Self::sweep)) every `interval` until `stopped`
    /// completes. A failed sweep is logged and tried again at the next tick.
    pub async fn run_sweeps(
        self: Arc<Self>,
        interval: Duration,
        stopped: impl std::future::Future<Output = ()>,
    ) {
        let sweeps = async {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match self.sweep().await {
                    Ok(0) => {}
                    Ok(taken) => {
                        tracing::info!(
                            conversations = taken,
                            "taking over reply work whose lease ran out"
                        );
                    }
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), "sweep for orphaned reply work failed");
                    }
                }
            }
        };
        tokio::select! {
            () = sweeps => {}
            () = stopped => {}
        }
    }
}

/// Locks a mutex that is never held across an await; a panic while it was held
/// leaves plain data behind, so the poison is ignored.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::Semaphore;

    use super::*;
    use crate::error::BotError;
    use crate::event::{ConversationEvent, EventKind};
    use crate::message::{MessageId, Sender, Seq};
    use crate::ports::{BotReply, ReplyLeases};
    use crate::ports::{MockEngineRegistry, MockMessageRepository, MockSessionRepository};
    use crate::service::{ConversationService, MessageDraft};
    use crate::session::Session;
    use crate::testing::{
        InMemoryStore, ScriptedEngine, TestPorts, bot_reply, start_conversation, user, user_message,
    };
    use crate::timestamp::Timestamp;

    const DRAIN: Duration = Duration::from_secs(10);

    /// A conversation of `ana` with the `echo` bot, served by `engine`.
    struct Setup {
        fakes: TestPorts,
        service: ConversationService,
        conversation: Conversation,
    }

    fn settings(timeout: Duration) -> ReplySettings {
        ReplySettings {
            timeout,
            history_window: 20,
            lease: Duration::from_secs(10),
        }
    }

    async fn setup(fakes: TestPorts, settings: ReplySettings) -> Setup {
        fakes.seed_bot("echo");
        let service = fakes.service(settings);
        let conversation = start_conversation(&service, &user("ana"), "echo").await;
        Setup {
            fakes,
            service,
            conversation,
        }
    }

    async fn with_engine(engine: &ScriptedEngine) -> Setup {
        setup(
            TestPorts::with_engine(engine.clone()),
            ReplySettings::default(),
        )
        .await
    }

    impl Setup {
        async fn send(&self, text: &str) -> Message {
            self.service
                .send(
                    &user("ana"),
                    self.conversation.id,
                    MessageDraft::parse(text, Vec::new(), None).expect("a valid draft"),
                )
                .await
                .expect("sending")
                .message
        }

        async fn drained(&self) {
            assert!(
                self.service.replies().drain(DRAIN).await,
                "replies did not finish"
            );
        }

        fn messages(&self) -> Vec<Message> {
            self.fakes.store.messages_of(self.conversation.id)
        }

        fn events(&self) -> Vec<EventKind> {
            self.fakes
                .events
                .events_of(self.conversation.id)
                .into_iter()
                .map(|e: ConversationEvent| e.kind)
                .collect()
        }

        async fn conversation(&self) -> Conversation {
            self.fakes
                .ports
                .conversations
                .get(self.conversation.id)
                .await
                .expect("the conversation exists")
        }
    }

    fn typing(active: bool) -> EventKind {
        EventKind::Typing {
            sender: Sender::Bot,
            active,
        }
    }

    /// Asserts that the conversation holds `question` and then one system message
    /// answering it with `text`.
    fn assert_one_system_reply(messages: &[Message], question: &Message, text: &str) {
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(&messages[0], question, "the user's message was lost");
        let reply = &messages[1];
        assert_eq!(reply.sender, Sender::System);
        assert_eq!(reply.sender_id, SYSTEM_SENDER_ID);
        assert_eq!(reply.content.as_str(), text);
        assert_eq!(reply.reply_to, Some(question.id));
    }

    #[tokio::test]
    async fn a_user_message_gets_one_bot_reply_that_answers_it() {
        let engine = ScriptedEngine::echo();
        let s = with_engine(&engine).await;
        let question = s.send("hello").await;
        s.drained().await;

        let messages = s.messages();
        assert_eq!(messages.len(), 2, "{messages:?}");
        let reply = &messages[1];
        assert_eq!(reply.sender, Sender::Bot);
        assert_eq!(reply.sender_id, "echo");
        assert_eq!(reply.content.as_str(), "hello");
        assert_eq!(reply.reply_to, Some(question.id));
        assert_eq!(reply.seq, Seq::new(2));
        assert_eq!(engine.calls(), 1);
        let request = &engine.requests()[0];
        assert_eq!(request.message, question);
        assert_eq!(request.history, std::slice::from_ref(&question));
        let mut as_stored = s.conversation.clone();
        as_stored.record(&question);
        assert_eq!(
            request.conversation, as_stored,
            "the bot sees the conversation as it stood with the question stored"
        );
        let conversation = s.conversation().await;
        assert_eq!(conversation.replied_seq, question.seq);
        assert!(!conversation.has_pending_replies());
    }

    #[tokio::test]
    async fn an_engine_that_does_not_read_the_session_is_given_one_with_an_empty_context() {
        let engine = ScriptedEngine::echo().without_session();
        let s = with_engine(&engine).await;
        s.fakes
            .ports
            .sessions
            .save_context(
                s.conversation.session_id,
                &serde_json::Map::from_iter([("stored".to_owned(), serde_json::json!(true))]),
                s.conversation.created_at,
            )
            .await
            .expect("context saved");
        s.send("hello").await;
        s.drained().await;

        let requests = engine.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(requests[0].session, Session::new(&s.conversation));
        assert_eq!(s.messages().len(), 2, "the message was answered");
    }

    #[tokio::test]
    async fn an_engine_that_does_not_read_the_history_is_given_none() {
        let engine = ScriptedEngine::echo().without_history();
        let s = with_engine(&engine).await;
        s.send("hello").await;
        s.drained().await;

        let requests = engine.requests();
        assert_eq!(requests.len(), 1);
        assert!(requests[0].history.is_empty(), "{:?}", requests[0].history);
        assert_eq!(s.messages().len(), 2, "the message was answered");
    }

    #[tokio::test]
    async fn a_message_sent_while_an_older_one_waits_is_answered_after_it() {
        let engine = ScriptedEngine::echo();
        let s = with_engine(&engine).await;
        // Stored without a reply being scheduled, as a crash right after the append
        // would leave it.
        let waiting = s
            .fakes
            .ports
            .messages
            .append(&user_message(
                &s.conversation,
                "before the crash",
                s.conversation.created_at,
            ))
            .await
            .expect("stored")
            .into_message();
        let question = s.send("after the restart").await;
        s.drained().await;

        let answered: Vec<Option<MessageId>> = s
            .messages()
            .iter()
            .filter(|m| m.sender == Sender::Bot)
            .map(|m| m.reply_to)
            .collect();
        assert_eq!(answered, [Some(waiting.id), Some(question.id)]);
        assert!(!s.conversation().await.has_pending_replies());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_quick_user_messages_get_ten_replies_in_the_same_order() {
        let engine = ScriptedEngine::echo();
        ten_quick_messages(with_engine(&engine).await, &engine).await;
    }

    /// Shared leases whose claim reads nothing (the port's default), as a store of
    /// an embedding team may have them: the worker reads the conversation itself.
    struct PlainClaims(InMemoryStore);

    #[async_trait::async_trait]
    impl ReplyLeases for PlainClaims {
        async fn claim(
            &self,
            conversation: ConversationId,
            holder: LeaseHolder,
            now: Timestamp,
            until: Timestamp,
        ) -> Result<bool, RepoError> {
            self.0.claim(conversation, holder, now, until).await
        }

        async fn release(
            &self,
            conversation: ConversationId,
            holder: LeaseHolder,
        ) -> Result<Release, RepoError> {
            self.0.release(conversation, holder).await
        }

        async fn orphaned(
            &self,
            now: Timestamp,
            limit: u32,
        ) -> Result<Vec<ConversationId>, RepoError> {
            self.0.orphaned(now, limit).await
        }
    }

    #[tokio::test]
    async fn with_shared_leases_whose_claim_reads_nothing_ten_messages_get_ten_replies() {
        let engine = ScriptedEngine::echo();
        let mut fakes = TestPorts::with_engine(engine.clone());
        fakes.ports.leases = Arc::new(PlainClaims(fakes.store.clone()));
        ten_quick_messages(setup(fakes, ReplySettings::default()).await, &engine).await;
    }

    /// Ten messages sent at once are answered once each, in order.
    async fn ten_quick_messages(s: Setup, engine: &ScriptedEngine) {
        let mut questions = Vec::new();
        for n in 0..10 {
            questions.push(s.send(&format!("question {n}")).await);
        }
        s.drained().await;

        let replies: Vec<Message> = s
            .messages()
            .into_iter()
            .filter(|m| m.sender == Sender::Bot)
            .collect();
        assert_eq!(replies.len(), 10, "{replies:?}");
        for (question, reply) in questions.iter().zip(&replies) {
            assert_eq!(reply.reply_to, Some(question.id));
            assert_eq!(reply.content, question.content);
            assert!(reply.seq > question.seq, "a reply before its question");
        }
        let asked: Vec<MessageId> = engine.requests().iter().map(|r| r.message.id).collect();
        let sent: Vec<MessageId> = questions.iter().map(|q| q.id).collect();
        assert_eq!(asked, sent, "the engine was asked out of order or twice");
        let conversation = s.conversation().await;
        assert_eq!(conversation.message_count, 20);
        assert_eq!(conversation.replied_seq, conversation.last_user_seq);
    }

    #[tokio::test]
    async fn a_failing_engine_yields_one_system_message() {
        let engine = ScriptedEngine::failing(|| BotError::Failed("the model is down".into()));
        let s = with_engine(&engine).await;
        let question = s.send("hello").await;
        s.drained().await;
        assert_one_system_reply(&s.messages(), &question, "The bot could not answer.");
        assert_eq!(engine.calls(), 1, "a failed reply is not retried");
        assert!(!s.conversation().await.has_pending_replies());
        assert_eq!(s.events().last(), Some(&typing(false)));
    }

    /// A message port on `store` whose first `failures` appends of replies find
    /// storage unavailable.
    fn replies_fail_at_first(store: &InMemoryStore, failures: usize) -> MockMessageRepository {
        on_store(store, failures, &Arc::default())
    }

    /// [`replies_fail_at_first`], counting in `looks` the reads of what follows a seq
    /// (a worker's look at what is pending).
    fn on_store(
        store: &InMemoryStore,
        failures: usize,
        looks: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> MockMessageRepository {
        use futures::FutureExt as _;

        use crate::ports::MessageRepository as _;
        // The in-memory store never waits, so its futures are ready at once.
        fn ready<T>(future: impl std::future::Future<Output = T>) -> T {
            future
                .now_or_never()
                .expect("the in-memory store never waits")
        }
        let failures = std::sync::atomic::AtomicUsize::new(failures);
        let mut messages = MockMessageRepository::new();
        let s = store.clone();
        messages.expect_append().returning(move |message| {
            let fails = message.answers.is_some()
                && failures
                    .fetch_update(
                        std::sync::atomic::Ordering::SeqCst,
                        std::sync::atomic::Ordering::SeqCst,
                        |left| left.checked_sub(1),
                    )
                    .is_ok();
            if fails {
                return Err(RepoError::Unavailable("storage is away".into()));
            }
            ready(s.append(message))
        });
        let s = store.clone();
        messages
            .expect_append_own()
            .returning(move |message, owner| ready(s.append_own(message, owner)));
        let s = store.clone();
        let looks = Arc::clone(looks);
        messages
            .expect_history()
            .returning(move |conversation, query| {
                if query.after.is_some() {
                    looks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                ready(s.history(conversation, query))
            });
        messages
    }

    #[tokio::test(start_paused = true)]
    async fn messages_sent_while_the_worker_answers_are_answered_without_reading_them_back() {
        let gate = Arc::new(Semaphore::new(0));
        let engine = ScriptedEngine::echo().gated(Arc::clone(&gate));
        let mut fakes = TestPorts::with_engine(engine.clone());
        let looks = Arc::default();
        fakes.ports.messages = Arc::new(on_store(&fakes.store, 0, &looks));
        let s = setup(fakes, ReplySettings::default()).await;
        // The first is answered alone; the others arrive while the engine holds it.
        let mut sent = vec![s.send("first").await];
        for text in ["second", "third", "fourth"] {
            sent.push(s.send(text).await);
        }
        gate.add_permits(sent.len());
        s.drained().await;
        let asked: Vec<MessageId> = engine.requests().iter().map(|r| r.message.id).collect();
        let sent: Vec<MessageId> = sent.iter().map(|m| m.id).collect();
        assert_eq!(asked, sent, "the engine was asked out of order or twice");
        assert!(!s.conversation().await.has_pending_replies());
        assert_eq!(
            looks.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the worker read back messages handed to it"
        );
    }

    #[tokio::test]
    async fn a_retry_of_a_message_stored_without_its_answer_has_it_answered() {
        use crate::message::ClientMessageId;
        use crate::ports::MessageRepository as _;
        let engine = ScriptedEngine::echo();
        let s = with_engine(&engine).await;
        // Stored as a first attempt is whose commit went through while its answer
        // was lost: nothing had it answered.
        let mut first = user_message(&s.conversation, "hello", crate::testing::test_start());
        first.client_message_id = Some(ClientMessageId::parse("retry-1").expect("an id"));
        s.fakes.store.append(&first).await.expect("stored");
        let retried = s
            .service
            .send(
                &user("ana"),
                s.conversation.id,
                MessageDraft::parse("hello", Vec::new(), Some("retry-1")).expect("a draft"),
            )
            .await
            .expect("the retry");
        assert!(!retried.created, "the retry stores nothing");
        s.drained().await;
        let messages = s.messages();
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert_eq!(messages[1].reply_to, Some(retried.message.id));
        assert_eq!(engine.calls(), 1);
    }

    #[tokio::test]
    async fn a_claim_that_reads_spares_the_worker_reading_the_conversation() {
        use futures::FutureExt as _;

        use crate::ports::{ConversationRepository as _, MockConversationRepository};
        let engine = ScriptedEngine::echo();
        let mut fakes = TestPorts::with_engine(engine.clone());
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut conversations = MockConversationRepository::new();
        let store = fakes.store.clone();
        conversations
            .expect_create()
            .returning(move |conversation, session| {
                store
                    .create(conversation, session)
                    .now_or_never()
                    .expect("the in-memory store never waits")
            });
        let (store, counted) = (fakes.store.clone(), Arc::clone(&reads));
        conversations.expect_get().returning(move |id| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            store
                .get(id)
                .now_or_never()
                .expect("the in-memory store never waits")
        });
        fakes.ports.conversations = Arc::new(conversations);
        let s = setup(fakes, ReplySettings::default()).await;
        let question = s.send("hello").await;
        let read_before = reads.load(std::sync::atomic::Ordering::SeqCst);
        s.drained().await;
        assert_eq!(s.messages().len(), 2, "{:#?}", s.messages());
        assert_eq!(s.messages()[1].reply_to, Some(question.id));
        assert_eq!(
            reads.load(std::sync::atomic::Ordering::SeqCst),
            read_before,
            "the worker read the conversation its claim had read"
        );
    }

    #[tokio::test]
    async fn a_reply_that_storage_cannot_take_yet_is_stored_once_it_is_back() {
        let engine = ScriptedEngine::echo();
        let mut fakes = TestPorts::with_engine(engine.clone());
        fakes.ports.messages = Arc::new(replies_fail_at_first(&fakes.store, 2));
        // Alone on its database: no other instance's sweep would take the work over.
        fakes.ports.leases = Arc::new(SingleInstanceLeases);
        let s = setup(fakes, ReplySettings::default()).await;
        let question = s.send("hello").await;
        s.drained().await;
        let messages = s.messages();
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert_eq!(messages[0], question);
        assert_eq!(messages[1].sender, Sender::Bot);
        assert_eq!(messages[1].content.as_str(), "hello");
        assert_eq!(engine.calls(), 3, "asked again after each failure");
        assert!(!s.conversation().await.has_pending_replies());
    }

    #[tokio::test]
    async fn shutting_down_stops_work_that_waits_for_storage_and_leaves_it_pending() {
        let engine = ScriptedEngine::echo();
        let mut fakes = TestPorts::with_engine(engine.clone());
        fakes.ports.messages = Arc::new(replies_fail_at_first(&fakes.store, usize::MAX));
        fakes.ports.leases = Arc::new(SingleInstanceLeases);
        let s = setup(fakes, ReplySettings::default()).await;
        s.send("hello").await;
        let deadline = tokio::time::Instant::now() + DRAIN;
        while engine.calls() < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the work was not retried"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            s.service.replies().shut_down(DRAIN).await,
            "a worker waiting for storage held the shutdown up"
        );
        assert!(s.conversation().await.has_pending_replies());
    }

    #[tokio::test]
    async fn an_engine_that_ends_without_a_reply_yields_a_system_message() {
        let engine = ScriptedEngine::ending_without_reply(["half a"]);
        let s = with_engine(&engine).await;
        let question = s.send("hello").await;
        s.drained().await;
        assert_one_system_reply(&s.messages(), &question, "The bot could not answer.");
    }

    #[tokio::test]
    async fn a_misconfigured_bot_yields_a_system_message() {
        let mut engines = MockEngineRegistry::new();
        engines
            .expect_engine_for()
            .times(1)
            .returning(|_| Err(BotError::Misconfigured("no api key".to_owned())));
        let s = setup(TestPorts::new(Arc::new(engines)), ReplySettings::default()).await;
        let question = s.send("hello").await;
        s.drained().await;
        assert_one_system_reply(&s.messages(), &question, "The bot is not available.");
    }

    #[tokio::test(start_paused = true)]
    async fn an_engine_slower_than_the_timeout_yields_a_system_message() {
        let engine =
            ScriptedEngine::replying(["too"], "too late").with_delay(Duration::from_secs(3600));
        let s = setup(
            TestPorts::with_engine(engine.clone()),
            settings(Duration::from_secs(5)),
        )
        .await;
        let began = tokio::time::Instant::now();
        let question = s.send("hello").await;
        assert!(s.service.replies().drain(Duration::from_secs(7200)).await);
        let waited = began.elapsed();
        assert!(
            waited >= Duration::from_secs(5) && waited < Duration::from_secs(3600),
            "the reply ended after {waited:?}, not at the timeout"
        );
        assert_one_system_reply(&s.messages(), &question, "The bot did not answer in time.");
        assert!(
            !s.events()
                .iter()
                .any(|e| matches!(e, EventKind::Delta { .. })),
            "a delta of the abandoned reply was published"
        );
    }

    #[tokio::test]
    async fn deltas_are_published_before_the_final_message_with_its_id() {
        let engine = ScriptedEngine::replying(["Hel", "lo ", "there"], "Hello there");
        let s = with_engine(&engine).await;
        let question = s.send("hi").await;
        s.drained().await;

        let reply = s.messages().pop().expect("a reply");
        assert_eq!(reply.content.as_str(), "Hello there");
        let delta = |index: u32, content: &str| EventKind::Delta {
            reply_id: reply.id,
            index,
            content: content.to_owned(),
            snapshot: false,
        };
        assert_eq!(
            s.events(),
            [
                EventKind::Message(question),
                typing(true),
                delta(0, "Hel"),
                delta(1, "lo "),
                delta(2, "there"),
                EventKind::Message(reply.clone()),
                typing(false),
            ]
        );
        assert_eq!(s.service.replies().streaming_reply(s.conversation.id), None);
    }

    #[tokio::test]
    async fn recover_schedules_the_conversations_with_pending_replies() {
        let engine = ScriptedEngine::echo();
        let fakes = TestPorts::with_engine(engine.clone());
        let before_restart = setup(fakes.clone(), ReplySettings::default()).await;
        let answered = before_restart.send("answered before the crash").await;
        before_restart.drained().await;
        // A user message stored by a server that died before the reply: stored
        // directly, so no pipeline scheduled it.
        let orphan = fakes
            .ports
            .messages
            .append(&user_message(
                &before_restart.conversation,
                "are you there?",
                fakes.ports.clock.now(),
            ))
            .await
            .expect("storing the orphan")
            .into_message();
        assert_eq!(engine.calls(), 1);

        let after_restart = fakes.service(ReplySettings::default());
        let scheduled = after_restart.replies().recover().await.expect("recovering");
        assert_eq!(scheduled, 1, "only the conversation with a pending reply");
        assert!(after_restart.replies().drain(DRAIN).await);

        let messages = before_restart.messages();
        let answers: Vec<Option<MessageId>> = messages
            .iter()
            .filter(|m| m.sender == Sender::Bot)
            .map(|m| m.reply_to)
            .collect();
        assert_eq!(answers, [Some(answered.id), Some(orphan.id)]);
        assert_eq!(engine.calls(), 2);
        assert_eq!(after_restart.replies().recover().await.ok(), Some(0));
    }

    #[tokio::test]
    async fn a_reply_stored_twice_is_refused_and_not_duplicated() {
        let gate = Arc::new(Semaphore::new(0));
        let engine = ScriptedEngine::replying(["late"], "late answer").gated(Arc::clone(&gate));
        let s = with_engine(&engine).await;
        let question = s.send("hello").await;
        assert!(
            s.fakes
                .events
                .wait_for(
                    |events| events.iter().any(|e| e.kind == typing(true)),
                    DRAIN
                )
                .await,
            "the reply never started"
        );

        // Another instance answers the same message first.
        let rival = bot_reply(
            &s.conversation,
            &question,
            "first answer",
            s.fakes.ports.clock.now(),
        );
        let rival = s
            .fakes
            .ports
            .messages
            .append(&rival)
            .await
            .expect("the rival reply is stored")
            .into_message();
        gate.add_permits(1);
        s.drained().await;

        assert_eq!(s.messages(), [question.clone(), rival]);
        let replies_published = s
            .events()
            .iter()
            .filter(|e| matches!(e, EventKind::Message(m) if m.sender == Sender::Bot))
            .count();
        assert_eq!(replies_published, 0, "the refused reply was published");
        assert_eq!(s.events().last(), Some(&typing(false)));

        let again = bot_reply(
            &s.conversation,
            &question,
            "third answer",
            s.fakes.ports.clock.now(),
        );
        assert!(matches!(
            s.fakes.ports.messages.append(&again).await,
            Err(RepoError::Conflict)
        ));
        assert_eq!(s.messages().len(), 2);
    }

    #[tokio::test]
    async fn the_engine_gets_a_window_of_recent_history_and_the_session_context() {
        let engine = ScriptedEngine::echo();
        let s = setup(
            TestPorts::with_engine(engine.clone()),
            ReplySettings {
                timeout: DRAIN,
                history_window: 3,
                ..ReplySettings::default()
            },
        )
        .await;
        let context = serde_json::json!({"name": "Ana"})
            .as_object()
            .cloned()
            .expect("an object");
        s.fakes
            .ports
            .sessions
            .save_context(
                s.conversation.session_id,
                &context,
                s.fakes.ports.clock.now(),
            )
            .await
            .expect("saving a context");
        for text in ["one", "two", "three"] {
            s.send(text).await;
            s.drained().await;
        }
        let requests = engine.requests();
        let last = requests.last().expect("three requests");
        let seqs: Vec<u64> = last.history.iter().map(|m| m.seq.get()).collect();
        assert_eq!(seqs, [3, 4, 5], "the newest three, ending with the message");
        assert_eq!(last.message.seq, Seq::new(5));
        assert_eq!(last.session.context, context);
        assert_eq!(last.bot.id.as_str(), "echo");
        assert_eq!(last.conversation.id, s.conversation.id);
    }

    #[tokio::test]
    async fn a_context_returned_by_the_bot_is_saved_in_the_session() {
        let context = serde_json::json!({"step": 2})
            .as_object()
            .cloned()
            .expect("an object");
        let engine = ScriptedEngine::replying_with(
            Vec::<String>::new(),
            BotReply {
                content: "noted".to_owned(),
                context: Some(context.clone()),
                ..BotReply::default()
            },
        );
        let s = with_engine(&engine).await;
        s.send("remember this").await;
        s.drained().await;
        let session = s
            .fakes
            .ports
            .sessions
            .get(s.conversation.session_id)
            .await
            .expect("the session exists");
        assert_eq!(session.context, context);
        assert!(session.updated_at > session.created_at);
    }

    #[tokio::test]
    async fn a_reply_whose_context_cannot_be_saved_is_still_published_and_typing_stops() {
        let engine = ScriptedEngine::replying_with(
            Vec::<String>::new(),
            BotReply {
                content: "noted".to_owned(),
                context: Some(serde_json::Map::new()),
                ..BotReply::default()
            },
        );
        let fakes = TestPorts::with_engine(engine.clone());
        let mut s = setup(fakes, ReplySettings::default()).await;
        let session = s
            .fakes
            .ports
            .sessions
            .get(s.conversation.session_id)
            .await
            .expect("the session exists");
        let mut sessions = MockSessionRepository::new();
        sessions
            .expect_get()
            .returning(move |_| Ok(session.clone()));
        sessions
            .expect_save_context()
            .times(1)
            .returning(|_, _, _| Err(RepoError::Unavailable("the database is down".into())));
        s.fakes.ports.sessions = Arc::new(sessions);
        s.service = s.fakes.service(ReplySettings::default());

        s.send("remember this").await;
        s.drained().await;
        let reply = s.messages().pop().expect("the reply is stored");
        assert_eq!(reply.content.as_str(), "noted");
        let events = s.events();
        assert!(
            events.contains(&EventKind::Message(reply)),
            "the stored reply was not published: {events:?}"
        );
        assert_eq!(events.last(), Some(&typing(false)));
    }

    /// Stores the `echo` bot again with `settings` merged into its engine settings.
    fn set_bot_settings(fakes: &TestPorts, settings: serde_json::Value) {
        let mut bot = crate::testing::test_bot("echo");
        if let serde_json::Value::Object(settings) = settings {
            bot.engine.settings.extend(settings);
        }
        fakes.store.insert_bot(bot);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bots_own_timeout_replaces_the_pipelines() {
        let engine =
            ScriptedEngine::replying(["too"], "too late").with_delay(Duration::from_secs(3600));
        let s = setup(
            TestPorts::with_engine(engine.clone()),
            settings(Duration::from_secs(7200)),
        )
        .await;
        set_bot_settings(&s.fakes, serde_json::json!({"timeout_ms": 2000}));
        let began = tokio::time::Instant::now();
        let question = s.send("hello").await;
        assert!(s.service.replies().drain(Duration::from_secs(20_000)).await);
        let waited = began.elapsed();
        assert!(
            waited >= Duration::from_secs(2) && waited < Duration::from_secs(3600),
            "the reply ended after {waited:?}, not at the bot's timeout"
        );
        assert_one_system_reply(&s.messages(), &question, "The bot did not answer in time.");
    }

    #[tokio::test(start_paused = true)]
    async fn a_bots_concurrency_limit_holds_replies_beyond_it_until_one_ends() {
        let gate = Arc::new(Semaphore::new(0));
        let engine = ScriptedEngine::echo().gated(Arc::clone(&gate));
        let fakes = TestPorts::with_engine(engine.clone());
        let first = setup(fakes.clone(), ReplySettings::default()).await;
        set_bot_settings(&fakes, serde_json::json!({"max_concurrency": 1}));
        let second = start_conversation(&first.service, &user("bo"), "echo").await;
        first.send("one").await;
        first
            .service
            .send(
                &user("bo"),
                second.id,
                MessageDraft::parse("two", Vec::new(), None).expect("a valid draft"),
            )
            .await
            .expect("sending");
        // Both workers run until they block: one on the gate, one on its turn.
        assert!(!first.service.replies().drain(Duration::from_secs(1)).await);
        assert_eq!(
            engine.calls(),
            1,
            "the limit of one reply at a time was exceeded"
        );
        gate.add_permits(2);
        first.drained().await;
        assert_eq!(engine.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_replies_in_progress() {
        let gate = Arc::new(Semaphore::new(0));
        let engine = ScriptedEngine::echo().gated(Arc::clone(&gate));
        let s = with_engine(&engine).await;
        s.send("hold on").await;
        assert!(
            !s.service.replies().drain(Duration::from_secs(1)).await,
            "drain returned while a reply was held"
        );
        assert_eq!(s.messages().len(), 1);
        gate.add_permits(1);
        s.drained().await;
        assert_eq!(s.messages().len(), 2);
    }

    /// A holder other than any pipeline's.
    fn another_instance() -> LeaseHolder {
        LeaseHolder::from_uuid(uuid::Uuid::now_v7())
    }

    /// Asserts that every user message got exactly one reply, right after it.
    fn assert_each_answered_once_in_order(messages: &[Message]) {
        let questions: Vec<&Message> = messages
            .iter()
            .filter(|m| m.sender == Sender::User)
            .collect();
        for question in &questions {
            let replies: Vec<&Message> = messages
                .iter()
                .filter(|m| m.reply_to == Some(question.id))
                .collect();
            assert_eq!(
                replies.len(),
                1,
                "message {} got {} replies",
                question.seq,
                replies.len()
            );
        }
        let answered: Vec<Option<MessageId>> = messages
            .iter()
            .filter(|m| m.sender != Sender::User)
            .map(|m| m.reply_to)
            .collect();
        let asked: Vec<Option<MessageId>> = questions.iter().map(|m| Some(m.id)).collect();
        assert_eq!(
            answered, asked,
            "replies are not in the order of the questions"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_instances_on_one_store_ask_the_bot_once_per_message_in_order() {
        let engine = ScriptedEngine::echo().with_delay(Duration::from_millis(2));
        let s = with_engine(&engine).await;
        let other = s.fakes.service(ReplySettings::default());
        for n in 0..20 {
            let service = if n % 2 == 0 { &s.service } else { &other };
            service
                .send(
                    &user("ana"),
                    s.conversation.id,
                    MessageDraft::parse(&format!("message {n}"), Vec::new(), None)
                        .expect("a valid draft"),
                )
                .await
                .expect("sending");
        }
        s.drained().await;
        assert!(
            other.replies().drain(DRAIN).await,
            "the other instance did not finish"
        );
        assert_eq!(
            engine.calls(),
            20,
            "the bot was asked more or less than once per message"
        );
        let messages = s.messages();
        assert_eq!(messages.len(), 40);
        assert_each_answered_once_in_order(&messages);
    }

    #[tokio::test]
    async fn work_leased_by_another_instance_is_left_to_it_until_the_lease_runs_out() {
        let engine = ScriptedEngine::echo();
        let s = with_engine(&engine).await;
        let now = s.fakes.clock.peek();
        let lease = ReplySettings::default().lease;
        assert!(
            s.fakes
                .ports
                .leases
                .claim(
                    s.conversation.id,
                    another_instance(),
                    now,
                    now.saturating_add(lease)
                )
                .await
                .expect("claiming")
        );
        let question = s.send("anyone there?").await;
        s.drained().await;
        assert_eq!(
            engine.calls(),
            0,
            "the bot was asked while another instance held the lease"
        );
        assert_eq!(s.service.replies().sweep().await.expect("sweeping"), 0);

        s.fakes.clock.advance(lease);
        assert_eq!(s.service.replies().sweep().await.expect("sweeping"), 1);
        s.drained().await;
        assert_eq!(engine.calls(), 1);
        let messages = s.messages();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].reply_to, Some(question.id));
    }

    #[tokio::test]
    async fn the_lease_is_let_go_once_nothing_is_pending() {
        let s = with_engine(&ScriptedEngine::echo()).await;
        s.send("hello").await;
        s.drained().await;
        let now = s.fakes.clock.peek();
        let claimed_by_another = s
            .fakes
            .ports
            .leases
            .claim(
                s.conversation.id,
                another_instance(),
                now,
                now.saturating_add(Duration::from_secs(10)),
            )
            .await
            .expect("claiming");
        assert!(
            claimed_by_another,
            "the lease was kept after the work was done"
        );
    }

    /// Reads tokio's clock, so that a paused test's sleeps move it.
    struct TokioClock {
        start: tokio::time::Instant,
        base: Timestamp,
    }

    impl crate::ports::Clock for TokioClock {
        fn now(&self) -> Timestamp {
            self.base.saturating_add(self.start.elapsed())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_reply_that_outlasts_the_lease_keeps_it_renewed() {
        let lease = Duration::from_secs(10);
        let engine = ScriptedEngine::echo().with_delay(lease * 4);
        let mut fakes = TestPorts::with_engine(engine.clone());
        fakes.ports.clock = Arc::new(TokioClock {
            start: tokio::time::Instant::now(),
            base: crate::testing::test_start(),
        });
        let s = setup(
            fakes,
            ReplySettings {
                timeout: lease * 10,
                lease,
                ..ReplySettings::default()
            },
        )
        .await;
        s.send("take your time").await;
        let leases = Arc::clone(&s.fakes.ports.leases);
        let clock = Arc::clone(&s.fakes.ports.clock);
        let conversation = s.conversation.id;
        let intruder = another_instance();
        let mut taken_over = false;
        while s.messages().len() < 2 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if s.messages().len() >= 2 {
                break;
            }
            let now = clock.now();
            taken_over |= leases
                .claim(conversation, intruder, now, now.saturating_add(lease))
                .await
                .expect("claiming");
        }
        s.drained().await;
        assert!(
            !taken_over,
            "another instance could claim the lease mid-reply"
        );
        assert_eq!(engine.calls(), 1);
    }

    #[tokio::test]
    async fn a_message_handed_over_but_answered_meanwhile_by_another_instance_is_not_asked_again() {
        let engine = ScriptedEngine::echo();
        let s = with_engine(&engine).await;
        let other = s.fakes.service(ReplySettings::default());
        let before = s.conversation().await;
        let stored = s
            .fakes
            .ports
            .messages
            .append(&user_message(
                &s.conversation,
                "hello",
                s.fakes.clock.peek(),
            ))
            .await
            .expect("appending")
            .into_message();
        other.replies().schedule(s.conversation.id);
        assert!(other.replies().drain(DRAIN).await);
        assert_eq!(engine.calls(), 1);

        // This instance was handed the message when it stored it, and its worker
        // only now gets the lease the other instance let go of.
        s.service.replies().stored(&before, &stored);
        s.drained().await;
        assert_eq!(engine.calls(), 1, "the bot was asked twice");
        assert_eq!(s.messages().len(), 2);
    }
}
