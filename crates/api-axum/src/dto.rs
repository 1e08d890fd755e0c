//! The wire shapes: JSON bodies clients send (`…Body`), JSON the server answers
//! (`…Response`), and query strings (`…Params`), with their OpenAPI schemas.
//!
//! Domain types never serialise themselves; the mapping lives here, explicitly, so the
//! model can change without changing the wire and the reverse. Unknown fields in
//! request bodies are ignored, so that clients may send more than this version reads.
//!
//! A message's shapes (with its attachments, quick replies and feedback) are in
//! `message`; texts with bounds of their own in `text`.

use confab_domain::bot::Bot;
use confab_domain::conversation::{Conversation, ConversationStatus};
use confab_domain::handoff::HandoffState;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

mod message;
pub(crate) mod text;

pub use message::{
    AttachmentBody, FeedbackBody, MessageBody, RatingBody, SenderBody, SuggestionBody,
};

use text::{BotIdText, ClientMessageIdText, TitleText};

/// For `#[serde(default, deserialize_with = "present")]`: a member may be left out
/// (`None`), but when it is there it must be a value, not `null`, as the document
/// says of it.
///
/// # Errors
/// The deserializer's, for `null` or a value of the wrong type.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// For `#[serde(default, deserialize_with = "whole_number")]`: a non-negative
/// integer, also when written with a zero fraction (`7.0`), since JSON Schema calls
/// that an integer too; `null` is `None`.
///
/// # Errors
/// The deserializer's, for anything else.
pub(crate) fn whole_number<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(value) = number.as_u64() {
        return Ok(Some(value));
    }
    // 2^64 as a float: every whole float below it fits in a u64.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    match number.as_f64() {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(value) if value.fract() == 0.0 && (0.0..LIMIT).contains(&value) => {
            Ok(Some(value as u64))
        }
        _ => Err(serde::de::Error::custom(format!(
            "invalid value: {number}, expected a non-negative integer"
        ))),
    }
}

/// The largest `offset` and `after_seq`: 2^53, the largest integer every JSON
/// reader keeps exact, and far beyond any real list or conversation.
pub(crate) const LARGEST_POSITION: u64 = 1 << 53;

/// A conversation's status on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusBody {
    /// Takes messages.
    Active,
    /// Takes no messages until unarchived.
    Archived,
}

impl From<StatusBody> for ConversationStatus {
    fn from(status: StatusBody) -> Self {
        match status {
            StatusBody::Active => Self::Active,
            StatusBody::Archived => Self::Archived,
        }
    }
}

impl From<ConversationStatus> for StatusBody {
    fn from(status: ConversationStatus) -> Self {
        match status {
            ConversationStatus::Active => Self::Active,
            ConversationStatus::Archived => Self::Archived,
        }
    }
}

/// Who answers a conversation's user, on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HandoffBody {
    /// Its bot.
    Bot,
    /// Nobody yet: it waits in the agents' queue.
    Waiting,
    /// The agent named in `handoff_agent`.
    Agent,
}

impl From<&HandoffState> for HandoffBody {
    fn from(state: &HandoffState) -> Self {
        match state {
            HandoffState::Bot => Self::Bot,
            HandoffState::Waiting => Self::Waiting,
            HandoffState::Agent(_) => Self::Agent,
        }
    }
}

/// `POST /conversations/start`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct StartConversationBody {
    /// The bot to talk to.
    #[schema(example = "echo", value_type = BotIdText)]
    pub bot_id: String,
    /// A first user message, sent at once: at most 16 KiB after trimming, not only
    /// whitespace, without NUL.
    #[serde(default)]
    #[schema(example = "Hello", value_type = Option<text::MessageText>)]
    pub initial_message: Option<String>,
    /// The client's id for the initial message, which makes a retry safe.
    #[serde(default)]
    #[schema(value_type = Option<ClientMessageIdText>)]
    pub client_message_id: Option<String>,
    /// A title, 1 to 200 characters.
    #[serde(default)]
    #[schema(value_type = Option<TitleText>)]
    pub title: Option<String>,
    /// Client data, a JSON object of at most 16 KiB.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// The answer to `POST /conversations/start`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StartedResponse {
    /// The new conversation.
    #[schema(format = Uuid)]
    pub conversation_id: String,
    /// Its session, the id WebSocket clients address it by.
    #[schema(format = Uuid)]
    pub session_id: String,
    /// Always `active`.
    pub status: StatusBody,
    /// The bot.
    pub bot_id: String,
    /// When the conversation was started.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The initial message's id, when one was sent.
    #[schema(format = Uuid)]
    pub initial_message_id: Option<String>,
    /// With `?wait=true`: the bot's replies to the initial message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replies: Option<Vec<MessageBody>>,
}

