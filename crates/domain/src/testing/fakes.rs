//! Deterministic stand-ins for the non-storage ports: clocks, ids, an event bus that
//! records what it carries, and bot engines that follow a script.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use tokio::sync::{Semaphore, broadcast, watch};

use crate::bot::Bot;
use crate::conversation::ConversationId;
use crate::error::{BotError, EventBusError};
use crate::event::{ConversationEvent, SharedEvent};
use crate::ports::{
    BotEngine, BotReply, BotRequest, Clock, EngineRegistry, EventBus, EventStream, IdGenerator,
    ReplyChunk,
};
use crate::timestamp::Timestamp;

/// Where test time starts: 2026-01-01T00:00:00.000Z, in milliseconds since the epoch.
pub const TEST_START_MILLIS: i64 = 1_767_225_600_000;

/// The instant [`TEST_START_MILLIS`] names.
pub fn test_start() -> Timestamp {
    Timestamp::from_unix_millis(TEST_START_MILLIS).expect("2026 is a valid timestamp")
}

/// A clock that starts at a fixed instant and moves on by one millisecond on every
/// reading, so that times are deterministic and strictly increasing.
#[derive(Debug)]
pub struct SteppingClock {
    next_millis: AtomicI64,
}

impl SteppingClock {
    /// A clock whose first reading is `start`.
    pub fn starting_at(start: Timestamp) -> Self {
        Self {
            next_millis: AtomicI64::new(start.unix_millis()),
        }
    }

    /// Makes the next reading `at`; it may step back, like a wall clock can.
    pub fn set(&self, at: Timestamp) {
        self.next_millis.store(at.unix_millis(), Ordering::SeqCst);
    }

    /// Moves the next reading on by `by` (whole milliseconds).
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).expect("test durations fit in i64 millis");
        self.next_millis.fetch_add(millis, Ordering::SeqCst);
    }

    /// What the next reading will be, without taking it.
    pub fn peek(&self) -> Timestamp {
        millis(self.next_millis.load(Ordering::SeqCst))
    }
}

impl Default for SteppingClock {
    /// A clock starting at [`test_start`].
    fn default() -> Self {
        Self::starting_at(test_start())
    }
}

impl Clock for SteppingClock {
    fn now(&self) -> Timestamp {
        millis(self.next_millis.fetch_add(1, Ordering::SeqCst))
    }
}

fn millis(value: i64) -> Timestamp {
    Timestamp::from_unix_millis(value).expect("test clocks stay within the representable range")
}

/// A clock that always reads the same instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub Timestamp);

impl Default for FixedClock {
    /// A clock stopped at [`test_start`].
    fn default() -> Self {
        Self(test_start())
    }
}

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// Ids shaped like UUIDv7 with a fixed time part and a counter in the random part:
/// distinct, increasing in the order they are made, and the same in every run.
#[derive(Debug, Default)]
pub struct SequentialIds {
    issued: AtomicU64,
}

impl SequentialIds {
    /// A generator whose first id ends in 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many ids were made so far.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }
}

impl IdGenerator for SequentialIds {
    fn new_id(&self) -> uuid::Uuid {
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        // The counter goes in the last eight bytes. The top two bits of those carry the
        // UUID variant, which leaves 62 bits for the counter: more than any test uses.
        let mut random = [0u8; 10];
        random[2..].copy_from_slice(&n.to_be_bytes());
        let millis = u64::try_from(TEST_START_MILLIS).expect("the test epoch is positive");
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }
}

/// An event bus that remembers every event published on it, for assertions, and
/// delivers them to subscribers like the in-process bus does: one broadcast channel
/// per conversation, in publication order.
#[derive(Debug)]
pub struct RecordingEventBus {
    state: Mutex<BusState>,
    /// Counts publications, so that [`RecordingEventBus::wait_for`] wakes on each.
    published: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct BusState {
    events: Vec<ConversationEvent>,
    channels: HashMap<ConversationId, broadcast::Sender<SharedEvent>>,
    unavailable: bool,
}

/// How many events a subscriber of the recording bus may fall behind.
const SUBSCRIBER_CAPACITY: usize = 4096;

impl RecordingEventBus {
    /// A bus with nothing recorded.
    pub fn new() -> Self {
        Self {
            state: Mutex::default(),
            published: watch::Sender::new(0),
        }
    }

