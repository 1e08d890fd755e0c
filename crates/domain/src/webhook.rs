//! Outgoing webhooks: subscriptions that administrators register, the events they
//! may ask for, and the deliveries storage records for each event.
//!
//! Storage writes a delivery for every subscription that wants an event in the
//! transaction that makes the change (the outbox), so a crash between the change and
//! the delivery loses nothing. The [`WebhookDispatcher`](crate::webhooks::WebhookDispatcher)
//! then sends them, at least once and in order per conversation. This module is model
//! only: the names, the parsed inputs and the rules of retrying.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::conversation::{Conversation, ConversationId};
use crate::error::ValidationError;
use crate::message::Message;
use crate::retry::Backoff;
use crate::timestamp::Timestamp;

crate::id::uuid_id! {
    /// A webhook subscription's id.
    WebhookId, "webhook id"
}

crate::id::uuid_id! {
    /// One delivery of one event to one subscription. It is the receiver's
    /// idempotency key (`X-Confab-Delivery`): retries and redeliveries keep it.
    DeliveryId, "delivery id"
}

/// What happened, as a subscription names it. A new kind of event is one variant
/// here, its name in [`EventType::ALL`], and the storage trigger that records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    /// A conversation was created.
    ConversationStarted,
    /// A message was stored, whoever sent it (user, bot, agent or confab).
    MessageCreated,
    /// A conversation was archived.
    ConversationArchived,
    /// An archived conversation was made active again.
    ConversationUnarchived,
    /// A conversation and its messages were erased (by its user, an admin or retention).
    ConversationDeleted,
    /// A user rated a bot reply, or changed their rating (not when they removed it).
    FeedbackCreated,
    /// A conversation moved between its bot, the agents' queue and an agent.
    HandoffChanged,
}

impl EventType {
    /// Every event a subscription may ask for, with its wire name.
    pub const ALL: [(Self, &'static str); 7] = [
        (Self::ConversationStarted, "conversation.started"),
        (Self::MessageCreated, "message.created"),
        (Self::ConversationArchived, "conversation.archived"),
        (Self::ConversationUnarchived, "conversation.unarchived"),
        (Self::ConversationDeleted, "conversation.deleted"),
        (Self::FeedbackCreated, "feedback.created"),
        (Self::HandoffChanged, "handoff.changed"),
    ];

    /// The name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(kind, _)| *kind == self)
            .map_or("", |(_, name)| name)
    }

    /// The event with this wire name.
    ///
    /// # Errors
    /// An unknown name, quoted in the error with the names allowed.
    pub fn parse(name: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(kind, _)| *kind)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|(_, name)| *name).collect();
                invalid(format!(
                    "unknown event {:?}; known events: {}",
                    name.chars().take(64).collect::<String>(),
                    known.join(", ")
                ))
            })
    }
}

fn invalid(reason: impl Into<String>) -> ValidationError {
    ValidationError::InvalidWebhook(reason.into())
}

/// The events a subscription wants: at least one, each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSet(BTreeSet<EventType>);

impl EventSet {
    /// Parses wire names.
    ///
    /// # Errors
    /// An empty list or an unknown name.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, ValidationError> {
        let events = names
            .iter()
            .map(|name| EventType::parse(name.as_ref()))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if events.is_empty() {
            return Err(invalid("events must name at least one event"));
        }
        Ok(Self(events))
    }

    /// Whether the set holds `event`.
    pub fn contains(&self, event: EventType) -> bool {
        self.0.contains(&event)
    }

    /// The events, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = EventType> + '_ {
        self.0.iter().copied()
    }
}

/// Where deliveries go: an absolute http(s) URL of at most 2048 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// Longest URL, in bytes.
    pub const MAX_BYTES: usize = 2048;

    /// Accepts an absolute http or https URL with a host.
    ///
    /// # Errors
    /// Any other scheme, no host, whitespace, or too long.
    pub fn parse(url: &str) -> Result<Self, ValidationError> {
        if url.len() > Self::MAX_BYTES || !crate::message::is_http_url(url) {
            return Err(invalid(format!(
                "url must be an absolute http or https URL of at most {} bytes",
                Self::MAX_BYTES
            )));
        }
        Ok(Self(url.to_owned()))
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of the environment variable holding a subscription's signing secret.
/// The secret itself is never stored, so a database dump signs nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnv(String);

impl SecretEnv {
    /// Accepts 1 to 128 of `[A-Za-z0-9_]`, not starting with a digit.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(name: &str) -> Result<Self, ValidationError> {
        let valid = !name.is_empty()
            && name.len() <= 128
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(invalid(
                "secret_env must be an environment variable name: 1 to 128 of A-Z, a-z, 0-9 \
                 and '_', not starting with a digit",
            ))
        }
    }

    /// The variable's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest subscription description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 1000;

/// A description of at most [`DESCRIPTION_MAX_CHARS`] characters.
///
/// # Errors
/// Too long, or with a NUL character.
pub fn parse_description(text: &str) -> Result<String, ValidationError> {
    crate::message::reject_nul(text, "description")?;
    if text.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(invalid(format!(
            "description must be at most {DESCRIPTION_MAX_CHARS} characters"
        )));
    }
    Ok(text.to_owned())
}

/// A subscription: which events go where, signed with which secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its id.
    pub id: WebhookId,
    /// Where deliveries are POSTed.
    pub url: WebhookUrl,
    /// What it wants.
    pub events: EventSet,
    /// The variable holding the secret that signs its deliveries.
    pub secret_env: SecretEnv,
    /// What it is for, for the people reading the list.
    pub description: String,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet: waiting for its turn, its first attempt or a retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; only a redelivery sends it again.
    Failed,
}

