//! Conversions between rows and domain values, explicit in both directions.
//!
//! Reading goes through the domain's parsing constructors, so a row that breaks a
//! rule of the model (an unknown status, a malformed id, broken JSON) becomes a
//! [`RowError`] and thus `RepoError::Internal`, never a panic or an invalid value.
//! Free text the domain accepts without checks on the way in (message content) is
//! taken as it is on the way out too.

use confab_domain::bot::{Bot, BotId, BotName, EngineKind, EngineSpec};
use confab_domain::conversation::{
    Conversation, ConversationId, ConversationStatus, Metadata, Title,
};
use confab_domain::handoff::HandoffState;
use confab_domain::message::{
    Attachment, Attachments, ClientMessageId, Feedback, FeedbackComment, Message, MessageContent,
    MessageId, NewMessage, Rating, Sender, Seq, Suggestion,
};
use confab_domain::session::{Session, SessionId};
use confab_domain::timestamp::Timestamp;
use confab_domain::user::UserId;
use serde::{Deserialize, Serialize};

use crate::entity::{bot, conversation, message, session};
use crate::error::RowError;

type JsonObject = serde_json::Map<String, serde_json::Value>;

const BOTS: &str = "bots";
const CONVERSATIONS: &str = "conversations";
const SESSIONS: &str = "user_sessions";
const MESSAGES: &str = "message_history";

/// An attachment as stored in `message_history.attachments`, in the wire's field names.
#[derive(Serialize, Deserialize)]
struct StoredAttachment {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size_bytes: Option<u64>,
}

/// A quick reply as stored in `message_history.suggestions`.
#[derive(Serialize, Deserialize)]
struct StoredSuggestion {
    text: String,
}

/// Milliseconds as stored for a timestamp.
pub(crate) fn millis(at: Timestamp) -> i64 {
    at.unix_millis()
}

fn timestamp(table: &'static str, millis: i64) -> Result<Timestamp, RowError> {
    Timestamp::from_unix_millis(millis)
        .map_err(|_| RowError::new(table, format!("time {millis} out of range")))
}

fn seq(table: &'static str, value: i64) -> Result<Seq, RowError> {
    u64::try_from(value)
        .map(Seq::new)
        .map_err(|_| RowError::new(table, format!("negative seq {value}")))
}

fn count(table: &'static str, value: i64) -> Result<u64, RowError> {
    u64::try_from(value).map_err(|_| RowError::new(table, format!("negative count {value}")))
}

/// A seq as stored. Seqs never come near `i64::MAX`; the check keeps a corrupt value
/// from wrapping silently.
pub(crate) fn seq_value(seq: Seq) -> Result<i64, RowError> {
    i64::try_from(seq.get()).map_err(|_| RowError::new(MESSAGES, format!("seq {seq} too large")))
}

fn count_value(table: &'static str, value: u64) -> Result<i64, RowError> {
    i64::try_from(value).map_err(|_| RowError::new(table, format!("count {value} too large")))
}

fn json_object(table: &'static str, text: &str) -> Result<JsonObject, RowError> {
    serde_json::from_str(text).map_err(|e| RowError::new(table, format!("bad JSON object: {e}")))
}

fn json_text<T: Serialize + ?Sized>(table: &'static str, value: &T) -> Result<String, RowError> {
    serde_json::to_string(value).map_err(|e| RowError::new(table, format!("unencodable JSON: {e}")))
}

fn user_id(table: &'static str, value: &str) -> Result<UserId, RowError> {
    UserId::parse(value).map_err(|e| RowError::new(table, e.to_string()))
}

fn bot_id(table: &'static str, value: &str) -> Result<BotId, RowError> {
    BotId::parse(value).map_err(|e| RowError::new(table, e.to_string()))
}

impl TryFrom<conversation::Model> for Conversation {
    type Error = RowError;

