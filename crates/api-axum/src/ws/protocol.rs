//! The WebSocket protocol's frames: what clients send ([`ClientFrame`]) and what the
//! server sends ([`ServerFrame`]), one JSON object per text frame, tagged by `type`.
//! See docs/websocket.md for every frame with an example.

use axum::extract::ws::Utf8Bytes;
use confab_domain::event::{ConversationEvent, EventKind, SharedEvent};
use serde::{Deserialize, Serialize};

use crate::dto::{AttachmentBody, FeedbackBody, MessageBody};

/// Where a client frame points: the seed's `session_id`, or `conversation_id`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Target {
    pub(crate) session_id: Option<String>,
    pub(crate) conversation_id: Option<String>,
}

/// A frame from the client. Unknown fields are ignored so that clients may add their
/// own; an unknown `type` is refused with an `error` frame.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientFrame {
    /// Send a user message (the seed's frame); also subscribes the socket.
    Message {
        #[serde(flatten)]
        target: Target,
        #[serde(default)]
        content: String,
        #[serde(default)]
        attachments: Vec<AttachmentBody>,
        client_message_id: Option<String>,
    },
    /// Start a conversation, optionally with a first message; subscribes the socket.
    Start {
        bot_id: String,
        initial_message: Option<String>,
        client_message_id: Option<String>,
        title: Option<String>,
    },
    /// Replay every message after `after_seq`, then follow live.
    Subscribe {
        #[serde(flatten)]
        target: Target,
        after_seq: Option<u64>,
    },
    /// Stop following a conversation.
    Unsubscribe {
        #[serde(flatten)]
        target: Target,
    },
    /// Tell the conversation's other sockets that the user is typing.
    Typing {
        #[serde(flatten)]
        target: Target,
    },
    /// Ask for a person to take the conversation over from its bot.
    Handoff {
        #[serde(flatten)]
        target: Target,
    },
    /// Ask for a `pong`.
    Ping,
}

/// The client frame types, for telling "unknown type" from "bad fields".
pub(crate) const CLIENT_FRAME_TYPES: [&str; 7] = [
    "message",
    "start",
    "subscribe",
    "unsubscribe",
    "typing",
    "handoff",
    "ping",
];

/// A frame from the server.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerFrame {
    /// Connection or conversation status.
    Status {
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        session_id: Option<String>,
    },
    /// A stored message.
    Message {
        session_id: String,
        #[serde(flatten)]
        message: MessageBody,
    },
    /// Part of a bot reply being produced.
    Delta {
        conversation_id: String,
        session_id: String,
        reply_id: String,
        index: u32,
        content: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        snapshot: bool,
    },
    /// Someone started or stopped typing.
    Typing {
        conversation_id: String,
        session_id: String,
        sender: &'static str,
        active: bool,
    },
    /// Who answers the conversation's user changed: its bot, nobody yet, or an
    /// agent (`agent_id`).
    Handoff {
        conversation_id: String,
        session_id: String,
        handoff: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
    },
    /// A user rated a bot reply, changed the rating, or took it back (`feedback`
    /// null).
    Feedback {
        conversation_id: String,
        session_id: String,
        message_id: String,
        feedback: Option<FeedbackBody>,
    },
    /// A conversation was started.
    Started {
        conversation_id: String,
        session_id: String,
        status: &'static str,
    },
    /// The socket follows a conversation; `last_seq` is its last message's seq.
    Subscribed {
        conversation_id: String,
        session_id: String,
        last_seq: u64,
    },
    /// The answer to `ping`.
    Pong,
    /// A frame was refused.
    Error {
        code: &'static str,
        message: String,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
}

impl ServerFrame {
    /// The frame for a conversation event. It depends on the event alone, never on
    /// who follows it, which is what lets [`EventFrame`] share one encoding.
    pub(crate) fn from_event(event: &ConversationEvent) -> Self {
        let conversation_id = event.conversation_id.to_string();
        let session_id = event.session_id.to_string();
        match &event.kind {
            EventKind::Message(message) => Self::Message {
                session_id,
                message: MessageBody::from(message),
            },
            EventKind::Delta {
                reply_id,
                index,
                content,
                snapshot,
            } => Self::Delta {
                conversation_id,
                session_id,
                reply_id: reply_id.to_string(),
                index: *index,
                content: content.clone(),
                snapshot: *snapshot,
            },
            EventKind::Typing { sender, active } => Self::Typing {
                conversation_id,
                session_id,
                sender: sender.as_str(),
                active: *active,
            },
            EventKind::Status(status) => {
                Self::conversation_status(conversation_id, session_id, status.as_str())
            }
            EventKind::Deleted => Self::conversation_status(conversation_id, session_id, "deleted"),
            EventKind::Feedback {
                message_id,
                feedback,
            } => Self::Feedback {
                conversation_id,
                session_id,
                message_id: message_id.to_string(),
                feedback: feedback.as_ref().map(FeedbackBody::from),
            },
            EventKind::Handoff(state) => Self::Handoff {
                conversation_id,
                session_id,
                handoff: state.as_str(),
                agent_id: state.holder().map(ToString::to_string),
            },
        }
    }

    fn conversation_status(
        conversation_id: String,
        session_id: String,
        status: &'static str,
    ) -> Self {
        Self::Status {
            status,
            user_id: None,
            conversation_id: Some(conversation_id),
            session_id: Some(session_id),
        }
    }

    /// The frame's `type`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Status { .. } => "status",
            Self::Message { .. } => "message",
            Self::Delta { .. } => "delta",
            Self::Typing { .. } => "typing",
            Self::Handoff { .. } => "handoff",
            Self::Feedback { .. } => "feedback",
            Self::Started { .. } => "started",
            Self::Subscribed { .. } => "subscribed",
            Self::Pong => "pong",
            Self::Error { .. } => "error",
        }
    }

    /// The frame as JSON text.
    pub(crate) fn to_text(&self) -> String {
        // Serialising these plain structs cannot fail: every key is a string and no
        // value is a float or a map with non-string keys.
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"internal error"}"#.to_owned()
        })
    }
}

/// A conversation event's frame as JSON text, made once per event and shared by every
/// socket and SSE stream that follows the conversation: the bus hands them all the
/// same [`SharedEvent`], which keeps the first encoding. The text is reference-counted
/// bytes, so queueing it for a socket copies nothing.
#[derive(Debug, Clone)]
pub(crate) struct EventFrame {
    /// The frame's `type`, which SSE sends as the event's name.
    pub(crate) kind: &'static str,
    pub(crate) text: Utf8Bytes,
}

impl EventFrame {
    /// The frame of `event`, encoded now or by an earlier follower.
    pub(crate) fn of(event: &SharedEvent) -> Self {
        event.encoded(|event| {
            let frame = ServerFrame::from_event(event);
            Self {
                kind: frame.kind(),
                text: frame.to_text().into(),
            }
        })
    }
}