    /// Every event published so far, in order.
    pub fn events(&self) -> Vec<ConversationEvent> {
        self.lock().events.clone()
    }

    /// The events published so far for one conversation, in order.
    pub fn events_of(&self, conversation: ConversationId) -> Vec<ConversationEvent> {
        self.lock()
            .events
            .iter()
            .filter(|e| e.conversation_id == conversation)
            .cloned()
            .collect()
    }

    /// Forgets the events recorded so far.
    pub fn clear(&self) {
        self.lock().events.clear();
    }

    /// Makes `publish` and `subscribe` fail with `EventBusError::Unavailable` (while
    /// `unavailable` is true), to test how callers cope with a bus that is down.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.lock().unavailable = unavailable;
    }

    /// Waits until `done` holds for the events recorded so far, or `timeout` passes.
    /// Returns whether `done` held. Checks again after every publication, so it never
    /// needs a sleep.
    pub async fn wait_for(
        &self,
        mut done: impl FnMut(&[ConversationEvent]) -> bool,
        timeout: Duration,
    ) -> bool {
        let mut published = self.published.subscribe();
        let wait = async {
            loop {
                if done(&self.events()) {
                    return true;
                }
                if published.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout(timeout, wait).await.unwrap_or(false)
    }

    fn lock(&self) -> MutexGuard<'_, BusState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for RecordingEventBus {
    fn default() -> Self {
        Self::new()
    }
}

fn unavailable() -> EventBusError {
    EventBusError::Unavailable("the recording bus was set unavailable".into())
}

#[async_trait]
impl EventBus for RecordingEventBus {
    async fn publish(&self, event: ConversationEvent) -> Result<(), EventBusError> {
        {
            let mut state = self.lock();
            if state.unavailable {
                return Err(unavailable());
            }
            state.events.push(event.clone());
            if let Some(sender) = state.channels.get(&event.conversation_id) {
                // An error only means nobody listens right now.
                let _ = sender.send(SharedEvent::new(event));
            }
        }
        self.published.send_modify(|count| *count += 1);
        Ok(())
    }

    async fn subscribe(&self, conversation: ConversationId) -> Result<EventStream, EventBusError> {
        let receiver = {
            let mut state = self.lock();
            if state.unavailable {
                return Err(unavailable());
            }
            state
                .channels
                .entry(conversation)
                .or_insert_with(|| broadcast::channel(SUBSCRIBER_CAPACITY).0)
                .subscribe()
        };
        let stream = stream::unfold(receiver, |mut receiver| async move {
            // A lagging subscriber's stream ends, as the port allows, rather than
            // going on with a gap.
            receiver.recv().await.ok().map(|event| (event, receiver))
        });
        Ok(stream.boxed())
    }
}

/// Makes the error a failing [`ScriptedEngine`] reports; called once per reply,
/// because `BotError` cannot be cloned.
type ErrorFactory = Arc<dyn Fn() -> BotError + Send + Sync>;

#[derive(Clone)]
enum Script {
    Reply {
        deltas: Vec<String>,
        reply: BotReply,
    },
    Echo,
    Fail(ErrorFactory),
    EndEarly {
        deltas: Vec<String>,
    },
}

/// A bot engine that answers every message the same scripted way: some deltas and
/// a final reply, the user's own text, an error, or a stream that ends too soon;
/// optionally after a delay or once a gate lets it through. Clones share the record
/// of the requests they were given.
#[derive(Clone)]
pub struct ScriptedEngine {
    script: Script,
    delay: Option<Duration>,
    gate: Option<Arc<Semaphore>>,
    reads_history: bool,
    reads_session: bool,
    requests: Arc<Mutex<Vec<BotRequest>>>,
}

impl std::fmt::Debug for ScriptedEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedEngine")
            .field("delay", &self.delay)
            .field("gated", &self.gate.is_some())
            .finish_non_exhaustive()
    }
}

impl ScriptedEngine {
    fn new(script: Script) -> Self {
        Self {
            script,
            delay: None,
            gate: None,
            reads_history: true,
            reads_session: true,
            requests: Arc::default(),
        }
    }

