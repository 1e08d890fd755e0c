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
    /// It answers from the message alone.
    fn reads_history(&self) -> bool {
        false
    }

    fn reads_session(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use confab_domain::bot::EngineKind;
    use confab_domain::event::EventKind;
    use confab_domain::message::Sender;
    use confab_domain::reply::ReplySettings;
    use confab_domain::service::{MessageDraft, StartConversation};
    use confab_domain::testing::{TestPorts, test_bot, user};

    use crate::BuiltinEngines;

    fn ports_with_echo(settings: serde_json::Value) -> TestPorts {
        let ports = TestPorts::new(Arc::new(BuiltinEngines::new()));
        let mut bot = test_bot("echo");
        bot.engine.kind = EngineKind::Echo;
        if let serde_json::Value::Object(settings) = settings {
            bot.engine.settings = settings;
        }
        ports.store.insert_bot(bot);
        ports
    }

    async fn reply_to(ports: &TestPorts, text: &str) -> confab_domain::message::Message {
        let service = ports.service(ReplySettings::default());
        let caller = user("alice");
        let started = service
            .start(
                &caller,
                StartConversation {
                    bot_id: confab_domain::bot::BotId::parse("echo").unwrap(),
                    initial_message: Some(MessageDraft::parse(text, Vec::new(), None).unwrap()),
                    title: None,
                    metadata: Default::default(),
                },
            )
            .await
            .unwrap();
        let message = started.initial_message.unwrap();
        let replies = service
            .await_replies(&message, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(replies.len(), 1);
        replies.into_iter().next().unwrap()
    }

    #[tokio::test]
    async fn echo_answers_with_the_users_own_text() {
        let ports = ports_with_echo(serde_json::json!({}));
        let reply = reply_to(&ports, "Hello there").await;
        assert_eq!(reply.sender, Sender::Bot);
        assert_eq!(reply.content.as_str(), "Hello there");
        let deltas = ports
            .events
            .events()
            .into_iter()
            .filter(|e| matches!(e.kind, EventKind::Delta { .. }))
            .count();
        assert_eq!(deltas, 0);
    }

    #[tokio::test]
    async fn streaming_echo_sends_each_word_as_a_delta_before_the_message() {
        let ports = ports_with_echo(serde_json::json!({ "stream": true }));
        let reply = reply_to(&ports, "one two three").await;
        let deltas: Vec<(u32, String)> = ports
            .events
            .events()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Delta {
                    reply_id,
                    index,
                    content,
                    ..
                } if reply_id == reply.id => Some((index, content)),
                _ => None,
            })
            .collect();
        assert_eq!(
            deltas,
            [
                (0, "one ".to_owned()),
                (1, "two ".to_owned()),
                (2, "three".to_owned())
            ]
        );
    }

    #[test]
    fn settings_of_the_wrong_type_are_refused() {
        let mut settings = serde_json::Map::new();
        settings.insert("stream".into(), serde_json::json!("yes"));
        assert!(super::EchoEngine::from_settings(&settings).is_err());
        settings.clear();
        settings.insert("word_delay_ms".into(), serde_json::json!(-5));
        assert!(super::EchoEngine::from_settings(&settings).is_err());
    }
}
