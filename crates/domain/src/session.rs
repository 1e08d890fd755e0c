//! Sessions: the bot's per-conversation state, and the id WebSocket clients address a
//! conversation by.

use crate::bot::BotId;
use crate::conversation::{Conversation, ConversationId};
use crate::timestamp::Timestamp;
use crate::user::UserId;

crate::id::uuid_id! {
    /// A session's id (UUIDv7).
    SessionId, "session_id"
}

/// One conversation's session. There is exactly one per conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// The session's id.
    pub id: SessionId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// The conversation's user.
    pub user_id: UserId,
    /// The conversation's bot.
    pub bot_id: BotId,
    /// The bot's state for this conversation, e.g. a script's variables; a JSON object.
    pub context: serde_json::Map<String, serde_json::Value>,
    /// When the session began.
    pub created_at: Timestamp,
    /// When the context last changed.
    pub updated_at: Timestamp,
}

impl Session {
    /// The session `conversation` begins with: its ids and an empty context. Also what
    /// a bot engine that does not read the session
    /// ([`BotEngine::reads_session`](crate::ports::BotEngine::reads_session)) is given
    /// instead of the stored one.
    pub fn new(conversation: &Conversation) -> Self {
        Self {
            id: conversation.session_id,
            conversation_id: conversation.id,
            user_id: conversation.user_id.clone(),
            bot_id: conversation.bot_id.clone(),
            context: serde_json::Map::new(),
            created_at: conversation.created_at,
            updated_at: conversation.created_at,
        }
    }
}
