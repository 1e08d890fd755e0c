//! Messages: what users, bots and the system say in a conversation, and how history
//! pages through them.

use std::fmt;

use crate::conversation::{ConversationId, Metadata, PageSize};
use crate::error::ValidationError;
use crate::timestamp::Timestamp;

crate::id::uuid_id! {
    /// A message's id (UUIDv7).
    MessageId, "message_id"
}

/// A message's position in its conversation: 1, 2, 3 … without gaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seq(u64);

impl Seq {
    /// The position before the first message.
    pub const ZERO: Self = Self(0);

    /// Wraps a number.
    pub fn new(value: u64) -> Self {
        Self(value)
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }

    /// The position after this one.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sender {
    /// The conversation's user.
    User,
    /// The conversation's bot.
    Bot,
    /// confab itself, e.g. to say that a bot failed.
    System,
    /// A person answering the user in the bot's place (see [`crate::handoff`]).
    Agent,
}

impl Sender {
    /// The sender's name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Bot => "bot",
            Self::System => "system",
            Self::Agent => "agent",
        }
    }

    /// Parses `user`, `bot`, `system` or `agent`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "user" => Some(Self::User),
            "bot" => Some(Self::Bot),
            "system" => Some(Self::System),
            "agent" => Some(Self::Agent),
            _ => None,
        }
    }
}

/// A message's text: trimmed, at most 16 KiB of UTF-8. Empty only when the message
/// carries attachments; [`MessageContent::parse`] checks that with the attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageContent(String);

impl MessageContent {
    /// Largest content, in bytes after trimming.
    pub const MAX_BYTES: usize = 16 * 1024;

    /// Parses content that goes with `attachments`.
    pub fn parse(value: &str, attachments: &Attachments) -> Result<Self, ValidationError> {
        let trimmed = value.trim();
        if trimmed.len() > Self::MAX_BYTES {
            return Err(ValidationError::ContentTooLong {
                max: Self::MAX_BYTES,
                actual: trimmed.len(),
            });
        }
        if trimmed.is_empty() && attachments.is_empty() {
            return Err(ValidationError::EmptyContent);
        }
        reject_nul(trimmed, "content")?;
        Ok(Self(trimmed.to_owned()))
    }

    /// Content produced by confab or a bot, which is not size-checked: a bot's reply is
    /// never refused for its length.
    pub fn trusted(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, moved out.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A file or link attached to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// What it is: `image`, `file`, `audio`, `video`, `link` …, 1..=32 characters.
    pub kind: String,
    /// Where it is: an absolute http(s) URL of at most 2048 bytes.
    pub url: String,
    /// Its media type, when known.
    pub content_type: Option<String>,
    /// Its file name, when known.
    pub name: Option<String>,
    /// Its size, when known.
    pub size_bytes: Option<u64>,
}

impl Attachment {
    /// Longest URL, in bytes.
    pub const MAX_URL_BYTES: usize = 2048;

    /// Checks every field of an attachment.
    pub fn parse(
        kind: &str,
        url: &str,
        content_type: Option<&str>,
        name: Option<&str>,
        size_bytes: Option<u64>,
    ) -> Result<Self, ValidationError> {
        if !(1..=32).contains(&kind.len()) {
            return Err(ValidationError::AttachmentField { field: "type" });
        }
        if !is_http_url(url) || url.len() > Self::MAX_URL_BYTES {
            return Err(ValidationError::AttachmentUrl(
                url.chars().take(100).collect(),
            ));
        }
        if content_type.is_some_and(|t| t.is_empty() || t.len() > 255) {
            return Err(ValidationError::AttachmentField {
                field: "content_type",
            });
        }
        if name.is_some_and(|n| n.is_empty() || n.len() > 255) {
            return Err(ValidationError::AttachmentField { field: "name" });
        }
        reject_nul(kind, "attachment type")?;
        reject_nul(content_type.unwrap_or(""), "attachment content_type")?;
        reject_nul(name.unwrap_or(""), "attachment name")?;
        Ok(Self {
            kind: kind.to_owned(),
            url: url.to_owned(),
            content_type: content_type.map(str::to_owned),
            name: name.map(str::to_owned),
            size_bytes,
        })
    }
}

/// Refuses text with NUL: PostgreSQL's text type cannot hold it, and no client needs it.
pub(crate) fn reject_nul(text: &str, field: &'static str) -> Result<(), ValidationError> {
    if text.contains('\0') {
        Err(ValidationError::NulCharacter { field })
    } else {
        Ok(())
    }
}

pub(crate) fn is_http_url(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    !host.is_empty()
        && brackets_hold_an_ipv6_address(host)
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether a URL's host (with its port) uses brackets only as an IPv6 literal does:
/// `[::1]` or `[::1]:8080`, and otherwise not at all. URL parsers refuse anything else
/// (Python's `urlsplit` raises on a lone `[`), so a URL confab stores and hands back
/// must not hold one.
fn brackets_hold_an_ipv6_address(host: &str) -> bool {
    match host.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']').is_some_and(|(address, after)| {
            address.parse::<std::net::Ipv6Addr>().is_ok()
                && (after.is_empty()
                    || after
                        .strip_prefix(':')
                        .is_some_and(|port| port.bytes().all(|b| b.is_ascii_digit())))
        }),
        None => !host.contains(['[', ']']),
    }
}