/// `POST /conversations/{id}/messages`. The document's `SendMessageRequest` adds
/// the rule that spans two fields: the content is empty (or whitespace) only when
/// attachments come with it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SendMessageBody {
    /// The text, at most 16 KiB after trimming, without NUL; empty only with
    /// attachments.
    #[schema(
        example = "User message",
        max_length = 16384,
        pattern = r"^[^\u0000]*$"
    )]
    pub content: String,
    /// Files and links, at most 10.
    #[serde(default)]
    #[schema(max_items = 10)]
    pub attachments: Vec<AttachmentBody>,
    /// The client's id for the message, which makes a retry safe; the
    /// `Idempotency-Key` header is an alternative.
    #[serde(default)]
    #[schema(value_type = Option<ClientMessageIdText>)]
    pub client_message_id: Option<String>,
    /// Client data, a JSON object of at most 16 KiB.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// A message's delivery state; a message is answered only once stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Stored, and handed to the bot.
    Delivered,
}

/// The answer to `POST /conversations/{id}/messages`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SentResponse {
    /// The stored message (the original one on a retry).
    #[schema(format = Uuid)]
    pub message_id: String,
    /// Its conversation.
    #[schema(format = Uuid)]
    pub conversation_id: String,
    /// Its position in the conversation.
    pub seq: u64,
    /// Server time of storage.
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// Always `delivered`.
    pub status: DeliveryStatus,
    /// With `?wait=true`: the bot's replies to this message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replies: Option<Vec<MessageBody>>,
}

/// `?wait=true` on start and send.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitParams {
    /// Answer only once the bot's replies are stored (bounded by the wait timeout),
    /// and include them as `replies`.
    #[serde(default)]
    pub wait: Option<bool>,
}

/// `GET /conversations/{id}/history`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// How many messages, 1 to 100; 50 by default.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// Only messages older than this (exclusive): a seq, a message id or an RFC 3339
    /// timestamp.
    #[param(value_type = Option<text::HistoryCursorText>)]
    pub before: Option<String>,
    /// Only messages newer than this (exclusive): a seq, a message id or an RFC 3339
    /// timestamp.
    #[param(value_type = Option<text::HistoryCursorText>)]
    pub after: Option<String>,
}

/// One page of history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HistoryResponse {
    /// The conversation.
    #[schema(format = Uuid)]
    pub conversation_id: String,
    /// The messages, oldest first.
    pub messages: Vec<MessageBody>,
    /// Whether more messages exist in the paging direction: older ones without
    /// `after`, newer ones with it.
    pub has_more: bool,
}

/// `GET /conversations`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only conversations with this bot.
    #[param(value_type = Option<BotIdText>)]
    pub bot_id: Option<String>,
    /// Only conversations in this status.
    #[param(inline)]
    pub status: Option<StatusBody>,
    /// How many conversations, 1 to 100; 20 by default.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    /// Skip this many conversations, at most 2^53 (the largest integer every JSON
    /// reader keeps exact); not together with `cursor`.
    #[param(maximum = 9007199254740992_f64)]
    pub offset: Option<u64>,
    /// The `next_cursor` of the previous page; not together with `offset`.
    pub cursor: Option<String>,
}

