//! Following a conversation: every message after a known seq, replayed from storage,
//! then live events, with no gap and no duplicate, for any transport (WebSocket, SSE).
//!
//! The bus subscription is taken *before* storage is read, so a message stored while
//! the replay runs is either in the replay or on the live stream; messages already
//! replayed are dropped from the live stream by seq. When the live stream ends because
//! the follower fell behind the bus, following goes back to storage from the last seq
//! it delivered and then live again, so a slow follower loses nothing either.
//! Messages are delivered in seq order without gaps: a follower may keep only the
//! greatest seq it has seen and resume from it.
//!
//! Publishers race: the senders of a conversation's messages publish each once its
//! append committed, side by side, and a later seq is often published first (on
//! SQLite one commit stores several of a conversation's messages at once). A live
//! message that comes early waits, briefly ([`GAP_WAIT`]), for the ones before it to
//! arrive live too, and the other events that arrive meanwhile wait behind it; only
//! the messages still missing then are read from storage, where they are (a seq is
//! committed only after every lower seq of its conversation).
//!
//! Storage or the bus being unavailable for a while does not end a follow: the
//! follower keeps its place, tries again with a growing pause, and catches up from
//! storage once it is back. A follow that ended would leave its socket deaf to the
//! conversation while the client believes it follows it. Any other error ends the
//! stream after it is delivered.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures::StreamExt;
use futures::stream::BoxStream;

use super::ConversationService;
use crate::conversation::{Conversation, ConversationId};
use crate::error::{DomainError, error_chain};
use crate::event::{ConversationEvent, EventKind, SharedEvent};
use crate::message::{HistoryBound, HistoryQuery, MessageId, Seq};
use crate::ports::{EventBus, EventStream, MessageRepository};
use crate::reply::ReplyPipeline;
use crate::retry::Backoff;
use crate::session::SessionId;
use crate::user::Caller;

/// A follower's stream of events: replayed messages first, then live events. A live
/// event is the bus's [`SharedEvent`], shared with the conversation's other followers
/// (with its encoding); a replayed one is this follower's own.
pub type FollowStream = BoxStream<'static, Result<SharedEvent, DomainError>>;

impl ConversationService {
    /// Follows a conversation the caller may see. With `after` set, every message with
    /// a greater seq is delivered first (from storage), then live events; without it,
    /// live events from now on. The returned conversation is as it was at the start.
    pub async fn follow(
        &self,
        caller: &Caller,
        id: ConversationId,
        after: Option<Seq>,
    ) -> Result<(Conversation, FollowStream), DomainError> {
        let ports = self.ports();
        let live = ports.events.subscribe(id).await?;
        let conversation = self.conversation(caller, id).await?;
        let state = Follow {
            conversation: conversation.id,
            session: conversation.session_id,
            messages: Arc::clone(&ports.messages),
            events: Arc::clone(&ports.events),
            live,
            last_seq: after.unwrap_or(conversation.last_seq),
            replaying: after.is_some(),
            replies: Arc::clone(self.replies()),
            snapshot: None,
            snapshot_due: true,
            pending: VecDeque::new(),
            early: BTreeMap::new(),
            gap_deadline: None,
            behind_the_gap: VecDeque::new(),
            failures: 0,
            done: false,
        };
        Ok((
            conversation,
            futures::stream::unfold(state, Follow::next).boxed(),
        ))
    }
}

/// How long a follower that finds storage or the bus unavailable waits before it
/// tries again: a read is cheap, and the follower should catch up soon after.
const RETRY: Backoff = Backoff {
    first: Duration::from_millis(50),
    longest: Duration::from_secs(2),
};

/// How long a live message that came before a lower seq of its conversation waits
/// for the lower ones to come live, before they are read from storage. Their senders
/// publish them right after the commits that stored them, so they come within
/// microseconds unless the machine is busy; a sender that stopped between its commit
/// and its publish (a client gone) leaves its message to storage, which this bounds
/// the wait for. Under 16 WebSocket clients with 8 messages in flight each, reading
/// every such gap from storage was about 5 % of the server's CPU
/// (docs/benchmarks.md, part twelve).
const GAP_WAIT: Duration = Duration::from_millis(20);

