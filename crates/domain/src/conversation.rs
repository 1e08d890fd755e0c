//! Conversations: a user talking with a bot, their status, and how lists of them page.

use crate::bot::BotId;
use crate::error::ValidationError;
use crate::handoff::HandoffState;
use crate::message::{Message, Sender, Seq};
use crate::session::SessionId;
use crate::timestamp::Timestamp;
use crate::user::UserId;

crate::id::uuid_id! {
    /// A conversation's id (UUIDv7).
    ConversationId, "conversation_id"
}

/// Whether a conversation takes messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConversationStatus {
    /// Open: messages are accepted.
    Active,
    /// Put away by its user: no messages until unarchived.
    Archived,
}

impl ConversationStatus {
    /// The status's name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Archived => "archived",
        }
    }

    /// Parses `active` or `archived`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(Self::Active),
            "archived" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// A conversation's title: 1..=200 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Title(String);

impl Title {
    /// Longest title, in characters.
    pub const MAX_CHARS: usize = 200;

    /// Parses a title.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let trimmed = value.trim();
        if trimmed.contains('\0') {
            return Err(ValidationError::InvalidTitle);
        }
        if (1..=Self::MAX_CHARS).contains(&trimmed.chars().count()) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(ValidationError::InvalidTitle)
        }
    }

    /// The title as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free-form data a client keeps on a conversation or message: a JSON object of at
/// most 16 KiB serialised.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metadata(serde_json::Map<String, serde_json::Value>);

impl Metadata {
    /// Largest metadata object, serialised, in bytes.
    pub const MAX_BYTES: usize = 16 * 1024;

    /// Accepts a JSON value when it is an object within the size limit.
    pub fn parse(value: serde_json::Value) -> Result<Self, ValidationError> {
        let too_large = || ValidationError::InvalidMetadata {
            max: Self::MAX_BYTES,
        };
        match value {
            serde_json::Value::Object(map) => {
                let size = serde_json::to_vec(&map).map_err(|_| too_large())?.len();
                if size <= Self::MAX_BYTES {
                    Ok(Self(map))
                } else {
                    Err(too_large())
                }
            }
            _ => Err(too_large()),
        }
    }

    /// The object.
    pub fn as_map(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }

    /// The object as a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::Value::Object(self.0.clone())
    }

    /// The object as a JSON value, moved out.
    pub fn into_value(self) -> serde_json::Value {
        serde_json::Value::Object(self.0)
    }
}

/// A conversation between one user and one bot.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// The conversation's id.
    pub id: ConversationId,
    /// Its one session.
    pub session_id: SessionId,
    /// The user who started it and alone may see it.
    pub user_id: UserId,
    /// The bot it is with.
    pub bot_id: BotId,
    /// Whether it takes messages.
    pub status: ConversationStatus,
    /// An optional title.
    pub title: Option<Title>,
    /// Client data.
    pub metadata: Metadata,
    /// When it was started.
    pub created_at: Timestamp,
    /// Time of the last message, or of creation while it has none.
    pub last_activity: Timestamp,
    /// The start of the last message's content, at most 200 characters.
    pub last_message: Option<String>,
    /// How many messages it holds.
    pub message_count: u64,
    /// The seq of its last message; [`Seq::ZERO`] while it has none.
    pub last_seq: Seq,
    /// The seq of its last user message; [`Seq::ZERO`] while it has none.
    pub last_user_seq: Seq,
    /// The seq of the last user message the bot has answered. Reply work is pending
    /// while this is below `last_user_seq`.
    pub replied_seq: Seq,
    /// Who answers the user: the bot, nobody yet, or an agent.
    pub handoff: HandoffState,
    /// When the conversation entered its handoff state; `None` while with its bot.
    pub handoff_since: Option<Timestamp>,
}

impl Conversation {
    /// A conversation begun at `at`: active, untitled, without metadata or messages.
    pub fn begun(
        id: ConversationId,
        session_id: SessionId,
        user_id: UserId,
        bot_id: BotId,
        at: Timestamp,
    ) -> Self {
        Self {
            id,
            session_id,
            user_id,
            bot_id,
            status: ConversationStatus::Active,
            title: None,
            metadata: Metadata::default(),
            created_at: at,
            last_activity: at,
            last_message: None,
            message_count: 0,
            last_seq: Seq::ZERO,
            last_user_seq: Seq::ZERO,
            replied_seq: Seq::ZERO,
            handoff: HandoffState::Bot,
            handoff_since: None,
        }
    }

    /// Whether user messages wait for a bot reply.
    pub fn has_pending_replies(&self) -> bool {
        self.replied_seq < self.last_user_seq
    }

    /// Takes `message`, just stored as the conversation's latest, into the counters
    /// and the preview as storage does. `replied_seq` moves only for a user message
    /// stored during a handoff, which storage marks answered as it stores it; a reply
    /// names the message it answers by id, and that seq is the storage's business.
    pub fn record(&mut self, message: &Message) {
        self.last_seq = message.seq;
        self.message_count += 1;
        self.last_activity = message.timestamp;
        self.last_message = Some(preview(message.content.as_str()));
        if message.sender == Sender::User {
            self.last_user_seq = message.seq;
            // A user message stored while people answer needs nothing of the bot.
            if !self.handoff.bot_answers() {
                self.replied_seq = message.seq;
            }
        }
    }
}

/// Longest `last_message` preview, in characters.
pub const PREVIEW_CHARS: usize = 200;

/// The preview of a message content kept as a conversation's `last_message`.
pub fn preview(content: &str) -> String {
    content.chars().take(PREVIEW_CHARS).collect()
}

