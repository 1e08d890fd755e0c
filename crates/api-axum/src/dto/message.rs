//! The wire shapes of messages: a stored message as REST responses and WebSocket
//! frames show it, its attachments, quick replies and feedback.

use confab_domain::error::ValidationError;
use confab_domain::message::{
    Attachment, ClientMessageId, Feedback, FeedbackComment, Message, Rating, Sender,
};
use confab_domain::timestamp::Timestamp;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

/// Who wrote a message, on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SenderBody {
    /// The conversation's user.
    User,
    /// The conversation's bot.
    Bot,
    /// confab itself, e.g. to say that a bot failed.
    System,
    /// A person answering in the bot's place; `sender_id` is their user id.
    Agent,
}

impl From<Sender> for SenderBody {
    fn from(sender: Sender) -> Self {
        match sender {
            Sender::User => Self::User,
            Sender::Bot => Self::Bot,
            Sender::System => Self::System,
            Sender::Agent => Self::Agent,
        }
    }
}

/// A file or link attached to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AttachmentBody {
    /// What it is: `image`, `file`, `audio`, `video`, `link` …; 1 to 32 bytes,
    /// without NUL.
    #[serde(rename = "type")]
    #[schema(
        example = "image",
        min_length = 1,
        max_length = 32,
        pattern = r"^[^\u0000]*$"
    )]
    pub kind: String,
    /// An absolute http(s) URL with a host, of at most 2048 bytes, without whitespace
    /// or control characters.
    #[schema(example = "https://example.com/cat.png", schema_with = super::text::http_url)]
    pub url: String,
    /// Its media type, when known: 1 to 255 bytes, without NUL.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255, pattern = r"^[^\u0000]*$")]
    pub content_type: Option<String>,
    /// Its file name, when known: 1 to 255 bytes, without NUL.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255, pattern = r"^[^\u0000]*$")]
    pub name: Option<String>,
    /// Its size in bytes, when known.
    #[serde(default, deserialize_with = "super::whole_number")]
    pub size_bytes: Option<u64>,
}

impl TryFrom<AttachmentBody> for Attachment {
    type Error = ValidationError;

    /// Checks the attachment against the model's rules.
    fn try_from(body: AttachmentBody) -> Result<Self, Self::Error> {
        Attachment::parse(
            &body.kind,
            &body.url,
            body.content_type.as_deref(),
            body.name.as_deref(),
            body.size_bytes,
        )
    }
}

impl From<Attachment> for AttachmentBody {
    fn from(attachment: Attachment) -> Self {
        Self {
            kind: attachment.kind,
            url: attachment.url,
            content_type: attachment.content_type,
            name: attachment.name,
            size_bytes: attachment.size_bytes,
        }
    }
}

/// A quick reply a bot offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SuggestionBody {
    /// The text the user would send.
    pub text: String,
}

/// One stored message, as REST responses and WebSocket `message` frames show it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MessageBody {
    /// The message's id.
    pub id: Uuid,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// Its position in the conversation: 1, 2, 3 … without gaps.
    #[schema(example = 1)]
    pub seq: u64,
    /// Who wrote it.
    pub sender: SenderBody,
    /// The user id or bot id of the writer (`confab` for system messages).
    pub sender_id: String,
    /// The text.
    pub content: String,
    /// Attached files and links.
    pub attachments: Vec<AttachmentBody>,
    /// Quick replies a bot offers.
    pub suggestions: Vec<SuggestionBody>,
    /// The client's own id for the message, when it sent one.
    pub client_message_id: Option<String>,
    /// The user message a bot or system message answers.
    pub reply_to: Option<Uuid>,
    /// Server time of storage, RFC 3339 UTC with milliseconds.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T21:05:40.123Z")]
    pub timestamp: Timestamp,
    /// Client or bot data, a JSON object.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The user's rating of a bot reply; null when none was given.
    pub feedback: Option<FeedbackBody>,
}

/// A rating of a bot reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RatingBody {
    /// Helpful.
    Up,
    /// Not helpful.
    Down,
}

impl From<Rating> for RatingBody {
    fn from(rating: Rating) -> Self {
        match rating {
            Rating::Up => Self::Up,
            Rating::Down => Self::Down,
        }
    }
}

