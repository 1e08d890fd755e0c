//! A conversation with one bot on the real reply pipeline, and a way to serve an
//! axum router on 127.0.0.1 for fake bot services.

use std::sync::Arc;
use std::time::Duration;

use confab_bots::BuiltinEngines;
use confab_domain::bot::{BotId, EngineKind};
use confab_domain::conversation::{Conversation, ConversationId, Metadata};
use confab_domain::event::EventKind;
use confab_domain::message::{Message, Sender};
use confab_domain::reply::ReplySettings;
use confab_domain::service::{ConversationService, MessageDraft, StartConversation};
use confab_domain::testing::{TestPorts, test_bot, user};

/// How long a test waits for a reply before failing.
pub(crate) const REPLY_WAIT: Duration = Duration::from_secs(20);

/// A conversation of `alice` with the bot `bot`, served by [`BuiltinEngines`].
pub(crate) struct Chat {
    pub(crate) ports: TestPorts,
    pub(crate) service: ConversationService,
    pub(crate) conversation: Option<ConversationId>,
}

impl Chat {
    /// A chat with a bot of `kind` and `settings` (a JSON object).
    pub(crate) fn with(kind: EngineKind, settings: serde_json::Value) -> Self {
        let ports = TestPorts::new(Arc::new(BuiltinEngines::new()));
        let mut bot = test_bot("bot");
        bot.engine.kind = kind;
        bot.engine.settings = settings
            .as_object()
            .cloned()
            .expect("settings are an object");
        ports.store.insert_bot(bot);
        let service = ports.service(ReplySettings {
            timeout: REPLY_WAIT,
            ..ReplySettings::default()
        });
        Self {
            ports,
            service,
            conversation: None,
        }
    }

    /// Sends `text` (starting the conversation the first time) and returns the
    /// user's stored message.
    pub(crate) async fn send(&mut self, text: &str) -> Message {
        let draft = MessageDraft::parse(text, Vec::new(), None).expect("a valid draft");
        match self.conversation {
            None => {
                let started = self
                    .service
                    .start(
                        &user("alice"),
                        StartConversation {
                            bot_id: BotId::parse("bot").expect("a valid id"),
                            initial_message: Some(draft),
                            title: None,
                            metadata: Metadata::default(),
                        },
                    )
                    .await
                    .expect("starting the conversation");
                self.conversation = Some(started.conversation.id);
                started.initial_message.expect("the initial message")
            }
            Some(id) => {
                self.service
                    .send(&user("alice"), id, draft)
                    .await
                    .expect("sending")
                    .message
            }
        }
    }

    /// Sends `text` and returns the one reply it gets.
    pub(crate) async fn ask(&mut self, text: &str) -> Message {
        let question = self.send(text).await;
        let replies = self
            .service
            .await_replies(&question, REPLY_WAIT)
            .await
            .expect("waiting for the reply");
        assert_eq!(replies.len(), 1, "one reply per question: {replies:?}");
        let reply = replies.into_iter().next().expect("one reply");
        assert_eq!(reply.reply_to, Some(question.id));
        reply
    }

    /// Waits until every reply job has ended, handoffs the bots asked for included.
    pub(crate) async fn settle(&self) {
        assert!(
            self.service.replies().drain(REPLY_WAIT).await,
            "the reply jobs end in time"
        );
    }

    /// The conversation as stored now.
    pub(crate) async fn conversation(&self) -> Conversation {
        let id = self.conversation.expect("a started conversation");
        self.ports
            .ports
            .conversations
            .get(id)
            .await
            .expect("the conversation")
    }

    /// Every stored message as its sender and text, oldest first.
    pub(crate) fn transcript(&self) -> Vec<(Sender, String)> {
        let id = self.conversation.expect("a started conversation");
        self.ports
            .store
            .messages_of(id)
            .into_iter()
            .map(|m| (m.sender, m.content.as_str().to_owned()))
            .collect()
    }

    /// The text of every delta published for the reply `reply`, in order.
    pub(crate) fn deltas_of(&self, reply: &Message) -> Vec<String> {
        self.ports
            .events
            .events()
            .into_iter()
            .filter_map(|event| match event.kind {
                EventKind::Delta {
                    reply_id, content, ..
                } if reply_id == reply.id => Some(content),
                _ => None,
            })
            .collect()
    }
}

/// Serves `router` on a free port of 127.0.0.1 and returns its base URL.
pub(crate) async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a test port");
    let address = listener.local_addr().expect("a local address");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the fake server");
    });
    format!("http://{address}")
}

/// An environment variable cargo sets for every test run, used as a secret so the
/// tests need not change the process environment.
pub(crate) const SECRET_VAR: &str = "CARGO_PKG_NAME";

/// The value of [`SECRET_VAR`].
pub(crate) fn secret() -> String {
    std::env::var(SECRET_VAR).expect("cargo sets CARGO_PKG_NAME for tests")
}