impl DeliveryState {
    /// The name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// The state with this name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One event for one subscription, as the deliveries list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id, the receiver's idempotency key.
    pub id: DeliveryId,
    /// The subscription.
    pub webhook_id: WebhookId,
    /// What happened.
    pub event: EventType,
    /// The conversation it happened to.
    pub conversation_id: ConversationId,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts made since it was recorded or last redelivered.
    pub attempts: u32,
    /// When it is next tried, while pending.
    pub next_attempt_at: Option<Timestamp>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the event happened.
    pub created_at: Timestamp,
    /// When the receiver accepted it.
    pub delivered_at: Option<Timestamp>,
}

/// What a delivery says happened: the record as it was right after the change.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    /// The stored message (`message.created`), with its feedback
    /// (`feedback.created`).
    Message(Box<Message>),
    /// The conversation after the change, or as it was when deleted.
    Conversation(Box<Conversation>),
}

/// A delivery due now, claimed by one dispatcher, with what sending it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct DueDelivery {
    /// The delivery.
    pub delivery: Delivery,
    /// Where to send it.
    pub url: WebhookUrl,
    /// The variable holding the signing secret.
    pub secret_env: SecretEnv,
    /// The event's record.
    pub data: EventData,
}

/// How an attempt ended, as the dispatcher records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The receiver accepted it at this time.
    Delivered {
        /// When.
        at: Timestamp,
    },
    /// The attempt failed; try again at `at`.
    Retry {
        /// Attempts made so far.
        attempts: u32,
        /// Why it failed.
        error: String,
        /// When to try again.
        at: Timestamp,
    },
    /// The last allowed attempt failed.
    Failed {
        /// Attempts made.
        attempts: u32,
        /// Why the last one failed.
        error: String,
    },
}

/// Which deliveries of a subscription to list: newest first, before a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Only this state, when set.
    pub state: Option<DeliveryState>,
    /// Only deliveries older than this one, when set (the next page's cursor).
    pub before: Option<DeliveryId>,
    /// At most this many.
    pub limit: u32,
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts before a delivery is marked failed; at least 1.
    pub max_attempts: u32,
    /// The wait after the first failure; each further failure doubles it.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// What to record after attempt number `attempts` (1 for the first) failed.
    pub fn after_failure(
        &self,
        delivery: DeliveryId,
        attempts: u32,
        error: String,
        now: Timestamp,
    ) -> DeliveryOutcome {
        if attempts >= self.max_attempts.max(1) {
            return DeliveryOutcome::Failed { attempts, error };
        }
        DeliveryOutcome::Retry {
            attempts,
            error,
            at: now.saturating_add(self.backoff(delivery, attempts)),
        }
    }

    /// The wait after failure number `attempts`: `initial_backoff` doubled per earlier
    /// failure, capped at `max_backoff`, then between half and all of it, drawn from
    /// the delivery's id and the attempt ([`Backoff`]).
    pub fn backoff(&self, delivery: DeliveryId, attempts: u32) -> Duration {
        Backoff {
            first: self.initial_backoff,
            longest: self.max_backoff,
        }
        .after(attempts, delivery.as_uuid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_from_the_initial_wait_up_to_the_cap_with_jitter_of_at_most_half() {
        let id = DeliveryId::from_uuid(uuid::Uuid::from_u128(12345));
        for (attempts, full) in [(1, 2), (2, 4), (3, 8), (4, 10), (20, 10), (40, 10)] {
            let wait = policy().backoff(id, attempts);
            let full = Duration::from_secs(full);
            assert!(wait >= full / 2 && wait <= full, "{attempts}: {wait:?}");
        }
    }

    #[test]
    fn deliveries_that_failed_together_wait_different_times() {
        let waits: BTreeSet<Duration> = (0..20u128)
            .map(|n| policy().backoff(DeliveryId::from_uuid(uuid::Uuid::from_u128(n * 7919)), 1))
            .collect();
        assert!(waits.len() > 10, "{waits:?}");
    }

    #[test]
    fn the_last_allowed_attempt_fails_the_delivery() {
        let id = DeliveryId::from_uuid(uuid::Uuid::nil());
        let now = Timestamp::from_unix_millis(1_000).unwrap();
        assert!(matches!(
            policy().after_failure(id, 3, "503".into(), now),
            DeliveryOutcome::Retry { attempts: 3, .. }
        ));
        assert_eq!(
            policy().after_failure(id, 4, "503".into(), now),
            DeliveryOutcome::Failed {
                attempts: 4,
                error: "503".into()
            }
        );
    }

    #[test]
    fn only_known_events_and_http_urls_and_variable_names_are_accepted() {
        assert!(EventSet::parse(&["message.created", "handoff.changed"]).is_ok());
        assert!(EventSet::parse::<&str>(&[]).is_err());
        let unknown = EventSet::parse(&["message.sent"]).unwrap_err().to_string();
        assert!(unknown.contains("message.sent") && unknown.contains("message.created"));
        assert!(WebhookUrl::parse("https://crm.example/hooks?x=1").is_ok());
        for url in ["ftp://crm.example", "crm.example", "http://", "http://a b"] {
            assert!(WebhookUrl::parse(url).is_err(), "{url}");
        }
        assert!(SecretEnv::parse("CRM_HOOK_SECRET").is_ok());
        for name in ["", "1ABC", "A-B", "A B"] {
            assert!(SecretEnv::parse(name).is_err(), "{name:?}");
        }
        for (kind, name) in EventType::ALL {
            assert_eq!(EventType::parse(name).unwrap(), kind);
            assert_eq!(kind.as_str(), name);
        }
    }
}
