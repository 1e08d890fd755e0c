//! Bots: who a conversation is with, and which engine produces their replies.

use std::fmt;
use std::num::NonZeroUsize;
use std::time::Duration;

use crate::error::ValidationError;
use crate::timestamp::Timestamp;

/// A bot's id, a slug chosen by the deployer: 1..=64 of `[a-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BotId(String);

impl BotId {
    /// Parses a bot id.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let valid = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(ValidationError::InvalidBotId(value.to_owned()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bot's display name: 1..=100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotName(String);

impl BotName {
    /// Parses a display name.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let trimmed = value.trim();
        if trimmed.contains('\0') {
            return Err(ValidationError::InvalidBotName);
        }
        if (1..=100).contains(&trimmed.chars().count()) {
            Ok(Self(trimmed.to_owned()))
        } else {
            Err(ValidationError::InvalidBotName)
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The kind of engine that produces a bot's replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// Replies with the user's own text.
    Echo,
    /// Rule-based replies from a script.
    Script,
    /// Any OpenAI-compatible chat completions endpoint.
    OpenAi,
    /// An external service called over HTTP.
    Webhook,
}

impl EngineKind {
    /// The kind's name in configuration and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Script => "script",
            Self::OpenAi => "openai",
            Self::Webhook => "webhook",
        }
    }

    /// Parses a kind's name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "echo" => Some(Self::Echo),
            "script" => Some(Self::Script),
            "openai" => Some(Self::OpenAi),
            "webhook" => Some(Self::Webhook),
            _ => None,
        }
    }
}

/// Which engine serves a bot, and its settings as the engine's adapter reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSpec {
    /// The engine kind.
    pub kind: EngineKind,
    /// Engine settings, an opaque JSON object the engine adapter interprets.
    pub settings: serde_json::Map<String, serde_json::Value>,
}

impl EngineSpec {
    /// An engine of `kind` with no settings.
    pub fn of(kind: EngineKind) -> Self {
        Self {
            kind,
            settings: serde_json::Map::new(),
        }
    }
}

/// The engine-wide settings confab itself reads from a bot's engine settings,
/// whatever the engine: `timeout_ms`, how long one reply may take (instead of the
/// pipeline's timeout), and `max_concurrency`, how many replies the bot produces at
/// once. Each is a positive integer when present; absent (or `null`) means the
/// pipeline's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyLimits {
    /// How long one reply may take, when the bot sets it.
    pub timeout: Option<Duration>,
    /// How many of the bot's replies may be produced at once, when the bot sets it.
    pub max_concurrency: Option<NonZeroUsize>,
}

impl ReplyLimits {
    /// The key of the reply timeout, in milliseconds, in a bot's engine settings.
    pub const TIMEOUT_KEY: &str = "timeout_ms";
    /// The key of the concurrency limit in a bot's engine settings.
    pub const MAX_CONCURRENCY_KEY: &str = "max_concurrency";

    /// Reads the limits out of engine settings.
    ///
    /// # Errors
    /// [`ValidationError::InvalidBot`] naming the key, when a value is there but is not
    /// a positive integer.
    pub fn parse(
        settings: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ValidationError> {
        let positive = |key: &str| match settings.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => value.as_u64().filter(|n| *n > 0).map(Some).ok_or_else(|| {
                ValidationError::InvalidBot(format!(
                    "engine setting `{key}` must be a positive integer, not {value}"
                ))
            }),
        };
        let max_concurrency = positive(Self::MAX_CONCURRENCY_KEY)?
            .map(|n| {
                usize::try_from(n)
                    .ok()
                    .and_then(NonZeroUsize::new)
                    .ok_or_else(|| {
                        ValidationError::InvalidBot(format!(
                            "engine setting `{}` is too large: {n}",
                            Self::MAX_CONCURRENCY_KEY
                        ))
                    })
            })
            .transpose()?;
        Ok(Self {
            timeout: positive(Self::TIMEOUT_KEY)?.map(Duration::from_millis),
            max_concurrency,
        })
    }
}

impl EngineSpec {
    /// The bot's own reply limits (see [`ReplyLimits`]).
    ///
    /// # Errors
    /// As [`ReplyLimits::parse`].
    pub fn limits(&self) -> Result<ReplyLimits, ValidationError> {
        ReplyLimits::parse(&self.settings)
    }
}

/// A bot users can talk to.
#[derive(Debug, Clone, PartialEq)]
pub struct Bot {
    /// The slug that addresses the bot.
    pub id: BotId,
    /// The name shown to users.
    pub name: BotName,
    /// A sentence or two about what the bot does.
    pub description: String,
    /// The engine that produces its replies.
    pub engine: EngineSpec,
    /// When the bot was first registered.
    pub created_at: Timestamp,
    /// When the bot was last changed.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_ids_are_lowercase_slugs() {
        assert!(BotId::parse("support-bot_2").is_ok());
        assert!(BotId::parse("").is_err());
        assert!(BotId::parse("Support").is_err());
        assert!(BotId::parse("a b").is_err());
        assert!(BotId::parse(&"a".repeat(65)).is_err());
        assert!(BotId::parse(&"a".repeat(64)).is_ok());
    }

    fn limits(settings: serde_json::Value) -> Result<ReplyLimits, ValidationError> {
        let serde_json::Value::Object(settings) = settings else {
            panic!("settings are an object");
        };
        ReplyLimits::parse(&settings)
    }

    #[test]
    fn positive_limits_are_read_and_absent_ones_are_the_defaults() {
        assert_eq!(limits(serde_json::json!({})), Ok(ReplyLimits::default()));
        assert_eq!(
            limits(serde_json::json!({"timeout_ms": 2000, "max_concurrency": 3, "model": "x"})),
            Ok(ReplyLimits {
                timeout: Some(Duration::from_millis(2000)),
                max_concurrency: NonZeroUsize::new(3),
            })
        );
        assert_eq!(
            limits(serde_json::json!({"timeout_ms": null})),
            Ok(ReplyLimits::default())
        );
    }

    #[test]
    fn a_limit_that_is_not_a_positive_integer_is_refused_with_its_key() {
        for (settings, key) in [
            (serde_json::json!({"timeout_ms": 0}), "timeout_ms"),
            (serde_json::json!({"timeout_ms": "2s"}), "timeout_ms"),
            (
                serde_json::json!({"max_concurrency": -1}),
                "max_concurrency",
            ),
            (
                serde_json::json!({"max_concurrency": 1.5}),
                "max_concurrency",
            ),
        ] {
            let refused = limits(settings.clone());
            assert!(
                matches!(&refused, Err(ValidationError::InvalidBot(why)) if why.contains(key)),
                "{settings}: {refused:?}"
            );
        }
    }
}