/// A conversation as lists and `GET /conversations/{id}` show it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConversationBody {
    /// The conversation's id.
    #[schema(format = Uuid)]
    pub id: String,
    /// The bot it is with.
    pub bot_id: String,
    /// The bot's name; null when the bot has been removed.
    pub bot_name: Option<String>,
    /// Whether it takes messages.
    pub status: StatusBody,
    /// Its title, if it has one.
    pub title: Option<String>,
    /// The start of the last message's content, at most 200 characters.
    pub last_message: Option<String>,
    /// Time of the last message, or of creation while it has none.
    #[schema(format = DateTime)]
    pub last_activity: String,
    /// How many messages it holds.
    pub message_count: u64,
    /// Its session, the id WebSocket clients address it by.
    #[schema(format = Uuid)]
    pub session_id: String,
    /// When it was started.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Client data, a JSON object.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// Who answers the user: its bot, nobody yet (waiting for an agent), or an agent.
    pub handoff: HandoffBody,
    /// The user id of the agent holding the conversation, while `handoff` is `agent`.
    pub handoff_agent: Option<String>,
    /// When the conversation entered its handoff state; null while with its bot.
    #[schema(format = DateTime)]
    pub handoff_since: Option<String>,
}

impl ConversationBody {
    /// The wire shape of a conversation whose bot is called `bot_name`.
    pub fn new(conversation: Conversation, bot_name: Option<String>) -> Self {
        Self {
            id: conversation.id.to_string(),
            bot_id: conversation.bot_id.to_string(),
            bot_name,
            status: conversation.status.into(),
            title: conversation.title.map(|t| t.as_str().to_owned()),
            last_message: conversation.last_message,
            last_activity: conversation.last_activity.to_rfc3339(),
            message_count: conversation.message_count,
            session_id: conversation.session_id.to_string(),
            created_at: conversation.created_at.to_rfc3339(),
            metadata: conversation.metadata.to_value(),
            handoff: HandoffBody::from(&conversation.handoff),
            handoff_agent: conversation.handoff.holder().map(ToString::to_string),
            handoff_since: conversation.handoff_since.map(|at| at.to_rfc3339()),
        }
    }
}

/// One page of the caller's conversations, newest activity first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConversationListResponse {
    /// The conversations.
    pub conversations: Vec<ConversationBody>,
    /// How many conversations match the filter in all.
    pub total: u64,
    /// Whether more follow this page.
    pub has_more: bool,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `PATCH /conversations/{id}`: at least one field, none of them null (the
/// document's `UpdateConversationRequest`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct UpdateConversationBody {
    /// `archived` to archive, `active` to unarchive.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub status: Option<StatusBody>,
    /// A new title, 1 to 200 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = TitleText)]
    pub title: Option<String>,
    /// New client data, replacing the old: a JSON object of at most 16 KiB.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Object)]
    pub metadata: Option<serde_json::Value>,
}

/// A bot users can talk to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BotBody {
    /// The slug that addresses the bot.
    #[schema(example = "echo")]
    pub id: String,
    /// The name shown to users.
    pub name: String,
    /// What the bot does.
    pub description: String,
    /// The engine kind: `echo`, `script`, `openai` or `webhook`.
    #[schema(example = "echo")]
    pub kind: String,
}

impl From<Bot> for BotBody {
    fn from(bot: Bot) -> Self {
        Self {
            id: bot.id.to_string(),
            name: bot.name.as_str().to_owned(),
            description: bot.description,
            kind: bot.engine.kind.as_str().to_owned(),
        }
    }
}

/// `GET /bots`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BotListResponse {
    /// Every bot, ordered by id.
    pub bots: Vec<BotBody>,
}

/// `POST /auth/guest`: an empty object, or no body at all.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct GuestBody {}

/// A guest identity and its bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct GuestTokenResponse {
    /// The guest's user id, `guest-<uuid>`.
    #[schema(example = "guest-0193a0f0-0000-7000-8000-000000000001")]
    pub user_id: String,
    /// The bearer token (an HS256 JWT).
    pub token: String,
    /// When the token stops being accepted.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct HealthResponse {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}