    fn try_from(row: conversation::Model) -> Result<Self, Self::Error> {
        let status = ConversationStatus::parse(&row.status)
            .ok_or_else(|| RowError::new(CONVERSATIONS, format!("status {:?}", row.status)))?;
        let title = row
            .title
            .as_deref()
            .map(Title::parse)
            .transpose()
            .map_err(|e| RowError::new(CONVERSATIONS, e.to_string()))?;
        let metadata = metadata(CONVERSATIONS, &row.metadata)?;
        Ok(Self {
            id: ConversationId::from_uuid(row.id),
            session_id: SessionId::from_uuid(row.session_id),
            user_id: user_id(CONVERSATIONS, &row.user_id)?,
            bot_id: bot_id(CONVERSATIONS, &row.bot_id)?,
            status,
            title,
            metadata,
            created_at: timestamp(CONVERSATIONS, row.created_at_ms)?,
            last_activity: timestamp(CONVERSATIONS, row.last_activity_ms)?,
            last_message: row.last_message,
            message_count: count(CONVERSATIONS, row.message_count)?,
            last_seq: seq(CONVERSATIONS, row.last_seq)?,
            last_user_seq: seq(CONVERSATIONS, row.last_user_seq)?,
            replied_seq: seq(CONVERSATIONS, row.replied_seq)?,
            handoff: HandoffState::from_parts(
                &row.handoff,
                row.handoff_agent
                    .as_deref()
                    .map(|agent| user_id(CONVERSATIONS, agent))
                    .transpose()?,
            )
            .ok_or_else(|| RowError::new(CONVERSATIONS, format!("handoff {:?}", row.handoff)))?,
            handoff_since: row
                .handoff_since_ms
                .map(|ms| timestamp(CONVERSATIONS, ms))
                .transpose()?,
        })
    }
}

impl TryFrom<&Conversation> for conversation::Model {
    type Error = RowError;

    fn try_from(conversation: &Conversation) -> Result<Self, Self::Error> {
        Ok(Self {
            id: conversation.id.as_uuid(),
            session_id: conversation.session_id.as_uuid(),
            user_id: conversation.user_id.as_str().to_owned(),
            bot_id: conversation.bot_id.as_str().to_owned(),
            status: conversation.status.as_str().to_owned(),
            title: conversation.title.as_ref().map(|t| t.as_str().to_owned()),
            metadata: json_text(CONVERSATIONS, conversation.metadata.as_map())?,
            created_at_ms: millis(conversation.created_at),
            last_activity_ms: millis(conversation.last_activity),
            last_message: conversation.last_message.clone(),
            message_count: count_value(CONVERSATIONS, conversation.message_count)?,
            last_seq: seq_value(conversation.last_seq)?,
            last_user_seq: seq_value(conversation.last_user_seq)?,
            replied_seq: seq_value(conversation.replied_seq)?,
            // A new or mapped conversation carries no lease; leases are only ever
            // written by `leases.rs`.
            reply_holder: None,
            reply_lease_until_ms: None,
            handoff: conversation.handoff.as_str().to_owned(),
            handoff_agent: conversation.handoff.holder().map(|a| a.as_str().to_owned()),
            handoff_since_ms: conversation.handoff_since.map(millis),
        })
    }
}

impl TryFrom<session::Model> for Session {
    type Error = RowError;

    fn try_from(row: session::Model) -> Result<Self, Self::Error> {
        Ok(Self {
            id: SessionId::from_uuid(row.id),
            conversation_id: ConversationId::from_uuid(row.conversation_id),
            user_id: user_id(SESSIONS, &row.user_id)?,
            bot_id: bot_id(SESSIONS, &row.bot_id)?,
            context: json_object(SESSIONS, &row.context)?,
            created_at: timestamp(SESSIONS, row.created_at_ms)?,
            updated_at: timestamp(SESSIONS, row.updated_at_ms)?,
        })
    }
}

impl TryFrom<&Session> for session::Model {
    type Error = RowError;

    fn try_from(session: &Session) -> Result<Self, Self::Error> {
        Ok(Self {
            id: session.id.as_uuid(),
            conversation_id: session.conversation_id.as_uuid(),
            user_id: session.user_id.as_str().to_owned(),
            bot_id: session.bot_id.as_str().to_owned(),
            context: context_text(&session.context)?,
            created_at_ms: millis(session.created_at),
            updated_at_ms: millis(session.updated_at),
        })
    }
}

/// A session context as stored.
pub(crate) fn context_text(context: &JsonObject) -> Result<String, RowError> {
    json_text(SESSIONS, context)
}

/// The stored JSON of no attachments and of no suggestions, as [`json_text`] writes it.
const EMPTY_ARRAY: &str = "[]";

/// The stored JSON of empty metadata, as [`json_text`] writes it.
const EMPTY_OBJECT: &str = "{}";