/// A message's attachments: at most 10.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachments(Vec<Attachment>);

impl Attachments {
    /// Most attachments on one message.
    pub const MAX: usize = 10;

    /// Accepts at most [`Attachments::MAX`] attachments.
    pub fn parse(attachments: Vec<Attachment>) -> Result<Self, ValidationError> {
        if attachments.len() > Self::MAX {
            return Err(ValidationError::TooManyAttachments {
                max: Self::MAX,
                actual: attachments.len(),
            });
        }
        Ok(Self(attachments))
    }

    /// No attachments.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The attachments.
    pub fn as_slice(&self) -> &[Attachment] {
        &self.0
    }

    /// The attachments, moved out.
    pub fn into_vec(self) -> Vec<Attachment> {
        self.0
    }
}

/// A quick reply a bot offers the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suggestion {
    /// The text the user would send.
    pub text: String,
}

/// A client's own id for a message, which makes sending it idempotent:
/// 1..=128 characters, unique per conversation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientMessageId(String);

impl ClientMessageId {
    /// Parses a client message id.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        if (1..=128).contains(&value.chars().count())
            && !value.trim().is_empty()
            && !value.contains('\0')
        {
            Ok(Self(value.to_owned()))
        } else {
            Err(ValidationError::InvalidClientMessageId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, moved out.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// How a user rated a bot reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rating {
    /// Helpful.
    Up,
    /// Not helpful.
    Down,
}

impl Rating {
    /// The rating's name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }

    /// Parses `up` or `down`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "up" => Some(Self::Up),
            "down" => Some(Self::Down),
            _ => None,
        }
    }
}

/// What a user says with a rating: 1..=1000 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackComment(String);

impl FeedbackComment {
    /// Longest comment, in characters.
    pub const MAX_CHARS: usize = 1000;

    /// Parses a comment; an empty one is no comment (`None`).
    pub fn parse(value: &str) -> Result<Option<Self>, ValidationError> {
        let trimmed = value.trim();
        reject_nul(trimmed, "comment")?;
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(ValidationError::InvalidComment {
                max: Self::MAX_CHARS,
            });
        }
        Ok((!trimmed.is_empty()).then(|| Self(trimmed.to_owned())))
    }

    /// Text read back from storage, where it was checked when it was written.
    pub fn trusted(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, moved out.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// A user's feedback on a bot reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    /// Up or down.
    pub rating: Rating,
    /// Why, if the user said.
    pub comment: Option<FeedbackComment>,
    /// When it was given (or last changed).
    pub at: Timestamp,
}

/// The user message a bot or system message answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    /// The user message's id.
    pub message_id: MessageId,
    /// The user message's seq.
    pub seq: Seq,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Its position in the conversation.
    pub seq: Seq,
    /// Who wrote it.
    pub sender: Sender,
    /// The user id, bot id or agent's user id of the writer (`confab` for system
    /// messages).
    pub sender_id: String,
    /// The text.
    pub content: MessageContent,
    /// Attached files and links.
    pub attachments: Attachments,
    /// Quick replies offered by a bot.
    pub suggestions: Vec<Suggestion>,
    /// The client's id for the message, when it sent one.
    pub client_message_id: Option<ClientMessageId>,
    /// The user message this one answers, for bot and system replies.
    pub reply_to: Option<MessageId>,
    /// Server time of storage; non-decreasing in seq order.
    pub timestamp: Timestamp,
    /// Client or bot data.
    pub metadata: Metadata,
    /// The user's rating of a bot reply, if they gave one.
    pub feedback: Option<Feedback>,
}

