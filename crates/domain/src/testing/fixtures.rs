//! Ready-made ports and sample values for tests: [`TestPorts`] wires the service's
//! ports on the fakes, and small helpers make bots, callers and messages to append.

use std::sync::Arc;

use crate::bot::{Bot, BotId, BotName, EngineKind, EngineSpec};
use crate::conversation::{Conversation, Metadata};

use crate::message::{
    Attachments, Message, MessageContent, MessageId, NewMessage, ReplyTo, Sender,
};
use crate::ports::Ports;
use crate::ports::{BotEngine, BotRepository, EngineRegistry};
use crate::reply::ReplySettings;
use crate::service::{ConversationService, StartConversation};
use crate::timestamp::Timestamp;
use crate::user::{Caller, UserId};

use super::fakes::{RecordingEventBus, SequentialIds, StaticEngines, SteppingClock, test_start};
use super::memory::InMemoryStore;

/// The service's ports on fakes, with typed handles on each fake for assertions:
/// [`InMemoryStore`] for every repository, [`RecordingEventBus`], [`SteppingClock`]
/// and [`SequentialIds`]. Replace a field of `ports` (e.g. with a mockall mock) to
/// change one port and keep the rest.
#[derive(Clone)]
pub struct TestPorts {
    /// The ports, ready for [`ConversationService::new`].
    pub ports: Ports,
    /// The store behind `conversations`, `messages`, `sessions` and `bots`.
    pub store: InMemoryStore,
    /// The bus behind `events`.
    pub events: Arc<RecordingEventBus>,
    /// The clock behind `clock`.
    pub clock: Arc<SteppingClock>,
    /// The generator behind `ids`.
    pub ids: Arc<SequentialIds>,
}

impl TestPorts {
    /// Fakes for every port, and `engines` for bot engines.
    pub fn new(engines: Arc<dyn EngineRegistry>) -> Self {
        let store = InMemoryStore::new();
        let events = Arc::new(RecordingEventBus::new());
        let clock = Arc::new(SteppingClock::default());
        let ids = Arc::new(SequentialIds::new());
        let ports = Ports {
            conversations: Arc::new(store.clone()),
            messages: Arc::new(store.clone()),
            sessions: Arc::new(store.clone()),
            bots: Arc::new(store.clone()),
            engines,
            events: Arc::clone(&events) as _,
            leases: Arc::new(store.clone()),
            clock: Arc::clone(&clock) as _,
            ids: Arc::clone(&ids) as _,
        };
        Self {
            ports,
            store,
            events,
            clock,
            ids,
        }
    }

    /// Fakes for every port, with `engine` serving every bot.
    pub fn with_engine(engine: impl BotEngine + 'static) -> Self {
        Self::new(Arc::new(StaticEngines::of(engine)))
    }

    /// Stores [`test_bot`]`(id)` and returns it.
    pub fn seed_bot(&self, id: &str) -> Bot {
        let bot = test_bot(id);
        self.store.insert_bot(bot.clone());
        bot
    }

    /// A service over a clone of these ports.
    pub fn service(&self, settings: ReplySettings) -> ConversationService {
        ConversationService::new(self.ports.clone(), settings)
    }
}

/// The service's ports on an [`InMemoryStore`], a [`RecordingEventBus`], a
/// [`SteppingClock`] and [`SequentialIds`], with `engines` for bot engines. Use
/// [`TestPorts::new`] instead to keep handles on the fakes.
pub fn in_memory_ports(engines: Arc<dyn EngineRegistry>) -> Ports {
    TestPorts::new(engines).ports
}

/// A bot with id and name `id`, the echo engine, and both timestamps at
/// [`test_start`].
///
/// # Panics
/// When `id` is not a valid bot id.
pub fn test_bot(id: &str) -> Bot {
    Bot {
        id: BotId::parse(id).expect("test bot ids are valid slugs"),
        name: BotName::parse(id).expect("a valid bot id is a valid name"),
        description: format!("The {id} test bot."),
        engine: EngineSpec::of(EngineKind::Echo),
        created_at: test_start(),
        updated_at: test_start(),
    }
}

/// Stores [`test_bot`]`(id)` through the ports' bot repository and returns it.
///
/// # Panics
/// When `id` is not a valid bot id or the repository fails.
pub async fn seed_bot(ports: &Ports, id: &str) -> Bot {
    seed_bot_in(&*ports.bots, id).await
}

/// Stores [`test_bot`]`(id)` in `bots` and returns it.
///
/// # Panics
/// When `id` is not a valid bot id or the repository fails.
pub async fn seed_bot_in(bots: &dyn BotRepository, id: &str) -> Bot {
    let bot = test_bot(id);
    bots.upsert(&bot).await.expect("seeding a bot");
    bot
}

/// Starts an empty conversation of `caller`'s with the bot `bot` through `service`.
///
/// # Panics
/// When `bot` is not a valid bot id or the service refuses.
pub async fn start_conversation(
    service: &ConversationService,
    caller: &Caller,
    bot: &str,
) -> Conversation {
    let command = StartConversation {
        bot_id: BotId::parse(bot).expect("a valid bot id"),
        initial_message: None,
        title: None,
        metadata: Metadata::default(),
    };
    service
        .start(caller, command)
        .await
        .expect("starting a conversation")
        .conversation
}

/// An end user calling as `id`.
///
/// # Panics
/// When `id` is not a valid user id.
pub fn user(id: &str) -> Caller {
    Caller::user(UserId::parse(id).expect("test user ids are valid"))
}

/// A plain user message to `conversation`, written by its user at `timestamp`, for a
/// store to append: no attachments, suggestions, client id or metadata (set them with
/// struct update syntax).
pub fn user_message(
    conversation: &Conversation,
    content: &str,
    timestamp: Timestamp,
) -> NewMessage {
    NewMessage {
        id: MessageId::from_uuid(uuid::Uuid::now_v7()),
        conversation_id: conversation.id,
        sender: Sender::User,
        sender_id: conversation.user_id.to_string(),
        content: MessageContent::trusted(content),
        attachments: Attachments::none(),
        suggestions: Vec::new(),
        client_message_id: None,
        answers: None,
        timestamp,
        metadata: Metadata::default(),
    }
}

/// The conversation's bot answering `question` with `content` at `timestamp`.
pub fn bot_reply(
    conversation: &Conversation,
    question: &Message,
    content: &str,
    timestamp: Timestamp,
) -> NewMessage {
    NewMessage {
        sender: Sender::Bot,
        sender_id: conversation.bot_id.to_string(),
        answers: Some(ReplyTo {
            message_id: question.id,
            seq: question.seq,
        }),
        ..user_message(conversation, content, timestamp)
    }
}