impl From<RatingBody> for Rating {
    fn from(rating: RatingBody) -> Self {
        match rating {
            RatingBody::Up => Self::Up,
            RatingBody::Down => Self::Down,
        }
    }
}

/// A user's feedback on a bot reply, as messages carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FeedbackBody {
    /// Up or down.
    pub rating: RatingBody,
    /// Why, if the user said.
    pub comment: Option<String>,
    /// When it was given (or last changed).
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

impl From<Feedback> for FeedbackBody {
    fn from(feedback: Feedback) -> Self {
        Self {
            rating: feedback.rating.into(),
            comment: feedback.comment.map(FeedbackComment::into_string),
            at: feedback.at,
        }
    }
}

impl From<&Feedback> for FeedbackBody {
    fn from(feedback: &Feedback) -> Self {
        Self::from(feedback.clone())
    }
}

/// A time as the wire shows it (RFC 3339, UTC, milliseconds), written straight into
/// the output: ids and times are the only text of a message the body would
/// otherwise allocate, 50 times per history page. Ids serialize as their hyphenated
/// text the same way.
fn rfc3339<S: Serializer>(at: &Timestamp, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(at)
}

/// Moves the message's text into the body: a history page converts 50 of them.
impl From<Message> for MessageBody {
    fn from(message: Message) -> Self {
        Self {
            id: message.id.as_uuid(),
            conversation_id: message.conversation_id.as_uuid(),
            seq: message.seq.get(),
            sender: message.sender.into(),
            sender_id: message.sender_id,
            content: message.content.into_string(),
            attachments: message
                .attachments
                .into_vec()
                .into_iter()
                .map(AttachmentBody::from)
                .collect(),
            suggestions: message
                .suggestions
                .into_iter()
                .map(|s| SuggestionBody { text: s.text })
                .collect(),
            client_message_id: message.client_message_id.map(ClientMessageId::into_string),
            reply_to: message.reply_to.map(|id| id.as_uuid()),
            timestamp: message.timestamp,
            metadata: message.metadata.into_value(),
            feedback: message.feedback.map(FeedbackBody::from),
        }
    }
}

/// From a borrowed message, such as the one in an event the bus shares among its
/// followers (converted once per event, not per follower).
impl From<&Message> for MessageBody {
    fn from(message: &Message) -> Self {
        Self::from(message.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use confab_domain::conversation::{ConversationId, Metadata};
    use confab_domain::message::{Attachments, MessageContent, MessageId, Seq};

    #[test]
    fn a_message_body_writes_ids_and_times_as_the_api_documents_them() {
        let at = Timestamp::parse_rfc3339("2026-11-25T21:05:40.120Z").expect("time");
        let message = Message {
            id: MessageId::from_uuid(Uuid::from_u128(0x0192_f00d_0000_7000_8000_0000_0000_0002)),
            conversation_id: ConversationId::from_uuid(Uuid::from_u128(1)),
            seq: Seq::new(2),
            sender: Sender::Bot,
            sender_id: "echo".to_owned(),
            content: MessageContent::trusted("hi"),
            attachments: Attachments::default(),
            suggestions: Vec::new(),
            client_message_id: None,
            reply_to: Some(MessageId::from_uuid(Uuid::from_u128(u128::MAX))),
            timestamp: at,
            metadata: Metadata::default(),
            feedback: Some(Feedback {
                rating: Rating::Down,
                comment: None,
                at,
            }),
        };
        let written = serde_json::to_string(&MessageBody::from(message)).expect("JSON");
        // Compared as text: the key order and the written strings are the wire's.
        let expected = concat!(
            r#"{"id":"0192f00d-0000-7000-8000-000000000002","#,
            r#""conversation_id":"00000000-0000-0000-0000-000000000001","#,
            r#""seq":2,"sender":"bot","sender_id":"echo","content":"hi","#,
            r#""attachments":[],"suggestions":[],"client_message_id":null,"#,
            r#""reply_to":"ffffffff-ffff-ffff-ffff-ffffffffffff","#,
            r#""timestamp":"2026-11-25T21:05:40.120Z","metadata":{},"#,
            r#""feedback":{"rating":"down","comment":null,"at":"2026-11-25T21:05:40.120Z"}}"#,
        );
        assert_eq!(written, expected);
    }
}
