//! Bots: who a conversation is with, and which engine produces their replies.

use std::fmt;

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
}
