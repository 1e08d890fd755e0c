//! Errors of the domain and of the ports it calls.
//!
//! Variants say what happened, never which HTTP status to answer: mapping to the wire
//! is the API adapter's business.

use std::error::Error as StdError;

/// A boxed error from an adapter, kept opaque so that no adapter type leaks upward.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Input that breaks a rule of the model. Every variant names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// Message content empty (after trimming) with no attachment.
    #[error("content must not be empty unless the message has attachments")]
    EmptyContent,
    /// Text with a NUL character, which no text column can store.
    #[error("{field} must not contain NUL characters")]
    NulCharacter {
        /// The offending field.
        field: &'static str,
    },
    /// Message content over the size limit.
    #[error("content is {actual} bytes; at most {max} are allowed")]
    ContentTooLong {
        /// The limit in bytes.
        max: usize,
        /// The size sent, in bytes.
        actual: usize,
    },
    /// Too many attachments on one message.
    #[error("a message has at most {max} attachments, not {actual}")]
    TooManyAttachments {
        /// The limit.
        max: usize,
        /// The count sent.
        actual: usize,
    },
    /// An attachment whose URL is not an absolute http(s) URL.
    #[error("attachment url must be an absolute http or https URL: {0:?}")]
    AttachmentUrl(String),
    /// An attachment field that breaks its rule.
    #[error("attachment {field} is invalid")]
    AttachmentField {
        /// The offending field.
        field: &'static str,
    },
    /// A bot id that is not 1..=64 of `[a-z0-9_-]`.
    #[error("bot id must be 1 to 64 characters of a-z, 0-9, '_' and '-': {0:?}")]
    InvalidBotId(String),
    /// A bot name that is empty or too long.
    #[error("bot name must be 1 to 100 characters")]
    InvalidBotName,
    /// A user id that is empty, too long or has whitespace.
    #[error("user id must be 1 to 128 printable characters without whitespace")]
    InvalidUserId,
    /// A conversation title that is empty or too long.
    #[error("title must be 1 to 200 characters")]
    InvalidTitle,
    /// A bot that cannot be saved: its description is too long, or its engine
    /// cannot be built from its settings.
    #[error("invalid bot: {0}")]
    InvalidBot(String),
    /// Metadata that is not a JSON object, or too large.
    #[error("metadata must be a JSON object of at most {max} bytes")]
    InvalidMetadata {
        /// The limit in bytes, serialised.
        max: usize,
    },
    /// A client message id that is empty or too long.
    #[error("client_message_id must be 1 to 128 characters")]
    InvalidClientMessageId,
    /// A page size out of range.
    #[error("limit must be between 1 and {max}, not {actual}")]
    InvalidLimit {
        /// The largest page size allowed.
        max: u32,
        /// The size asked for.
        actual: u64,
    },
    /// An id that is not a UUID.
    #[error("{what} must be a UUID: {value:?}")]
    InvalidId {
        /// Which id.
        what: &'static str,
        /// The text sent.
        value: String,
    },
    /// A history cursor that is neither a timestamp, a seq nor a message id.
    #[error("cursor must be an RFC 3339 timestamp, a seq number or a message id: {0:?}")]
    InvalidCursor(String),
    /// A history cursor naming a message that is not in the conversation.
    #[error("cursor names no message of this conversation: {0}")]
    UnknownCursorMessage(String),
    /// A list cursor that this server did not issue.
    #[error("cursor is not one this server issued")]
    InvalidListCursor,
    /// `offset` and `cursor` given together.
    #[error("use either offset or cursor, not both")]
    OffsetWithCursor,
    /// An RFC 3339 timestamp that does not parse.
    #[error("not an RFC 3339 timestamp: {0:?}")]
    InvalidTimestamp(String),
    /// A timestamp outside the supported range.
    #[error("timestamp out of range")]
    TimestampOutOfRange,
    /// A WebSocket frame that names no conversation.
    #[error("give session_id or conversation_id")]
    MissingTarget,
    /// A patch that changes nothing.
    #[error("nothing to change: give status, title or metadata")]
    EmptyChange,
    /// A search query that cannot be searched for; the text says why.
    #[error("invalid search: {0}")]
    InvalidSearch(String),
    /// A webhook subscription that cannot be saved; the text says why.
    #[error("invalid webhook: {0}")]
    InvalidWebhook(String),
    /// A feedback comment over the size limit.
    #[error("comment must be at most {max} characters")]
    InvalidComment {
        /// The limit in characters.
        max: usize,
    },
}

