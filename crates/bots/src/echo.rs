//! The `echo` engine: answers each user message with the same text. Useful as a
//! default bot, in tests, and to measure the server without a bot's own latency.

use std::time::Duration;

use confab_domain::error::BotError;
use confab_domain::ports::{BotEngine, BotReply, BotRequest, ReplyChunk};
use futures::StreamExt;
use futures::stream::{self, BoxStream};

/// Echoes the user's text. With `stream` set it sends the text word by word as
/// deltas first, as an LLM would, so streaming is testable without one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoEngine {
    /// Stream the reply word by word before the final message.
    pub stream: bool,
    /// Pause between streamed words.
    pub word_delay: Duration,
}

impl EchoEngine {
    /// Reads the bot's settings: `stream` (bool) and `word_delay_ms` (integer).
    ///
    /// # Errors
    /// `BotError::Misconfigured` when a setting has the wrong type.
    pub fn from_settings(
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, BotError> {
        let stream = match settings.get("stream") {
            None => false,
            Some(value) => value.as_bool().ok_or_else(|| {
                BotError::Misconfigured("echo: `stream` must be a boolean".into())
            })?,
        };
        let word_delay_ms = match settings.get("word_delay_ms") {
            None => 0,
            Some(value) => value.as_u64().ok_or_else(|| {
                BotError::Misconfigured(
                    "echo: `word_delay_ms` must be a non-negative integer".into(),
                )
            })?,
        };
        Ok(Self {
            stream,
            word_delay: Duration::from_millis(word_delay_ms),
        })
    }
}

impl BotEngine for EchoEngine {
    fn reply(&self, request: BotRequest) -> BoxStream<'static, Result<ReplyChunk, BotError>> {
        let text = request.message.content.as_str().to_owned();
        let done = ReplyChunk::Done(BotReply {
            content: text.clone(),
            ..BotReply::default()
        });
        if !self.stream {
            return stream::iter([Ok(done)]).boxed();
        }
        let delay = self.word_delay;
        // split_inclusive keeps the spaces, so the deltas concatenate to the text.
        let words: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
        stream::iter(words)
            .then(move |word| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(ReplyChunk::Delta(word))
            })
            .chain(stream::iter([Ok(done)]))
            .boxed()
    }
}
