//! Stores' test fixtures shared by this crate's unit tests: a bot, a conversation
//! and a message, made through the repositories.

use confab_domain::bot::{Bot, BotId, BotName, EngineKind, EngineSpec};
use confab_domain::conversation::{Conversation, ConversationId, Metadata};
use confab_domain::message::{
    Attachments, ClientMessageId, MessageContent, MessageId, NewMessage, Sender,
};
use confab_domain::ports::{BotRepository, ConversationRepository};
use confab_domain::session::{Session, SessionId};
use confab_domain::timestamp::Timestamp;
use confab_domain::user::UserId;

use crate::SeaOrmStore;

/// The time every fixture is made at.
pub(crate) fn now() -> Timestamp {
    Timestamp::from_unix_millis(1_764_000_000_000).expect("valid time")
}

/// Alice's new conversation with the echo bot, stored with the bot.
pub(crate) async fn conversation(store: &SeaOrmStore) -> Conversation {
    let bot = Bot {
        id: BotId::parse("echo").expect("bot id"),
        name: BotName::parse("Echo").expect("bot name"),
        description: String::new(),
        engine: EngineSpec::of(EngineKind::Echo),
        created_at: now(),
        updated_at: now(),
    };
    store.upsert(&bot).await.expect("bot stored");
    let conversation = Conversation::begun(
        ConversationId::from_uuid(uuid::Uuid::now_v7()),
        SessionId::from_uuid(uuid::Uuid::now_v7()),
        UserId::parse("alice").expect("user id"),
        bot.id,
        now(),
    );
    let session = Session::new(&conversation);
    store
        .create(&conversation, &session)
        .await
        .expect("conversation stored");
    conversation
}

/// Alice's message "hello" to `conversation`, sent at [`now`].
pub(crate) fn message(conversation: ConversationId, client_id: Option<&str>) -> NewMessage {
    NewMessage {
        id: MessageId::from_uuid(uuid::Uuid::now_v7()),
        conversation_id: conversation,
        sender: Sender::User,
        sender_id: "alice".to_owned(),
        content: MessageContent::trusted("hello"),
        attachments: Attachments::none(),
        suggestions: Vec::new(),
        client_message_id: client_id.map(|id| ClientMessageId::parse(id).expect("id")),
        answers: None,
        timestamp: now(),
        metadata: Metadata::default(),
    }
}