/// A change to a conversation's status, title or metadata; at least one is set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationChange {
    /// The new status.
    pub status: Option<ConversationStatus>,
    /// The new title.
    pub title: Option<Title>,
    /// The new metadata, replacing the old.
    pub metadata: Option<Metadata>,
}

impl ConversationChange {
    /// Whether the change changes nothing.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.title.is_none() && self.metadata.is_none()
    }
}

/// A page size within `1..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    /// Parses `value` as a page size of at most `max`.
    pub fn parse(value: u64, max: u32) -> Result<Self, ValidationError> {
        match u32::try_from(value) {
            Ok(size) if (1..=max).contains(&size) => Ok(Self(size)),
            _ => Err(ValidationError::InvalidLimit { max, actual: value }),
        }
    }

    /// `value` brought into `1..=max`, for sizes from configuration rather than from
    /// a client.
    pub fn clamped(value: u32, max: u32) -> Self {
        Self(value.clamp(1, max.max(1)))
    }

    /// Default history page.
    pub const HISTORY_DEFAULT: Self = Self(50);
    /// Largest history page.
    pub const HISTORY_MAX: u32 = 100;
    /// The largest history page, as a size.
    pub const HISTORY_LARGEST: Self = Self(Self::HISTORY_MAX);
    /// Default conversation list page.
    pub const LIST_DEFAULT: Self = Self(20);
    /// Largest conversation list page.
    pub const LIST_MAX: u32 = 100;

    /// The size.
    pub fn get(self) -> u32 {
        self.0
    }
}

/// Which conversations a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationFilter {
    /// Only those with this bot.
    pub bot_id: Option<BotId>,
    /// Only those in this status.
    pub status: Option<ConversationStatus>,
}

/// Where a list page begins: a position in the order of last activity, newest first.
///
/// It names the last conversation of the previous page, so pages stay stable while
/// older conversations are added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    /// `last_activity` of the last conversation on the previous page.
    pub last_activity: Timestamp,
    /// Its id, which breaks ties between equal activity times.
    pub id: ConversationId,
}

impl ListCursor {
    /// The cursor as an opaque token for clients.
    pub fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.last_activity.unix_millis(),
            self.id.as_uuid().simple()
        )
    }

    /// Parses a token made by [`ListCursor::encode`].
    pub fn decode(token: &str) -> Result<Self, ValidationError> {
        let (millis, id) = token
            .split_once('_')
            .ok_or(ValidationError::InvalidListCursor)?;
        let millis: i64 = millis
            .parse()
            .map_err(|_| ValidationError::InvalidListCursor)?;
        Ok(Self {
            last_activity: Timestamp::from_unix_millis(millis)
                .map_err(|_| ValidationError::InvalidListCursor)?,
            id: id.parse().map_err(|_| ValidationError::InvalidListCursor)?,
        })
    }
}

/// Where a list page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListPosition {
    /// Skip this many conversations of the ordered list.
    Offset(u64),
    /// Continue after this conversation.
    After(ListCursor),
}

/// A request for one page of a user's conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    /// Which conversations.
    pub filter: ConversationFilter,
    /// Where the page starts.
    pub position: ListPosition,
    /// How many at most.
    pub limit: PageSize,
}

/// One page of conversations, newest activity first.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationPage {
    /// The conversations of the page.
    pub conversations: Vec<Conversation>,
    /// How many conversations match the filter in all.
    pub total: u64,
    /// Whether more follow this page.
    pub has_more: bool,
    /// Where the next page starts, when there is one.
    pub next_cursor: Option<ListCursor>,
}

impl ConversationPage {
    /// The page `query` asks for, from the conversations a store read for it in list
    /// order (newest activity first, then id) from the query's position on, at most
    /// one more than `query.limit` (the one more tells whether another page follows,
    /// and is dropped); `total` counts every match of the filter.
    pub fn from_read(mut read: Vec<Conversation>, query: &ListQuery, total: u64) -> Self {
        let has_more = read.len() > query.limit.get() as usize;
        read.truncate(query.limit.get() as usize);
        let next_cursor = read.last().filter(|_| has_more).map(|last| ListCursor {
            last_activity: last.last_activity,
            id: last.id,
        });
        Self {
            conversations: read,
            total,
            has_more,
            next_cursor,
        }
    }
}

/// Conversations chosen by what they are rather than by id, across all users: for
/// administrators and retention jobs. Unset fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationSelection {
    /// Only those with this bot.
    pub bot_id: Option<BotId>,
    /// Only those in this status.
    pub status: Option<ConversationStatus>,
    /// Only those whose last activity is older than this.
    pub inactive_before: Option<Timestamp>,
    /// Only those whose last activity is at or after this.
    pub active_since: Option<Timestamp>,
    /// Only those created before this.
    pub created_before: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_cursor_round_trips_and_rejects_foreign_tokens() {
        let cursor = ListCursor {
            last_activity: Timestamp::from_unix_millis(1_764_000_000_123).unwrap(),
            id: "0193a0f0-0000-7000-8000-000000000001".parse().unwrap(),
        };
        assert_eq!(ListCursor::decode(&cursor.encode()).unwrap(), cursor);
        assert!(ListCursor::decode("garbage").is_err());
        assert!(ListCursor::decode("12_nope").is_err());
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert!(PageSize::parse(0, 100).is_err());
        assert!(PageSize::parse(101, 100).is_err());
        assert!(PageSize::parse(10_000, 100).is_err());
        assert_eq!(PageSize::parse(100, 100).unwrap().get(), 100);
    }
}
