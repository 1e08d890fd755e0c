//! The bus's wire format: JSON documents that every instance of a cluster exchanges on
//! NATS, kept apart from the domain types on purpose (they have no serde).
//!
//! Each document carries a version, [`WIRE_VERSION`], so that instances of different
//! releases can tell a shape they do not know from a corrupt payload. Fields may be
//! added without a new version (unknown fields are ignored); any other change takes
//! one. Decoding maps back through the domain's parsing constructors, so a value that
//! comes off the wire is as valid as one built locally.

use confab_domain::bot::BotId;
use confab_domain::conversation::{ConversationId, ConversationStatus, Metadata};
use confab_domain::error::ValidationError;
use confab_domain::event::{ConversationEvent, EventKind};
use confab_domain::handoff::HandoffState;
use confab_domain::message::{
    Attachment, Attachments, ClientMessageId, Feedback, FeedbackComment, Message, MessageContent,
    MessageId, Rating, Sender, Seq, Suggestion,
};
use confab_domain::session::SessionId;
use confab_domain::timestamp::Timestamp;
use confab_domain::user::UserId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The version of the documents this build writes and reads.
pub(crate) const WIRE_VERSION: u32 = 1;

/// Why a payload could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    /// Not JSON of the expected shape.
    #[error("malformed payload")]
    Malformed(#[from] serde_json::Error),
    /// Written by a release that speaks another version.
    #[error("unsupported wire version {0}")]
    Version(u32),
    /// A value the model refuses.
    #[error("invalid value")]
    Invalid(#[from] ValidationError),
    /// A name (sender, status) this build does not know.
    #[error("unknown {what} {value:?}")]
    Unknown {
        /// Which field.
        what: &'static str,
        /// The value found.
        value: String,
    },
}

/// A conversation event as it travels, with the time it was published.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope {
    v: u32,
    /// Microseconds since the Unix epoch on the publisher's clock, for the delivery
    /// lag histogram.
    sent_at_us: u64,
    conversation_id: Uuid,
    session_id: Uuid,
    event: WireEvent,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    Message(WireMessage),
    Delta {
        reply_id: Uuid,
        index: u32,
        content: String,
        snapshot: bool,
    },
    Typing {
        sender: String,
        active: bool,
    },
    Status {
        status: String,
    },
    Deleted,
    Handoff {
        handoff: String,
        agent_id: Option<String>,
    },
    Feedback {
        message_id: Uuid,
        feedback: Option<WireFeedback>,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct WireFeedback {
    rating: String,
    comment: Option<String>,
    at_ms: i64,
}

impl From<&Feedback> for WireFeedback {
    fn from(feedback: &Feedback) -> Self {
        Self {
            rating: feedback.rating.as_str().to_owned(),
            comment: feedback.comment.as_ref().map(|c| c.as_str().to_owned()),
            at_ms: feedback.at.unix_millis(),
        }
    }
}

impl TryFrom<WireFeedback> for Feedback {
    type Error = WireError;

    fn try_from(feedback: WireFeedback) -> Result<Self, Self::Error> {
        Ok(Self {
            rating: Rating::parse(&feedback.rating).ok_or(WireError::Unknown {
                what: "rating",
                value: feedback.rating,
            })?,
            comment: feedback.comment.map(FeedbackComment::trusted),
            at: Timestamp::from_unix_millis(feedback.at_ms)?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct WireMessage {
    id: Uuid,
    conversation_id: Uuid,
    seq: u64,
    sender: String,
    sender_id: String,
    content: String,
    attachments: Vec<WireAttachment>,
    suggestions: Vec<String>,
    client_message_id: Option<String>,
    reply_to: Option<Uuid>,
    timestamp_ms: i64,
    metadata: serde_json::Map<String, serde_json::Value>,
    /// Absent in what earlier releases publish.
    #[serde(default)]
    feedback: Option<WireFeedback>,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireAttachment {
    kind: String,
    url: String,
    content_type: Option<String>,
    name: Option<String>,
    size_bytes: Option<u64>,
}

/// A bot that was created, changed or deleted.
#[derive(Debug, Serialize, Deserialize)]
struct WireBotChange {
    v: u32,
    bot_id: String,
}

/// A decoded conversation event and when it was published.
#[derive(Debug)]
pub(crate) struct Received {
    /// The event.
    pub(crate) event: ConversationEvent,
    /// Microseconds since the Unix epoch on the publisher's clock.
    pub(crate) sent_at_us: u64,
}

/// Writes `event` as published at `sent_at_us`.
pub(crate) fn encode_event(
    event: &ConversationEvent,
    sent_at_us: u64,
) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Envelope {
        v: WIRE_VERSION,
        sent_at_us,
        conversation_id: event.conversation_id.as_uuid(),
        session_id: event.session_id.as_uuid(),
        event: WireEvent::from(&event.kind),
    })
}

/// Reads a conversation event.
pub(crate) fn decode_event(payload: &[u8]) -> Result<Received, WireError> {
    let envelope: Envelope = serde_json::from_slice(payload)?;
    if envelope.v != WIRE_VERSION {
        return Err(WireError::Version(envelope.v));
    }
    Ok(Received {
        event: ConversationEvent {
            conversation_id: ConversationId::from_uuid(envelope.conversation_id),
            session_id: SessionId::from_uuid(envelope.session_id),
            kind: EventKind::try_from(envelope.event)?,
        },
        sent_at_us: envelope.sent_at_us,
    })
}

/// Writes a bot change.
pub(crate) fn encode_bot_change(bot: &BotId) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&WireBotChange {
        v: WIRE_VERSION,
        bot_id: bot.as_str().to_owned(),
    })
}

/// Reads a bot change.
pub(crate) fn decode_bot_change(payload: &[u8]) -> Result<BotId, WireError> {
    let change: WireBotChange = serde_json::from_slice(payload)?;
    if change.v != WIRE_VERSION {
        return Err(WireError::Version(change.v));
    }
    Ok(BotId::parse(&change.bot_id)?)
}

impl From<&EventKind> for WireEvent {
    fn from(kind: &EventKind) -> Self {
        match kind {
            EventKind::Message(message) => Self::Message(WireMessage::from(message)),
            EventKind::Delta {
                reply_id,
                index,
                content,
                snapshot,
            } => Self::Delta {
                reply_id: reply_id.as_uuid(),
                index: *index,
                content: content.clone(),
                snapshot: *snapshot,
            },
            EventKind::Typing { sender, active } => Self::Typing {
                sender: sender.as_str().to_owned(),
                active: *active,
            },
            EventKind::Status(status) => Self::Status {
                status: status.as_str().to_owned(),
            },
            EventKind::Deleted => Self::Deleted,
            EventKind::Handoff(state) => Self::Handoff {
                handoff: state.as_str().to_owned(),
                agent_id: state.holder().map(|agent| agent.as_str().to_owned()),
            },
            EventKind::Feedback {
                message_id,
                feedback,
            } => Self::Feedback {
                message_id: message_id.as_uuid(),
                feedback: feedback.as_ref().map(WireFeedback::from),
            },
        }
    }
}

impl TryFrom<WireEvent> for EventKind {
    type Error = WireError;

    fn try_from(event: WireEvent) -> Result<Self, Self::Error> {
        Ok(match event {
            WireEvent::Message(message) => Self::Message(Message::try_from(message)?),
            WireEvent::Delta {
                reply_id,
                index,
                content,
                snapshot,
            } => Self::Delta {
                reply_id: MessageId::from_uuid(reply_id),
                index,
                content,
                snapshot,
            },
            WireEvent::Typing { sender, active } => Self::Typing {
                sender: parse_sender(sender)?,
                active,
            },
            WireEvent::Status { status } => Self::Status(
                ConversationStatus::parse(&status).ok_or(WireError::Unknown {
                    what: "status",
                    value: status,
                })?,
            ),
            WireEvent::Deleted => Self::Deleted,
            WireEvent::Handoff { handoff, agent_id } => {
                let agent = agent_id.as_deref().map(UserId::parse).transpose()?;
                Self::Handoff(HandoffState::from_parts(&handoff, agent).ok_or(
                    WireError::Unknown {
                        what: "handoff",
                        value: handoff,
                    },
                )?)
            }
            WireEvent::Feedback {
                message_id,
                feedback,
            } => Self::Feedback {
                message_id: MessageId::from_uuid(message_id),
                feedback: feedback.map(Feedback::try_from).transpose()?,
            },
        })
    }
}

impl From<&Message> for WireMessage {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id.as_uuid(),
            conversation_id: message.conversation_id.as_uuid(),
            seq: message.seq.get(),
            sender: message.sender.as_str().to_owned(),
            sender_id: message.sender_id.clone(),
            content: message.content.as_str().to_owned(),
            attachments: message
                .attachments
                .as_slice()
                .iter()
                .map(|a| WireAttachment {
                    kind: a.kind.clone(),
                    url: a.url.clone(),
                    content_type: a.content_type.clone(),
                    name: a.name.clone(),
                    size_bytes: a.size_bytes,
                })
                .collect(),
            suggestions: message.suggestions.iter().map(|s| s.text.clone()).collect(),
            client_message_id: message
                .client_message_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            reply_to: message.reply_to.map(|id| id.as_uuid()),
            timestamp_ms: message.timestamp.unix_millis(),
            metadata: message.metadata.as_map().clone(),
            feedback: message.feedback.as_ref().map(WireFeedback::from),
        }
    }
}

impl TryFrom<WireMessage> for Message {
    type Error = WireError;

    fn try_from(message: WireMessage) -> Result<Self, Self::Error> {
        // The bus carries messages that storage already holds, so it must not be
        // stricter than storage: content is taken as stored (a bot's reply may exceed
        // the size users are held to) and attachments are rebuilt field by field, as
        // the storage adapter reads them, so that tightened URL rules never make a
        // stored message undeliverable.
        let attachments = Attachments::parse(
            message
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    kind: a.kind,
                    url: a.url,
                    content_type: a.content_type,
                    name: a.name,
                    size_bytes: a.size_bytes,
                })
                .collect(),
        )?;
        Ok(Self {
            id: MessageId::from_uuid(message.id),
            conversation_id: ConversationId::from_uuid(message.conversation_id),
            seq: Seq::new(message.seq),
            sender: parse_sender(message.sender)?,
            sender_id: message.sender_id,
            content: MessageContent::trusted(message.content),
            attachments,
            suggestions: message
                .suggestions
                .into_iter()
                .map(|text| Suggestion { text })
                .collect(),
            client_message_id: message
                .client_message_id
                .as_deref()
                .map(ClientMessageId::parse)
                .transpose()?,
            reply_to: message.reply_to.map(MessageId::from_uuid),
            timestamp: Timestamp::from_unix_millis(message.timestamp_ms)?,
            metadata: Metadata::parse(serde_json::Value::Object(message.metadata))?,
            feedback: message.feedback.map(Feedback::try_from).transpose()?,
        })
    }
}

