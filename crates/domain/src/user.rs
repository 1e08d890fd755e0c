//! Who is calling: an identity taken from a bearer token. confab stores no users.

use std::fmt;

use crate::bot::BotId;
use crate::error::ValidationError;

/// The `sub` of a token: 1..=128 printable characters without whitespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

impl UserId {
    /// Longest accepted user id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Parses a user id.
    pub fn parse(value: &str) -> Result<Self, ValidationError> {
        let valid = !value.is_empty()
            && value.len() <= Self::MAX_LEN
            && value.chars().all(|c| !c.is_whitespace() && !c.is_control());
        if valid {
            Ok(Self(value.to_owned()))
        } else {
            Err(ValidationError::InvalidUserId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a caller may do beyond their own conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// An end user: their own conversations only.
    User,
    /// A deployer's operator: every conversation, bot administration, analytics.
    Admin,
    /// An external bot answering in the conversations it serves.
    Bot(BotId),
    /// A person who takes conversations over from their bots: the handoff queue and
    /// the conversations they hold, nothing else (see [`crate::handoff`]).
    Agent,
}

/// The authenticated caller of a use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who is calling.
    pub user_id: UserId,
    /// What they may do.
    pub role: Role,
}

impl Caller {
    /// An end user.
    pub fn user(user_id: UserId) -> Self {
        Self {
            user_id,
            role: Role::User,
        }
    }

    /// Whether the caller is an administrator.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may work the handoff queue: agents, and administrators,
    /// who are agents too.
    pub fn is_agent(&self) -> bool {
        matches!(self.role, Role::Agent | Role::Admin)
    }
}