// Most conversations and messages carry no metadata, attachments or suggestions, and
// every message and history page decodes some (a page 50): the empty JSON such a row
// stores is known without parsing it (and, for metadata, serialising it again to
// check its size).

/// Stored metadata.
fn metadata(table: &'static str, text: &str) -> Result<Metadata, RowError> {
    if text == EMPTY_OBJECT {
        return Ok(Metadata::default());
    }
    Metadata::parse(serde_json::Value::Object(json_object(table, text)?))
        .map_err(|e| RowError::new(table, e.to_string()))
}

/// A message's stored attachments. They were checked when they came in; rebuilding
/// them field by field keeps old rows readable should the URL rules ever tighten.
fn attachments(text: &str) -> Result<Attachments, RowError> {
    if text == EMPTY_ARRAY {
        return Ok(Attachments::default());
    }
    let stored: Vec<StoredAttachment> = serde_json::from_str(text)
        .map_err(|e| RowError::new(MESSAGES, format!("bad attachments: {e}")))?;
    Attachments::parse(
        stored
            .into_iter()
            .map(|a| Attachment {
                kind: a.kind,
                url: a.url,
                content_type: a.content_type,
                name: a.name,
                size_bytes: a.size_bytes,
            })
            .collect(),
    )
    .map_err(|e| RowError::new(MESSAGES, e.to_string()))
}

/// A message's stored quick replies.
fn suggestions(text: &str) -> Result<Vec<Suggestion>, RowError> {
    if text == EMPTY_ARRAY {
        return Ok(Vec::new());
    }
    let stored: Vec<StoredSuggestion> = serde_json::from_str(text)
        .map_err(|e| RowError::new(MESSAGES, format!("bad suggestions: {e}")))?;
    Ok(stored
        .into_iter()
        .map(|s| Suggestion { text: s.text })
        .collect())
}

/// A `message_history` row's columns as a message is built from them: the text the
/// message keeps is owned, the text it only parses (its sender, JSON and rating) is
/// borrowed, so that a row read straight from SQLite (`direct_reads`) allocates only
/// what the message keeps.
pub(crate) struct MessageColumns<'a> {
    pub(crate) id: uuid::Uuid,
    pub(crate) conversation_id: uuid::Uuid,
    pub(crate) seq: i64,
    pub(crate) sender: &'a str,
    pub(crate) sender_id: String,
    pub(crate) content: String,
    pub(crate) attachments: &'a str,
    pub(crate) suggestions: &'a str,
    pub(crate) client_message_id: Option<&'a str>,
    pub(crate) reply_to: Option<uuid::Uuid>,
    pub(crate) timestamp_ms: i64,
    pub(crate) metadata: &'a str,
    pub(crate) feedback_rating: Option<&'a str>,
    pub(crate) feedback_comment: Option<String>,
    pub(crate) feedback_at_ms: Option<i64>,
}

impl TryFrom<MessageColumns<'_>> for Message {
    type Error = RowError;

    fn try_from(row: MessageColumns<'_>) -> Result<Self, Self::Error> {
        let sender = Sender::parse(row.sender)
            .ok_or_else(|| RowError::new(MESSAGES, format!("sender {:?}", row.sender)))?;
        let client_message_id = row
            .client_message_id
            .map(ClientMessageId::parse)
            .transpose()
            .map_err(|e| RowError::new(MESSAGES, e.to_string()))?;
        Ok(Self {
            id: MessageId::from_uuid(row.id),
            conversation_id: ConversationId::from_uuid(row.conversation_id),
            seq: seq(MESSAGES, row.seq)?,
            sender,
            sender_id: row.sender_id,
            content: MessageContent::trusted(row.content),
            attachments: attachments(row.attachments)?,
            suggestions: suggestions(row.suggestions)?,
            client_message_id,
            reply_to: row.reply_to.map(MessageId::from_uuid),
            timestamp: timestamp(MESSAGES, row.timestamp_ms)?,
            metadata: metadata(MESSAGES, row.metadata)?,
            feedback: feedback(
                row.feedback_rating,
                row.feedback_comment,
                row.feedback_at_ms,
            )?,
        })
    }
}

impl TryFrom<message::Model> for Message {
    type Error = RowError;