fn parse_sender(sender: String) -> Result<Sender, WireError> {
    Sender::parse(&sender).ok_or(WireError::Unknown {
        what: "sender",
        value: sender,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message() -> Message {
        let attachments = Attachments::parse(vec![
            Attachment::parse(
                "image",
                "https://example.com/cat.png",
                Some("image/png"),
                Some("cat.png"),
                Some(2048),
            )
            .unwrap(),
            Attachment::parse("link", "http://example.com", None, None, None).unwrap(),
        ])
        .unwrap();
        Message {
            id: MessageId::from_uuid(Uuid::now_v7()),
            conversation_id: ConversationId::from_uuid(Uuid::now_v7()),
            seq: Seq::new(42),
            sender: Sender::Bot,
            sender_id: "helper-bot".to_owned(),
            content: MessageContent::trusted("  Here is a cat.  "),
            attachments,
            suggestions: vec![
                Suggestion {
                    text: "Another".to_owned(),
                },
                Suggestion {
                    text: "Thanks".to_owned(),
                },
            ],
            client_message_id: Some(ClientMessageId::parse("client-7").unwrap()),
            reply_to: Some(MessageId::from_uuid(Uuid::now_v7())),
            timestamp: Timestamp::from_unix_millis(1_790_000_000_123).unwrap(),
            metadata: Metadata::parse(json!({"cut": true, "nested": {"n": [1, 2.5, null]}}))
                .unwrap(),
            feedback: Some(Feedback {
                rating: Rating::Up,
                comment: FeedbackComment::parse("spot on").unwrap(),
                at: Timestamp::from_unix_millis(1_790_000_000_999).unwrap(),
            }),
        }
    }

    fn every_kind() -> Vec<EventKind> {
        let bare = Message {
            attachments: Attachments::none(),
            suggestions: Vec::new(),
            client_message_id: None,
            reply_to: None,
            metadata: Metadata::default(),
            sender: Sender::User,
            content: MessageContent::trusted("hi"),
            feedback: None,
            ..message()
        };
        vec![
            EventKind::Feedback {
                message_id: bare.id,
                feedback: message().feedback,
            },
            EventKind::Feedback {
                message_id: bare.id,
                feedback: None,
            },
            EventKind::Message(message()),
            EventKind::Message(bare),
            EventKind::Delta {
                reply_id: MessageId::from_uuid(Uuid::now_v7()),
                index: 3,
                content: "so far".to_owned(),
                snapshot: false,
            },
            EventKind::Delta {
                reply_id: MessageId::from_uuid(Uuid::now_v7()),
                index: 0,
                content: String::new(),
                snapshot: true,
            },
            EventKind::Typing {
                sender: Sender::System,
                active: true,
            },
            EventKind::Typing {
                sender: Sender::Bot,
                active: false,
            },
            EventKind::Status(ConversationStatus::Archived),
            EventKind::Status(ConversationStatus::Active),
            EventKind::Deleted,
            EventKind::Handoff(HandoffState::Waiting),
            EventKind::Handoff(HandoffState::Agent(UserId::parse("alice").unwrap())),
            EventKind::Handoff(HandoffState::Bot),
        ]
    }

    fn event(kind: EventKind) -> ConversationEvent {
        ConversationEvent {
            conversation_id: ConversationId::from_uuid(Uuid::now_v7()),
            session_id: SessionId::from_uuid(Uuid::now_v7()),
            kind,
        }
    }

    #[test]
    fn every_event_kind_survives_a_round_trip_unchanged() {
        for kind in every_kind() {
            let sent = event(kind);
            let payload = encode_event(&sent, 1_234_567).unwrap();
            let received = decode_event(&payload).unwrap();
            assert_eq!(received.event, sent);
            assert_eq!(received.sent_at_us, 1_234_567);
        }
    }

    #[test]
    fn a_bot_change_survives_a_round_trip() {
        let bot = BotId::parse("helper-bot").unwrap();
        let payload = encode_bot_change(&bot).unwrap();
        assert_eq!(decode_bot_change(&payload).unwrap(), bot);
    }

    #[test]
    fn documents_carry_their_version() {
        let payload = encode_event(&event(EventKind::Deleted), 0).unwrap();
        let document: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(document["v"], json!(WIRE_VERSION));
        assert_eq!(document["event"], json!({"type": "deleted"}));
    }

    #[test]
    fn another_version_is_refused() {
        let payload = encode_event(&event(EventKind::Deleted), 0).unwrap();
        let mut document: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        document["v"] = json!(WIRE_VERSION + 1);
        let payload = serde_json::to_vec(&document).unwrap();
        assert!(matches!(
            decode_event(&payload),
            Err(WireError::Version(v)) if v == WIRE_VERSION + 1
        ));
    }

    #[test]
    fn garbage_and_invalid_values_are_errors_not_panics() {
        assert!(matches!(
            decode_event(b"\xff not json"),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            decode_event(b"{\"v\":1}"),
            Err(WireError::Malformed(_))
        ));
        let payload = encode_event(&event(EventKind::Message(message())), 0).unwrap();
        let mut document: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        document["event"]["sender"] = json!("robot");
        assert!(matches!(
            decode_event(&serde_json::to_vec(&document).unwrap()),
            Err(WireError::Unknown { what: "sender", .. })
        ));
        document["event"]["sender"] = json!("bot");
        document["event"]["client_message_id"] = json!("");
        assert!(matches!(
            decode_event(&serde_json::to_vec(&document).unwrap()),
            Err(WireError::Invalid(_))
        ));
        assert!(matches!(
            decode_bot_change(b"{\"v\":1,\"bot_id\":\"Not A Slug\"}"),
            Err(WireError::Invalid(_))
        ));
    }
}