    /// Streams `deltas`, then replies with `content`.
    pub fn replying<I, S>(deltas: I, content: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::replying_with(
            deltas,
            BotReply {
                content: content.into(),
                ..BotReply::default()
            },
        )
    }

    /// Streams `deltas`, then finishes with `reply` (attachments, suggestions and a
    /// new session context included).
    pub fn replying_with<I, S>(deltas: I, reply: BotReply) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(Script::Reply {
            deltas: deltas.into_iter().map(Into::into).collect(),
            reply,
        })
    }

    /// Replies with the text of the message it answers, without deltas.
    pub fn echo() -> Self {
        Self::new(Script::Echo)
    }

    /// Fails every reply with the error `make_error` returns.
    pub fn failing(make_error: impl Fn() -> BotError + Send + Sync + 'static) -> Self {
        Self::new(Script::Fail(Arc::new(make_error)))
    }

    /// Streams `deltas`, then ends without a final reply (a broken engine).
    pub fn ending_without_reply<I, S>(deltas: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(Script::EndEarly {
            deltas: deltas.into_iter().map(Into::into).collect(),
        })
    }

    /// Waits `delay` (tokio time, so a paused test clock skips it) before the first
    /// chunk of every reply.
    #[must_use]
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Takes (and keeps) one permit of `gate` before the first chunk of every reply:
    /// a test holds replies back until it adds permits.
    #[must_use]
    pub fn gated(mut self, gate: Arc<Semaphore>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// Says it does not read the history ([`BotEngine::reads_history`]).
    #[must_use]
    pub fn without_history(mut self) -> Self {
        self.reads_history = false;
        self
    }

    /// Says it does not read the session ([`BotEngine::reads_session`]).
    #[must_use]
    pub fn without_session(mut self) -> Self {
        self.reads_session = false;
        self
    }

    /// Every request the engine was given, in order.
    pub fn requests(&self) -> Vec<BotRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many replies the engine was asked for.
    pub fn calls(&self) -> usize {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

impl BotEngine for ScriptedEngine {
    fn reads_history(&self) -> bool {
        self.reads_history
    }

    fn reads_session(&self) -> bool {
        self.reads_session
    }

    fn reply(&self, request: BotRequest) -> BoxStream<'static, Result<ReplyChunk, BotError>> {
        let deltas = |deltas: &[String]| {
            deltas
                .iter()
                .map(|d| Ok(ReplyChunk::Delta(d.clone())))
                .collect::<Vec<_>>()
        };
        let mut chunks = match &self.script {
            Script::Reply { deltas: d, reply } => {
                let mut chunks = deltas(d);
                chunks.push(Ok(ReplyChunk::Done(reply.clone())));
                chunks
            }
            Script::Echo => vec![Ok(ReplyChunk::Done(BotReply {
                content: request.message.content.as_str().to_owned(),
                ..BotReply::default()
            }))],
            Script::Fail(make_error) => vec![Err(make_error())],
            Script::EndEarly { deltas: d } => deltas(d),
        };
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request);
        let delay = self.delay;
        let gate = self.gate.clone();
        stream::once(async move {
            if let Some(gate) = gate
                && let Ok(permit) = gate.acquire().await
            {
                permit.forget();
            }
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
        })
        // The closure runs once, after the wait; taking the chunks out of it lets
        // them move into the stream although `BotError` cannot be cloned.
        .flat_map(move |()| stream::iter(std::mem::take(&mut chunks)))
        .boxed()
    }
}

/// An engine registry that serves every bot with the same engine.
#[derive(Clone)]
pub struct StaticEngines(pub Arc<dyn BotEngine>);

impl StaticEngines {
    /// A registry serving every bot with `engine`.
    pub fn of(engine: impl BotEngine + 'static) -> Self {
        Self(Arc::new(engine))
    }
}

impl std::fmt::Debug for StaticEngines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StaticEngines(..)")
    }
}

impl EngineRegistry for StaticEngines {
    fn engine_for(&self, _bot: &Bot) -> Result<Arc<dyn BotEngine>, BotError> {
        Ok(Arc::clone(&self.0))
    }
}