/// Waits before a follower of `conversation` tries again after `failures` in a row
/// ([`RETRY`]); returns at once when the last try succeeded.
async fn pause_after(failures: u32, conversation: ConversationId) {
    if failures > 0 {
        tokio::time::sleep(RETRY.after(failures, conversation.as_uuid())).await;
    }
}

struct Follow {
    conversation: ConversationId,
    session: SessionId,
    messages: Arc<dyn MessageRepository>,
    events: Arc<dyn EventBus>,
    live: EventStream,
    /// The greatest seq delivered (or known to the follower).
    last_seq: Seq,
    replaying: bool,
    replies: Arc<ReplyPipeline>,
    /// The streamed reply whose text so far was sent as a snapshot, and the index of
    /// its last delta included; live deltas up to it are dropped as duplicates.
    snapshot: Option<(MessageId, u32)>,
    snapshot_due: bool,
    pending: VecDeque<SharedEvent>,
    /// Live messages past a gap after `last_seq`, by seq, waiting for the gap's
    /// messages to come live ([`GAP_WAIT`]).
    early: BTreeMap<Seq, SharedEvent>,
    /// Set while `early` holds messages: when storage fills the gap instead.
    gap_deadline: Option<Instant>,
    /// Live events other than messages that came while `early` held messages, in
    /// the order they came: delivered after them, as they were published.
    behind_the_gap: VecDeque<SharedEvent>,
    /// How many tries in a row found storage or the bus unavailable.
    failures: u32,
    done: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<SharedEvent, DomainError>, Self)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                self.done = matches!(event.kind, EventKind::Deleted);
                return Some((Ok(event), self));
            }
            if self.replaying {
                pause_after(self.failures, self.conversation).await;
                match self.replay_page().await {
                    Ok(()) => self.failures = 0,
                    Err(error) => {
                        if let Err(error) = self.retry_or_end(error) {
                            self.done = true;
                            return Some((Err(error), self));
                        }
                    }
                }
                continue;
            }
            if std::mem::take(&mut self.snapshot_due)
                && let Some(streaming) = self.replies.streaming_reply(self.conversation)
            {
                self.snapshot = Some((streaming.reply_id, streaming.last_index));
                let snapshot = self.event(EventKind::Delta {
                    reply_id: streaming.reply_id,
                    index: streaming.last_index,
                    content: streaming.text,
                    snapshot: true,
                });
                return Some((Ok(snapshot), self));
            }
            // `None` once the gap's time is up, even while live events keep coming.
            let next = match self.gap_deadline {
                None => Some(self.live.next().await),
                Some(deadline) if Instant::now() < deadline => {
                    tokio::time::timeout_at(deadline, self.live.next())
                        .await
                        .ok()
                }
                Some(_) => None,
            };
            let Some(next) = next else {
                if let Err(error) = self.fill_gap_from_storage().await {
                    // The early messages are stored: reading on from the last seq
                    // delivered finds them.
                    self.give_up_the_gap();
                    if let Err(error) = self.retry_or_end(error) {
                        self.done = true;
                        return Some((Err(error), self));
                    }
                    self.replaying = true;
                }
                continue;
            };
            match next {
                Some(event) => {
                    match &event.kind {
                        EventKind::Message(message) => {
                            if message.seq <= self.last_seq {
                                continue;
                            }
                            if message.seq > self.last_seq.next() {
                                let seq = message.seq;
                                self.early.insert(seq, event);
                                self.gap_deadline
                                    .get_or_insert_with(|| Instant::now() + GAP_WAIT);
                                continue;
                            }
                            self.last_seq = message.seq;
                            self.release_early();
                        }
                        EventKind::Delta {
                            reply_id, index, ..
                        } if self
                            .snapshot
                            .is_some_and(|(sent, upto)| sent == *reply_id && *index <= upto) =>
                        {
                            continue;
                        }
                        _ if !self.early.is_empty() => {
                            self.behind_the_gap.push_back(event);
                            continue;
                        }
                        _ => {}
                    }
                    let deleted = matches!(event.kind, EventKind::Deleted);
                    self.done = deleted;
                    return Some((Ok(event), self));
                }
                None => {
                    // Fell behind the bus (or it closed): subscribe again first, then
                    // catch up from storage, as at the start.
                    pause_after(self.failures, self.conversation).await;
                    match self.events.subscribe(self.conversation).await {
                        Ok(live) => {
                            self.live = live;
                            self.replaying = true;
                            // Published, so stored: the replay finds them.
                            self.give_up_the_gap();
                            self.failures = 0;
                            // Deltas published meanwhile are gone: the text streamed
                            // so far comes again as one snapshot.
                            self.snapshot_due = true;
                        }
                        Err(error) => {
                            if let Err(error) = self.retry_or_end(error.into()) {
                                self.done = true;
                                return Some((Err(error), self));
                            }
                            // Ended already: the next turn subscribes again.
                            self.live = futures::stream::empty().boxed();
                        }
                    }
                }
            }
        }
    }

    /// Counts a failure that may pass ([`DomainError::is_unavailable`]) and returns
    /// `Ok`, so that the caller tries again after a pause; any other error comes back
    /// to end the follow.
    fn retry_or_end(&mut self, error: DomainError) -> Result<(), DomainError> {
        if !error.is_unavailable() {
            return Err(error);
        }
        self.failures += 1;
        // Every follower of every conversation meets the same outage: the storage
        // and bus adapters' own errors and `/readyz` tell the operator once.
        if self.failures == 1 {
            tracing::debug!(
                conversation = %self.conversation,
                error = %error_chain(&error),
                "a follower cannot read on; it tries again until it can"
            );
        }
        Ok(())
    }

    /// Queues the early messages that follow the last delivered one without a gap,
    /// and marks them delivered; with the last of them go the events behind the gap
    /// and its deadline, and a later gap among the rest gets a deadline of its own.
    fn release_early(&mut self) {
        while let Some(event) = self.early.remove(&self.last_seq.next()) {
            self.last_seq = self.last_seq.next();
            self.pending.push_back(event);
        }
        if self.early.is_empty() {
            self.pending.extend(self.behind_the_gap.drain(..));
            self.gap_deadline = None;
        } else {
            self.gap_deadline = Some(Instant::now() + GAP_WAIT);
        }
    }

    /// The messages of the gaps did not all come live in time: queues, gap by gap,
    /// what storage holds of them, each gap followed by the early messages after it.
    async fn fill_gap_from_storage(&mut self) -> Result<(), DomainError> {
        while let Some((&next_early, _)) = self.early.first_key_value() {
            self.fill_gap(next_early).await?;
            self.pending.extend(self.early.remove(&next_early));
            self.release_early();
        }
        Ok(())
    }

    /// Drops the early messages, to be read from storage, and queues the events
    /// behind them.
    fn give_up_the_gap(&mut self) {
        self.early.clear();
        self.gap_deadline = None;
        self.pending.extend(self.behind_the_gap.drain(..));
    }

    /// Queues every stored message between the last delivered one and `upto`, then
    /// marks `upto` as delivered: the caller queues that message itself.
    async fn fill_gap(&mut self, upto: Seq) -> Result<(), DomainError> {
        while self.last_seq.next() < upto {
            let page = self
                .messages
                .history(
                    self.conversation,
                    &HistoryQuery {
                        before: Some(HistoryBound::Seq(upto)),
                        ..HistoryQuery::after_seq(self.last_seq)
                    },
                )
                .await?;
            if page.messages.is_empty() {
                break;
            }
            for message in page.messages {
                self.last_seq = message.seq;
                let event = self.event(EventKind::Message(message));
                self.pending.push_back(event);
            }
        }
        self.last_seq = upto;
        Ok(())
    }

    async fn replay_page(&mut self) -> Result<(), DomainError> {
        let page = self
            .messages
            .history(self.conversation, &HistoryQuery::after_seq(self.last_seq))
            .await?;
        self.replaying = page.has_more;
        for message in page.messages {
            self.last_seq = message.seq;
            let event = self.event(EventKind::Message(message));
            self.pending.push_back(event);
        }
        Ok(())
    }

    fn event(&self, kind: EventKind) -> SharedEvent {
        SharedEvent::new(ConversationEvent {
            conversation_id: self.conversation,
            session_id: self.session,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::StreamExt as _;

    use super::*;
    use crate::error::RepoError;
    use crate::message::{HistoryPage, Message};
    use crate::ports::MockMessageRepository;
    use crate::reply::ReplySettings;
    use crate::testing::{ScriptedEngine, TestPorts, start_conversation, user, user_message};

    /// Long enough for a few pauses before retries; a failing test waits this.
    const PATIENCE: Duration = Duration::from_secs(10);

    fn unavailable() -> RepoError {
        RepoError::Unavailable("storage is away".into())
    }

    /// What one history read answers: the stored messages at these indexes, or the
    /// error.
    type Read = Result<Vec<usize>, RepoError>;

    /// Ana's conversation with the echo bot, and a service whose history reads answer
    /// with the reads given, in turn (a read past them fails the test).
    struct Setup {
        service: ConversationService,
        fakes: TestPorts,
        conversation: Conversation,
        stored: Arc<Mutex<Vec<Message>>>,
    }

    impl Setup {
        async fn new(reads: Vec<Read>) -> Self {
            let mut fakes = TestPorts::with_engine(ScriptedEngine::echo());
            fakes.seed_bot("echo");
            let service = fakes.service(ReplySettings::default());
            let conversation = start_conversation(&service, &user("ana"), "echo").await;
            let stored = Arc::new(Mutex::new(Vec::<Message>::new()));
            let reads = Mutex::new(reads.into_iter());
            let mut messages = MockMessageRepository::new();
            messages.expect_history().returning({
                let stored = Arc::clone(&stored);
                move |_, _| {
                    let read = reads
                        .lock()
                        .expect("the reads")
                        .next()
                        .expect("no more history reads than the test expects");
                    let stored = stored.lock().expect("the stored messages");
                    read.map(|indexes| HistoryPage {
                        messages: indexes.into_iter().map(|i| stored[i].clone()).collect(),
                        has_more: false,
                    })
                }
            });
            fakes.ports.messages = Arc::new(messages);
            Self {
                service: fakes.service(ReplySettings::default()),
                fakes,
                conversation,
                stored,
            }
        }

        async fn follow(&self, after: Option<Seq>) -> FollowStream {
            self.service
                .follow(&user("ana"), self.conversation.id, after)
                .await
                .expect("following")
                .1
        }

        /// Stores three user messages (seqs 1 to 3), publishing none.
        async fn store_three(&self) {
            for text in ["one", "two", "three"] {
                let new = user_message(&self.conversation, text, self.fakes.clock.peek());
                let appended = self.fakes.store.append(&new).await.expect("stored");
                let message = appended.message().clone();
                self.stored
                    .lock()
                    .expect("the stored messages")
                    .push(message);
            }
        }

        /// Publishes the stored message at `index` on the bus, as its sender would.
        async fn publish(&self, index: usize) {
            let message = self.stored.lock().expect("the stored messages")[index].clone();
            self.fakes
                .events
                .publish(self.event(EventKind::Message(message)))
                .await
                .expect("published");
        }

        /// An event of the conversation.
        fn event(&self, kind: EventKind) -> ConversationEvent {
            ConversationEvent {
                conversation_id: self.conversation.id,
                session_id: self.conversation.session_id,
                kind,
            }
        }
    }

    /// The seqs of the next `count` messages the stream delivers.
    async fn next_seqs(stream: &mut FollowStream, count: usize) -> Vec<u64> {
        let mut seqs = Vec::new();
        while seqs.len() < count {
            let event = tokio::time::timeout(PATIENCE, stream.next())
                .await
                .expect("an event in time")
                .expect("the stream goes on")
                .expect("an event, not an error");
            if let EventKind::Message(message) = &event.kind {
                seqs.push(message.seq.get());
            }
        }
        seqs
    }

    #[tokio::test]
    async fn a_replay_that_storage_cannot_read_yet_goes_on_once_it_is_back() {
        let setup = Setup::new(vec![
            Err(unavailable()),
            Err(unavailable()),
            Ok(vec![0, 1, 2]),
        ])
        .await;
        setup.store_three().await;
        let mut stream = setup.follow(Some(Seq::ZERO)).await;
        assert_eq!(next_seqs(&mut stream, 3).await, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_live_message_after_a_gap_storage_cannot_fill_yet_waits_for_it() {
        // The third message is published first; the read for the gap fails, and
        // reading on from the last seq delivered finds all three.
        let setup = Setup::new(vec![Err(unavailable()), Ok(vec![0, 1, 2])]).await;
        let mut stream = setup.follow(None).await;
        setup.store_three().await;
        setup.publish(2).await;
        assert_eq!(next_seqs(&mut stream, 3).await, [1, 2, 3]);
        // Published late, the first two are known already.
        setup.publish(0).await;
        setup.publish(1).await;
        let later = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
        assert!(later.is_err(), "nothing is delivered twice: {later:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn messages_published_out_of_order_come_in_seq_order_without_reading_storage() {
        // No history read is expected: one would fail the test.
        let setup = Arc::new(Setup::new(Vec::new()).await);
        let mut stream = setup.follow(None).await;
        setup.store_three().await;
        setup.publish(2).await;
        let late = {
            let setup = Arc::clone(&setup);
            tokio::spawn(async move {
                tokio::time::sleep(GAP_WAIT / 2).await;
                setup.publish(1).await;
                setup.publish(0).await;
            })
        };
        assert_eq!(next_seqs(&mut stream, 3).await, [1, 2, 3]);
        late.await.expect("published late");
    }

    #[tokio::test(start_paused = true)]
    async fn events_that_come_while_messages_wait_for_a_gap_are_delivered_after_them() {
        let setup = Setup::new(Vec::new()).await;
        let mut stream = setup.follow(None).await;
        setup.store_three().await;
        setup.publish(2).await;
        let typing = EventKind::Typing {
            sender: crate::message::Sender::Bot,
            active: true,
        };
        setup
            .fakes
            .events
            .publish(setup.event(typing.clone()))
            .await
            .expect("published");
        setup.publish(0).await;
        setup.publish(1).await;
        let mut kinds = Vec::new();
        for _ in 0..4 {
            let event = tokio::time::timeout(PATIENCE, stream.next())
                .await
                .expect("an event in time")
                .expect("the stream goes on")
                .expect("an event, not an error");
            kinds.push(match &event.kind {
                EventKind::Message(message) => format!("message {}", message.seq.get()),
                other => format!("{other:?}"),
            });
        }
        assert_eq!(
            kinds,
            [
                "message 1".to_owned(),
                "message 2".to_owned(),
                "message 3".to_owned(),
                format!("{typing:?}"),
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_gap_that_does_not_fill_live_in_time_is_read_from_storage() {
        // Storage gives the message missing before the early ones.
        let setup = Setup::new(vec![Ok(vec![0])]).await;
        let mut stream = setup.follow(None).await;
        setup.store_three().await;
        let started = Instant::now();
        setup.publish(2).await;
        setup.publish(1).await;
        assert_eq!(next_seqs(&mut stream, 3).await, [1, 2, 3]);
        assert!(
            started.elapsed() >= GAP_WAIT,
            "storage was read before the gap's messages had their time to come live"
        );
        // Published after all, the first is known already.
        setup.publish(0).await;
        let later = tokio::time::timeout(Duration::from_millis(100), stream.next()).await;
        assert!(later.is_err(), "nothing is delivered twice: {later:?}");
    }

    #[tokio::test]
    async fn a_follower_that_fell_behind_while_the_bus_is_down_subscribes_once_it_is_back() {
        let setup = Setup::new(vec![Ok(vec![0, 1, 2])]).await;
        let mut stream = setup.follow(None).await;
        setup.store_three().await;
        // More events than a subscriber may fall behind by, none of them read: the
        // live stream ends, and subscribing again finds the bus down for a while.
        for _ in 0..5_000 {
            setup
                .fakes
                .events
                .publish(ConversationEvent {
                    conversation_id: setup.conversation.id,
                    session_id: setup.conversation.session_id,
                    kind: EventKind::Typing {
                        sender: crate::message::Sender::Bot,
                        active: true,
                    },
                })
                .await
                .expect("published");
        }
        setup.fakes.events.set_unavailable(true);
        let events = Arc::clone(&setup.fakes.events);
        let back = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            events.set_unavailable(false);
        });
        assert_eq!(next_seqs(&mut stream, 3).await, [1, 2, 3]);
        back.await.expect("the bus came back");
    }

    #[tokio::test]
    async fn any_other_storage_failure_ends_the_follow_after_its_error() {
        let setup = Setup::new(vec![Err(RepoError::Internal("a bug".into()))]).await;
        let mut stream = setup.follow(Some(Seq::ZERO)).await;
        let first = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("in time");
        assert!(
            matches!(
                first,
                Some(Err(DomainError::Storage(RepoError::Internal(_))))
            ),
            "{first:?}"
        );
        let end = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("in time");
        assert!(end.is_none(), "the follow ended");
    }
}