/// A message to append; storage assigns its seq.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The message's id.
    pub id: MessageId,
    /// Its conversation.
    pub conversation_id: ConversationId,
    /// Who wrote it.
    pub sender: Sender,
    /// The user id or bot id of the writer.
    pub sender_id: String,
    /// The text.
    pub content: MessageContent,
    /// Attached files and links.
    pub attachments: Attachments,
    /// Quick replies offered by a bot.
    pub suggestions: Vec<Suggestion>,
    /// The client's id for the message.
    pub client_message_id: Option<ClientMessageId>,
    /// The user message this one answers, for bot and system replies: its id, kept
    /// as the stored message's [`reply_to`](Message::reply_to), and its seq, which
    /// storing this message marks answered (completing that reply job).
    pub answers: Option<ReplyTo>,
    /// The time of the append; storage raises it to the previous message's timestamp
    /// if the clock stepped back, so timestamps never decrease in seq order.
    pub timestamp: Timestamp,
    /// Client or bot data.
    pub metadata: Metadata,
}

impl NewMessage {
    /// The message this becomes once storage has assigned it `seq` and `timestamp`
    /// (the later of its own and the previous message's): what every store returns
    /// from `append`, written once here.
    pub fn stored(&self, seq: Seq, timestamp: Timestamp) -> Message {
        Message {
            id: self.id,
            conversation_id: self.conversation_id,
            seq,
            sender: self.sender,
            sender_id: self.sender_id.clone(),
            content: self.content.clone(),
            attachments: self.attachments.clone(),
            suggestions: self.suggestions.clone(),
            client_message_id: self.client_message_id.clone(),
            reply_to: self.answers.map(|r| r.message_id),
            timestamp,
            metadata: self.metadata.clone(),
            feedback: None,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub enum Appended {
    /// The message was stored with a new seq.
    Stored(Message),
    /// A message with the same `client_message_id` was there already; nothing was
    /// stored and this is the original.
    Existing(Message),
}

impl Appended {
    /// The stored or original message.
    pub fn message(&self) -> &Message {
        match self {
            Self::Stored(message) | Self::Existing(message) => message,
        }
    }

    /// The stored or original message, by value.
    pub fn into_message(self) -> Message {
        match self {
            Self::Stored(message) | Self::Existing(message) => message,
        }
    }
}

/// A history cursor as a client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryCursor {
    /// A point in time.
    Time(Timestamp),
    /// A position in the conversation.
    Seq(Seq),
    /// A message of the conversation.
    Message(MessageId),
}

impl HistoryCursor {
    /// Reads a cursor: a message id (UUID), a seq (digits) or an RFC 3339 timestamp.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            return value
                .parse::<u64>()
                .map(|n| Self::Seq(Seq::new(n)))
                .map_err(|_| ValidationError::InvalidCursor(value.to_owned()));
        }
        if let Ok(id) = value.parse::<MessageId>() {
            return Ok(Self::Message(id));
        }
        Timestamp::parse_rfc3339(value)
            .map(Self::Time)
            .map_err(|_| ValidationError::InvalidCursor(value.chars().take(64).collect()))
    }
}

/// An exclusive bound of a history page, as storage applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryBound {
    /// Messages strictly before or after this seq.
    Seq(Seq),
    /// Messages strictly before or after this time.
    Time(Timestamp),
}

/// A request for one page of a conversation's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only messages older than this.
    pub before: Option<HistoryBound>,
    /// Only messages newer than this.
    pub after: Option<HistoryBound>,
    /// How many at most.
    pub limit: PageSize,
}

impl HistoryQuery {
    /// The largest page of messages after `seq`, oldest first: the step of every
    /// forward walk through a history (see [`pages_after`](crate::ports::pages_after)
    /// for the walk itself).
    pub fn after_seq(seq: Seq) -> Self {
        Self {
            before: None,
            after: Some(HistoryBound::Seq(seq)),
            limit: PageSize::HISTORY_LARGEST,
        }
    }
}

