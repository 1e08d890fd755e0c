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

    // What the engine reads decides what the pipeline reads from storage for it: a
    // wrapper that answered the trait's defaults (`true`) would make an echo reply
    // read the session and the history window it never uses.
    fn reads_history(&self) -> bool {
        self.inner.reads_history()
    }

    fn reads_session(&self) -> bool {
        self.inner.reads_session()
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

#[cfg(test)]
mod tests {
    use confab_domain::bot::{BotId, BotName, EngineKind, EngineSpec};
    use confab_domain::ports::BotRequest;
    use confab_domain::timestamp::Timestamp;

    use super::*;

    /// An engine that reads neither its history nor its session.
    struct Frugal;

    impl BotEngine for Frugal {
        fn reply(&self, _: BotRequest) -> BoxStream<'static, Result<ReplyChunk, BotError>> {
            Box::pin(futures::stream::empty())
        }

        fn reads_history(&self) -> bool {
            false
        }

        fn reads_session(&self) -> bool {
            false
        }
    }

    struct OneEngine;

    impl EngineRegistry for OneEngine {
        fn engine_for(&self, _: &Bot) -> Result<Arc<dyn BotEngine>, BotError> {
            Ok(Arc::new(Frugal))
        }
    }

    #[test]
    fn a_metered_engine_reads_what_its_engine_reads() {
        let at = Timestamp::from_unix_millis(0).expect("time");
        let bot = Bot {
            id: BotId::parse("echo").expect("bot id"),
            name: BotName::parse("Echo").expect("bot name"),
            description: String::new(),
            engine: EngineSpec::of(EngineKind::Echo),
            created_at: at,
            updated_at: at,
        };
        let engine = MeteredEngines::new(Arc::new(OneEngine))
            .engine_for(&bot)
            .expect("engine");
        assert!(!engine.reads_history());
        assert!(!engine.reads_session());
    }
}
