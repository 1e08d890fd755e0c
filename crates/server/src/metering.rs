//! Domain metrics without touching the domain: decorators around two ports that
//! count what passes through them.
//!
//! - [`MeteredEventBus`]: every stored message is published exactly once (idempotent
//!   retries publish nothing), so counting published `message` events counts stored
//!   messages, by sender; each delivery to a subscriber records the bus's lag.
//! - [`MeteredEngines`]: wraps each bot engine's reply stream to time it from the
//!   request to its `Done` chunk, and to count replies that fail, end early or are
//!   dropped (a timeout drops the stream).
//!
//! Both go through the `metrics` facade; the recorder is the server's Prometheus one.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use async_trait::async_trait;
use confab_domain::bot::Bot;
use confab_domain::conversation::ConversationId;
use confab_domain::error::{BotError, EventBusError};
use confab_domain::event::{ConversationEvent, EventKind};
use confab_domain::ports::{
    BotEngine, BotRequest, EngineRegistry, EventBus, EventStream, ReplyChunk,
};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt as _};

/// Counter of stored messages, by `sender` (`user`, `bot`, `system`).
pub const MESSAGES_STORED: &str = "confab_messages_stored_total";
/// Histogram of bot reply durations in seconds, by `bot`, from request to finished reply.
pub const BOT_REPLY_DURATION: &str = "confab_bot_reply_duration_seconds";
/// Counter of failed bot replies, by `bot` and `reason` (`error`, `incomplete`,
/// `abandoned`, `misconfigured`).
pub const BOT_REPLY_FAILURES: &str = "confab_bot_reply_failures_total";

/// Histogram of event bus lag in seconds: from a message's storage to its delivery to
/// a subscriber (a socket, an SSE stream, a `?wait=true` request).
pub const EVENT_BUS_LAG: &str = "confab_event_bus_lag_seconds";

/// An [`EventBus`] that counts stored messages on their way through, and times their
/// delivery to subscribers.
pub struct MeteredEventBus {
    inner: Arc<dyn EventBus>,
}

impl MeteredEventBus {
    /// Counts what `inner` publishes.
    pub fn new(inner: Arc<dyn EventBus>) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl EventBus for MeteredEventBus {
    async fn publish(&self, event: ConversationEvent) -> Result<(), EventBusError> {
        if let EventKind::Message(message) = &event.kind {
            metrics::counter!(MESSAGES_STORED, "sender" => message.sender.as_str()).increment(1);
        }
        self.inner.publish(event).await
    }

    async fn subscribe(&self, conversation: ConversationId) -> Result<EventStream, EventBusError> {
        let events = self.inner.subscribe(conversation).await?;
        Ok(events
            .inspect(|event| {
                if let EventKind::Message(message) = &event.kind {
                    let stored = message.timestamp.as_offset_date_time();
                    let lag = (time::OffsetDateTime::now_utc() - stored).as_seconds_f64();
                    metrics::histogram!(EVENT_BUS_LAG).record(lag.max(0.0));
                }
            })
            .boxed())
    }
}

/// An [`EngineRegistry`] whose engines report reply latency and failures.
pub struct MeteredEngines {
    inner: Arc<dyn EngineRegistry>,
}

impl MeteredEngines {
    /// Meters the engines of `inner`.
    pub fn new(inner: Arc<dyn EngineRegistry>) -> Self {
        Self { inner }
    }
}

impl EngineRegistry for MeteredEngines {
    fn engine_for(&self, bot: &Bot) -> Result<Arc<dyn BotEngine>, BotError> {
        match self.inner.engine_for(bot) {
            Ok(engine) => Ok(Arc::new(MeteredEngine {
                inner: engine,
                bot: bot.id.as_str().to_owned(),
            })),
            Err(error) => {
                metrics::counter!(BOT_REPLY_FAILURES, "bot" => bot.id.as_str().to_owned(), "reason" => "misconfigured")
                    .increment(1);
                Err(error)
            }
        }
    }
}

struct MeteredEngine {
    inner: Arc<dyn BotEngine>,
    bot: String,
}

impl BotEngine for MeteredEngine {
    fn reply(&self, request: BotRequest) -> BoxStream<'static, Result<ReplyChunk, BotError>> {
        Box::pin(MeteredReply {
            inner: self.inner.reply(request),
            bot: self.bot.clone(),
            started: Instant::now(),
            outcome: None,
        })
    }
}

/// A reply stream that records its outcome once: when it finishes, fails or ends, or
/// else when it is dropped unfinished.
struct MeteredReply {
    inner: BoxStream<'static, Result<ReplyChunk, BotError>>,
    bot: String,
    started: Instant,
    outcome: Option<&'static str>,
}

impl MeteredReply {
    fn record(&mut self, outcome: &'static str) {
        if self.outcome.is_some() {
            return;
        }
        self.outcome = Some(outcome);
        if outcome == "deferred" {
            // The bot answers later by itself: neither a reply to time nor a failure.
            return;
        }
        if outcome == "done" {
            metrics::histogram!(BOT_REPLY_DURATION, "bot" => self.bot.clone())
                .record(self.started.elapsed().as_secs_f64());
        } else {
            metrics::counter!(BOT_REPLY_FAILURES, "bot" => self.bot.clone(), "reason" => outcome)
                .increment(1);
        }
    }
}

impl Stream for MeteredReply {
    type Item = Result<ReplyChunk, BotError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.inner.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(Ok(ReplyChunk::Done(_)))) => self.record("done"),
            Poll::Ready(Some(Ok(ReplyChunk::Deferred))) => self.record("deferred"),
            Poll::Ready(Some(Err(_))) => self.record("error"),
            Poll::Ready(None) => self.record("incomplete"),
            Poll::Ready(Some(Ok(ReplyChunk::Delta(_)))) | Poll::Pending => {}
        }
        next
    }
}

impl Drop for MeteredReply {
    fn drop(&mut self) {
        self.record("abandoned");
    }
}
