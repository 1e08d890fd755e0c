//! What happens in a conversation, as the event bus carries it to subscribers.

use crate::conversation::{ConversationId, ConversationStatus};
use crate::handoff::HandoffState;
use crate::message::{Feedback, Message, MessageId, Sender};
use crate::session::SessionId;

/// One thing that happened in a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationEvent {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its session, the id WebSocket clients address it by.
    pub session_id: SessionId,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A message was stored.
    Message(Message),
    /// Part of a bot reply that is still being produced; not stored.
    Delta {
        /// The id the stored reply will have.
        reply_id: MessageId,
        /// 0, 1, 2 … in the order of the parts.
        index: u32,
        /// The new text of this part, or all text so far when `snapshot` is set.
        content: String,
        /// Whether `content` is the whole text so far rather than one part.
        snapshot: bool,
    },
    /// Someone started or stopped typing.
    Typing {
        /// Who.
        sender: Sender,
        /// Started (`true`) or stopped.
        active: bool,
    },
    /// The conversation was archived or unarchived.
    Status(ConversationStatus),
    /// The conversation was deleted.
    Deleted,
    /// A user rated a bot reply, changed the rating, or took it back (`None`).
    Feedback {
        /// The rated reply.
        message_id: MessageId,
        /// The feedback as it now is.
        feedback: Option<Feedback>,
    },
    /// Who answers the user changed (see [`crate::handoff`]); the stored `system`
    /// message saying so is published as a [`EventKind::Message`] of its own.
    Handoff(HandoffState),
}