    fn try_from(row: message::Model) -> Result<Self, Self::Error> {
        Message::try_from(MessageColumns {
            id: row.id,
            conversation_id: row.conversation_id,
            seq: row.seq,
            sender: &row.sender,
            sender_id: row.sender_id,
            content: row.content,
            attachments: &row.attachments,
            suggestions: &row.suggestions,
            client_message_id: row.client_message_id.as_deref(),
            reply_to: row.reply_to,
            timestamp_ms: row.timestamp_ms,
            metadata: &row.metadata,
            feedback_rating: row.feedback_rating.as_deref(),
            feedback_comment: row.feedback_comment,
            feedback_at_ms: row.feedback_at_ms,
        })
    }
}

/// A message's feedback from its three columns: all set, or none.
fn feedback(
    rating: Option<&str>,
    comment: Option<String>,
    at_ms: Option<i64>,
) -> Result<Option<Feedback>, RowError> {
    match (rating, at_ms) {
        (None, _) => Ok(None),
        (Some(rating), Some(at_ms)) => Ok(Some(Feedback {
            rating: Rating::parse(rating)
                .ok_or_else(|| RowError::new(MESSAGES, format!("feedback {rating:?}")))?,
            comment: comment.map(FeedbackComment::trusted),
            at: timestamp(MESSAGES, at_ms)?,
        })),
        (Some(_), None) => Err(RowError::new(MESSAGES, "feedback without its time")),
    }
}

/// The row of `message` stored at `seq` and `timestamp`.
pub(crate) fn message_row(
    message: &NewMessage,
    seq: Seq,
    timestamp: Timestamp,
) -> Result<message::Model, RowError> {
    let attachments: Vec<StoredAttachment> = message
        .attachments
        .as_slice()
        .iter()
        .map(|a| StoredAttachment {
            kind: a.kind.clone(),
            url: a.url.clone(),
            content_type: a.content_type.clone(),
            name: a.name.clone(),
            size_bytes: a.size_bytes,
        })
        .collect();
    let suggestions: Vec<StoredSuggestion> = message
        .suggestions
        .iter()
        .map(|s| StoredSuggestion {
            text: s.text.clone(),
        })
        .collect();
    Ok(message::Model {
        id: message.id.as_uuid(),
        conversation_id: message.conversation_id.as_uuid(),
        seq: seq_value(seq)?,
        sender: message.sender.as_str().to_owned(),
        sender_id: message.sender_id.clone(),
        content: message.content.as_str().to_owned(),
        attachments: json_text(MESSAGES, &attachments)?,
        suggestions: json_text(MESSAGES, &suggestions)?,
        client_message_id: message
            .client_message_id
            .as_ref()
            .map(|id| id.as_str().to_owned()),
        reply_to: message.answers.map(|r| r.message_id.as_uuid()),
        timestamp_ms: millis(timestamp),
        metadata: json_text(MESSAGES, message.metadata.as_map())?,
        feedback_rating: None,
        feedback_comment: None,
        feedback_at_ms: None,
    })
}

impl TryFrom<bot::Model> for Bot {
    type Error = RowError;

    fn try_from(row: bot::Model) -> Result<Self, Self::Error> {
        let kind = EngineKind::parse(&row.engine_kind)
            .ok_or_else(|| RowError::new(BOTS, format!("engine kind {:?}", row.engine_kind)))?;
        Ok(Self {
            id: bot_id(BOTS, &row.id)?,
            name: BotName::parse(&row.name).map_err(|e| RowError::new(BOTS, e.to_string()))?,
            description: row.description,
            engine: EngineSpec {
                kind,
                settings: json_object(BOTS, &row.engine_settings)?,
            },
            created_at: timestamp(BOTS, row.created_at_ms)?,
            updated_at: timestamp(BOTS, row.updated_at_ms)?,
        })
    }
}

impl TryFrom<&Bot> for bot::Model {
    type Error = RowError;

    fn try_from(bot: &Bot) -> Result<Self, Self::Error> {
        Ok(Self {
            id: bot.id.as_str().to_owned(),
            name: bot.name.as_str().to_owned(),
            description: bot.description.clone(),
            engine_kind: bot.engine.kind.as_str().to_owned(),
            engine_settings: json_text(BOTS, &bot.engine.settings)?,
            created_at_ms: millis(bot.created_at),
            updated_at_ms: millis(bot.updated_at),
        })
    }
}