/// What a repository port reports. Adapters map their own errors into these, in one
/// place, so that the domain reacts the same to every backend.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The addressed record does not exist.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule or precondition was violated; nothing was written.
    #[error("conflict")]
    Conflict,
    /// The backend cannot be reached now; the caller may retry later.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else: a bug, corrupt data, a failed query.
    #[error("storage failure")]
    Internal(#[source] BoxError),
}

/// What a bot engine reports when it cannot produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The engine did not answer within the bot's timeout.
    #[error("the bot did not answer in time")]
    Timeout,
    /// The engine is misconfigured (bad settings, missing secret).
    #[error("the bot is misconfigured: {0}")]
    Misconfigured(String),
    /// The engine or the service behind it failed.
    #[error("the bot failed")]
    Failed(#[source] BoxError),
}

/// What an event bus reports.
#[derive(Debug, thiserror::Error)]
pub enum EventBusError {
    /// The bus cannot be reached now.
    #[error("event bus unavailable")]
    Unavailable(#[source] BoxError),
}

/// The outcome of a use case that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The input breaks a rule of the model.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No such conversation, or it belongs to someone else.
    #[error("conversation not found")]
    ConversationNotFound,
    /// No such session, or it belongs to someone else.
    #[error("session not found")]
    SessionNotFound,
    /// No such message in the conversation.
    #[error("message not found")]
    MessageNotFound,
    /// Feedback on a message that is not the bot's: users rate what their bot said.
    #[error("feedback is given on the bot's replies only")]
    NotABotReply,
    /// No such bot.
    #[error("bot not found: {0}")]
    BotNotFound(String),
    /// A bot with that id exists already.
    #[error("bot exists already: {0}")]
    BotExists(String),
    /// The conversation is archived and takes no messages until unarchived.
    #[error("conversation is archived")]
    ConversationArchived,
    /// A `client_message_id` was reused with different content.
    #[error("client_message_id was already used with different content")]
    IdempotencyMismatch,
    /// The caller lacks the role the use case needs.
    #[error("not allowed")]
    Forbidden,
    /// The rules of handoff refuse the move or the message (see
    /// [`crate::handoff`]).
    #[error(transparent)]
    Handoff(#[from] crate::handoff::HandoffRefusal),
    /// Storage failed; the cause is kept as the source for logs.
    #[error("storage failure")]
    Storage(#[source] RepoError),
    /// The event bus failed.
    #[error("event bus failure")]
    Events(#[source] EventBusError),
    /// No webhook subscription with this id.
    #[error("webhook not found")]
    WebhookNotFound,
    /// No delivery with this id for this subscription.
    #[error("delivery not found")]
    DeliveryNotFound,
}

impl DomainError {
    /// Whether storage or the event bus was unavailable: such a failure may pass by
    /// itself, and the same work tried again later can succeed.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Storage(RepoError::Unavailable(_)) | Self::Events(EventBusError::Unavailable(_))
        )
    }
}

impl From<RepoError> for DomainError {
    fn from(error: RepoError) -> Self {
        Self::Storage(error)
    }
}

impl From<EventBusError> for DomainError {
    fn from(error: EventBusError) -> Self {
        Self::Events(error)
    }
}

/// Renders an error and its chain of sources as one line, for logs: adapter errors
/// stay opaque to clients, and this is where their causes are read.
pub fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
