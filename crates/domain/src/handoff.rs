//! Human handoff: who answers a conversation, its bot or a person. The state machine
//! of issue 17, as pure rules: every transition, who may make it, and what it refuses.
//! Storage, the services and the API build on it; they decide nothing of their own.
//!
//! ```text
//!            request (user, bot, admin)          claim (an agent; first wins)
//!   Bot ───────────────────────────────▶ Waiting ─────────────────────────▶ Agent(holder)
//!    ▲  ◀────────────── admin ──────────────┘                                   │
//!    └──────────────────── release (the holder, or an admin) ────────────────────┘
//! ```
//!
//! While a conversation is `Waiting` or with an `Agent`, its bot is not asked: user
//! messages go to people, and the bot's pending-reply bookkeeping must not answer
//! them later ([`HandoffState::bot_answers`]).

use crate::user::UserId;

/// Who answers a conversation's user.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HandoffState {
    /// Its bot (every conversation starts here).
    #[default]
    Bot,
    /// Nobody yet: it waits in the agents' queue.
    Waiting,
    /// The agent who claimed it.
    Agent(UserId),
}

/// Who acts on a conversation's handoff state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffActor {
    /// The conversation's user.
    User,
    /// The conversation's bot.
    Bot,
    /// An agent (a person answering users), by user id.
    Agent(UserId),
    /// An administrator, who may move any conversation.
    Admin,
}

/// What an actor asks of the handoff state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffAction {
    /// Put the conversation in the agents' queue.
    Request,
    /// Take a waiting conversation over.
    Claim,
    /// Give the conversation back to its bot.
    Release,
}

/// A change of state, with what the conversation's stored `system` message says
/// about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffChange {
    /// The state before.
    pub from: HandoffState,
    /// The state after.
    pub to: HandoffState,
}

impl HandoffChange {
    /// The text of the `system` message that records the change, for every client to
    /// show ("alice joined", "Back to the bot").
    pub fn notice(&self) -> String {
        match &self.to {
            HandoffState::Waiting => "Waiting for a person to join".to_owned(),
            HandoffState::Agent(agent) => format!("{agent} joined"),
            HandoffState::Bot => "Back to the bot".to_owned(),
        }
    }
}

/// What a handoff action led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffOutcome {
    /// The state changed.
    Changed(HandoffChange),
    /// The state already was what the action asks for: a retry, answered as done
    /// with nothing stored or published again.
    Unchanged,
}

/// Why a handoff action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandoffRefusal {
    /// A claim of a conversation that is not waiting for an agent.
    #[error("the conversation is not waiting for an agent")]
    NotWaiting,
    /// A claim of a conversation another agent holds already (the first claim won).
    #[error("another agent holds the conversation")]
    HeldByAnother,
    /// A release, or a message, by someone who does not hold the conversation.
    #[error("only the agent who holds the conversation may do that")]
    NotHolder,
    /// The actor may not take this action at all (a user claiming, a bot releasing).
    #[error("not allowed")]
    NotAllowed,
    /// The state changed under the action again and again (others moved the
    /// conversation each time it was read); nothing changed, and trying again may
    /// succeed.
    #[error("the conversation's handoff changed meanwhile; try again")]
    Contended,
}

/// Which conversations in handoff to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffListing {
    /// Those waiting for an agent: the queue.
    Waiting,
    /// Those this agent holds.
    HeldBy(UserId),
}

impl HandoffListing {
    /// Whether a conversation in `state` belongs to the listing.
    pub fn includes(&self, state: &HandoffState) -> bool {
        match (self, state) {
            (Self::Waiting, HandoffState::Waiting) => true,
            (Self::HeldBy(agent), HandoffState::Agent(holder)) => agent == holder,
            _ => false,
        }
    }
}

impl HandoffState {
    /// Whether the conversation's bot answers user messages now.
    pub fn bot_answers(&self) -> bool {
        *self == Self::Bot
    }

    /// The agent holding the conversation, if one does.
    pub fn holder(&self) -> Option<&UserId> {
        match self {
            Self::Agent(agent) => Some(agent),
            Self::Bot | Self::Waiting => None,
        }
    }