/// One page of history, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// The messages, in seq order.
    pub messages: Vec<Message>,
    /// Whether more messages exist in the paging direction: older ones when only
    /// `before` or no bound was given, newer ones otherwise.
    pub has_more: bool,
}

impl HistoryPage {
    /// The page `query` asks for, from the messages a store read for it in the
    /// paging direction: newest first when the query has no `after` bound, oldest
    /// first when it has, and at most one more than `query.limit` (the one more
    /// tells whether more exist that way, and is dropped). A store that reads that
    /// way, e.g. `ORDER BY seq DESC LIMIT limit + 1`, builds every page with this.
    pub fn from_read(mut read: Vec<Message>, query: &HistoryQuery) -> Self {
        let limit = query.limit.get() as usize;
        let has_more = read.len() > limit;
        read.truncate(limit);
        if query.after.is_none() {
            read.reverse();
        }
        Self {
            messages: read,
            has_more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_trimmed_and_bounded() {
        let none = Attachments::none();
        assert_eq!(
            MessageContent::parse("  hi  ", &none).unwrap().as_str(),
            "hi"
        );
        assert_eq!(
            MessageContent::parse("   ", &none),
            Err(ValidationError::EmptyContent)
        );
        assert!(MessageContent::parse(&"a".repeat(16 * 1024), &none).is_ok());
        assert!(matches!(
            MessageContent::parse(&"a".repeat(17 * 1024), &none),
            Err(ValidationError::ContentTooLong { .. })
        ));
    }

    #[test]
    fn empty_content_is_allowed_with_an_attachment() {
        let one = Attachments::parse(vec![
            Attachment::parse("image", "https://example.com/a.png", None, None, None).unwrap(),
        ])
        .unwrap();
        assert_eq!(MessageContent::parse("", &one).unwrap().as_str(), "");
    }

    #[test]
    fn attachment_urls_must_be_http() {
        for bad in [
            "ftp://example.com/a",
            "javascript:alert(1)",
            "https://",
            "/relative",
            "http://a b",
            "http://[::1/a",
            "http://[nope]/a",
            "http://ex]ample.com/",
            "http://[::1]x/",
        ] {
            assert!(
                Attachment::parse("file", bad, None, None, None).is_err(),
                "{bad} accepted"
            );
        }
        assert!(Attachment::parse("file", "HTTP://example.com/a", None, None, None).is_ok());
        for good in [
            "http://[::1]/a",
            "http://[::1]:8080/a",
            "https://u@[2001:db8::1]:1/",
        ] {
            assert!(
                Attachment::parse("file", good, None, None, None).is_ok(),
                "{good} refused"
            );
        }
    }

    #[test]
    fn nul_characters_are_refused_in_text_fields() {
        let none = Attachments::none();
        assert_eq!(
            MessageContent::parse("a\0b", &none),
            Err(ValidationError::NulCharacter { field: "content" })
        );
        assert!(
            Attachment::parse("file", "https://example.com/a", None, Some("a\0"), None).is_err()
        );
        assert!(ClientMessageId::parse("id\0").is_err());
        assert!(crate::conversation::Title::parse("t\0").is_err());
        assert!(crate::bot::BotName::parse("n\0").is_err());
    }

    #[test]
    fn eleven_attachments_are_too_many() {
        let one = Attachment::parse("file", "https://example.com/a", None, None, None).unwrap();
        assert!(Attachments::parse(vec![one.clone(); 10]).is_ok());
        assert_eq!(
            Attachments::parse(vec![one; 11]),
            Err(ValidationError::TooManyAttachments {
                max: 10,
                actual: 11
            })
        );
    }

    #[test]
    fn cursors_are_seqs_ids_or_timestamps() {
        assert_eq!(
            HistoryCursor::parse("42").unwrap(),
            HistoryCursor::Seq(Seq::new(42))
        );
        assert!(matches!(
            HistoryCursor::parse("0193a0f0-0000-7000-8000-000000000001").unwrap(),
            HistoryCursor::Message(_)
        ));
        assert!(matches!(
            HistoryCursor::parse("2026-11-25T10:00:00Z").unwrap(),
            HistoryCursor::Time(_)
        ));
        assert!(HistoryCursor::parse("garbage").is_err());
        assert!(HistoryCursor::parse("").is_err());
        assert!(HistoryCursor::parse("99999999999999999999999").is_err());
    }
}