    /// The state's name on the wire and in storage: `bot`, `waiting` or `agent`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Bot => "bot",
            Self::Waiting => "waiting",
            Self::Agent(_) => "agent",
        }
    }

    /// The state from its stored name and the holder stored beside it; `None` for a
    /// name that is none of the three, or `agent` without a holder.
    pub fn from_parts(name: &str, agent: Option<UserId>) -> Option<Self> {
        match (name, agent) {
            ("bot", _) => Some(Self::Bot),
            ("waiting", _) => Some(Self::Waiting),
            ("agent", Some(agent)) => Some(Self::Agent(agent)),
            _ => None,
        }
    }

    /// Applies `action` by `actor`.
    ///
    /// # Errors
    /// A [`HandoffRefusal`] saying why the actor may not do this now; the state is
    /// then unchanged.
    pub fn apply(
        &self,
        actor: &HandoffActor,
        action: HandoffAction,
    ) -> Result<HandoffOutcome, HandoffRefusal> {
        let to = match (action, actor) {
            (HandoffAction::Request, HandoffActor::User | HandoffActor::Bot) => match self {
                Self::Bot => Self::Waiting,
                // Asking again, or asking while a person answers already, changes
                // nothing: the user has what they asked for.
                Self::Waiting | Self::Agent(_) => return Ok(HandoffOutcome::Unchanged),
            },
            (HandoffAction::Request, HandoffActor::Admin) => Self::Waiting,
            (HandoffAction::Request, HandoffActor::Agent(_)) => {
                return Err(HandoffRefusal::NotAllowed);
            }
            (HandoffAction::Claim, HandoffActor::Agent(agent)) => match self {
                Self::Waiting => Self::Agent(agent.clone()),
                Self::Agent(holder) if holder == agent => return Ok(HandoffOutcome::Unchanged),
                Self::Agent(_) => return Err(HandoffRefusal::HeldByAnother),
                Self::Bot => return Err(HandoffRefusal::NotWaiting),
            },
            (HandoffAction::Claim, _) => return Err(HandoffRefusal::NotAllowed),
            (HandoffAction::Release, HandoffActor::Agent(agent)) => match self {
                Self::Agent(holder) if holder == agent => Self::Bot,
                Self::Agent(_) | Self::Waiting | Self::Bot => {
                    return Err(HandoffRefusal::NotHolder);
                }
            },
            (HandoffAction::Release, HandoffActor::Admin) => Self::Bot,
            (HandoffAction::Release, HandoffActor::User | HandoffActor::Bot) => {
                return Err(HandoffRefusal::NotAllowed);
            }
        };
        if to == *self {
            return Ok(HandoffOutcome::Unchanged);
        }
        Ok(HandoffOutcome::Changed(HandoffChange {
            from: self.clone(),
            to,
        }))
    }

    /// Whether `agent` may write to the conversation, or send typing, now: only the
    /// agent who holds it.
    ///
    /// # Errors
    /// [`HandoffRefusal::NotHolder`] for anyone else.
    pub fn agent_may_write(&self, agent: &UserId) -> Result<(), HandoffRefusal> {
        match self.holder() {
            Some(holder) if holder == agent => Ok(()),
            _ => Err(HandoffRefusal::NotHolder),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str) -> UserId {
        UserId::parse(id).expect("valid user id")
    }

    fn changed_to(outcome: Result<HandoffOutcome, HandoffRefusal>) -> HandoffState {
        match outcome {
            Ok(HandoffOutcome::Changed(change)) => change.to,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn the_user_the_bot_or_an_admin_put_a_conversation_in_the_queue() {
        for actor in [HandoffActor::User, HandoffActor::Bot, HandoffActor::Admin] {
            let to = changed_to(HandoffState::Bot.apply(&actor, HandoffAction::Request));
            assert_eq!(to, HandoffState::Waiting, "{actor:?}");
        }
    }

    #[test]
    fn asking_again_changes_nothing() {
        let held = HandoffState::Agent(agent("alice"));
        for state in [HandoffState::Waiting, held] {
            for actor in [HandoffActor::User, HandoffActor::Bot] {
                assert_eq!(
                    state.apply(&actor, HandoffAction::Request),
                    Ok(HandoffOutcome::Unchanged)
                );
            }
        }
        assert_eq!(
            HandoffState::Waiting.apply(&HandoffActor::Admin, HandoffAction::Request),
            Ok(HandoffOutcome::Unchanged)
        );
    }

    #[test]
    fn an_admin_may_send_a_held_conversation_back_to_the_queue() {
        let held = HandoffState::Agent(agent("alice"));
        assert_eq!(
            changed_to(held.apply(&HandoffActor::Admin, HandoffAction::Request)),
            HandoffState::Waiting
        );
    }

    #[test]
    fn an_agent_does_not_request_a_handoff() {
        assert_eq!(
            HandoffState::Bot.apply(&HandoffActor::Agent(agent("alice")), HandoffAction::Request),
            Err(HandoffRefusal::NotAllowed)
        );
    }

    #[test]
    fn the_first_claim_wins_and_its_retry_is_harmless() {
        let alice = HandoffActor::Agent(agent("alice"));
        let bob = HandoffActor::Agent(agent("bob"));
        let held = changed_to(HandoffState::Waiting.apply(&alice, HandoffAction::Claim));
        assert_eq!(held, HandoffState::Agent(agent("alice")));
        assert_eq!(
            held.apply(&bob, HandoffAction::Claim),
            Err(HandoffRefusal::HeldByAnother)
        );
        assert_eq!(
            held.apply(&alice, HandoffAction::Claim),
            Ok(HandoffOutcome::Unchanged)
        );
    }

    #[test]
    fn a_conversation_that_is_not_waiting_cannot_be_claimed() {
        assert_eq!(
            HandoffState::Bot.apply(&HandoffActor::Agent(agent("alice")), HandoffAction::Claim),
            Err(HandoffRefusal::NotWaiting)
        );
    }

    #[test]
    fn only_agents_claim() {
        for actor in [HandoffActor::User, HandoffActor::Bot, HandoffActor::Admin] {
            assert_eq!(
                HandoffState::Waiting.apply(&actor, HandoffAction::Claim),
                Err(HandoffRefusal::NotAllowed),
                "{actor:?}"
            );
        }
    }

    #[test]
    fn the_holder_or_an_admin_gives_it_back_to_the_bot() {
        let held = HandoffState::Agent(agent("alice"));
        for actor in [HandoffActor::Agent(agent("alice")), HandoffActor::Admin] {
            assert_eq!(
                changed_to(held.apply(&actor, HandoffAction::Release)),
                HandoffState::Bot,
                "{actor:?}"
            );
        }
        assert_eq!(
            changed_to(HandoffState::Waiting.apply(&HandoffActor::Admin, HandoffAction::Release)),
            HandoffState::Bot
        );
    }

    #[test]
    fn a_release_by_anyone_else_is_refused() {
        let held = HandoffState::Agent(agent("alice"));
        let bob = HandoffActor::Agent(agent("bob"));
        assert_eq!(
            held.apply(&bob, HandoffAction::Release),
            Err(HandoffRefusal::NotHolder)
        );
        for state in [HandoffState::Bot, HandoffState::Waiting] {
            assert_eq!(
                state.apply(&bob, HandoffAction::Release),
                Err(HandoffRefusal::NotHolder)
            );
        }
        for actor in [HandoffActor::User, HandoffActor::Bot] {
            assert_eq!(
                held.apply(&actor, HandoffAction::Release),
                Err(HandoffRefusal::NotAllowed),
                "{actor:?}"
            );
        }
        assert_eq!(
            HandoffState::Bot.apply(&HandoffActor::Admin, HandoffAction::Release),
            Ok(HandoffOutcome::Unchanged)
        );
    }

    #[test]
    fn only_the_holder_writes_and_only_in_bot_state_the_bot_answers() {
        let held = HandoffState::Agent(agent("alice"));
        assert_eq!(held.agent_may_write(&agent("alice")), Ok(()));
        assert_eq!(
            held.agent_may_write(&agent("bob")),
            Err(HandoffRefusal::NotHolder)
        );
        assert_eq!(
            HandoffState::Waiting.agent_may_write(&agent("alice")),
            Err(HandoffRefusal::NotHolder)
        );
        assert!(HandoffState::Bot.bot_answers());
        assert!(!HandoffState::Waiting.bot_answers());
        assert!(!held.bot_answers());
    }

    #[test]
    fn each_change_is_told_in_words() {
        let join = HandoffChange {
            from: HandoffState::Waiting,
            to: HandoffState::Agent(agent("alice")),
        };
        assert_eq!(join.notice(), "alice joined");
        let back = HandoffChange {
            from: HandoffState::Agent(agent("alice")),
            to: HandoffState::Bot,
        };
        assert_eq!(back.notice(), "Back to the bot");
        assert_eq!(HandoffState::Agent(agent("a")).as_str(), "agent");
    }
}
