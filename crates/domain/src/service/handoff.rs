//! Handoff for the service's callers: a user asks for a person, agents work the
//! queue, claim conversations and give them back, admins move any of them. The rules
//! are [`crate::handoff`]'s; moving and telling everyone is
//! [`move_handoff`](crate::reply::move_handoff)'s.

use crate::conversation::{Conversation, ConversationId, PageSize};
use crate::error::DomainError;
use crate::handoff::{HandoffAction, HandoffActor, HandoffListing};
use crate::message::{HistoryQuery, Message};
use crate::reply::move_handoff;
use crate::user::{Caller, Role};

use super::{ConversationService, not_found_as};

/// How many conversations one listing of the queue, or of an agent's, holds at most.
pub const HANDOFF_LIST_MAX: u32 = 100;

/// How many of a conversation's latest messages come with it in the queue: enough
/// for an agent to see what the user wants before claiming.
pub const QUEUE_RECENT_MESSAGES: u32 = 5;

/// A conversation in handoff, with its latest messages.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffEntry {
    /// The conversation.
    pub conversation: Conversation,
    /// Its latest messages, oldest first.
    pub recent: Vec<Message>,
}

impl ConversationService {
    /// Puts the conversation in the agents' queue: its user asks for a person, or an
    /// admin moves it (also out of an agent's hands). Asking again changes nothing.
    pub async fn request_handoff(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<Conversation, DomainError> {
        let conversation = self.conversation(caller, id).await?;
        let actor = if conversation.user_id == caller.user_id {
            HandoffActor::User
        } else if caller.is_admin() {
            HandoffActor::Admin
        } else {
            return Err(DomainError::Forbidden);
        };
        move_handoff(&self.ports, id, &actor, HandoffAction::Request).await
    }

    /// The calling agent takes a waiting conversation over; the first claim wins.
    pub async fn claim(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<Conversation, DomainError> {
        let actor = agent(caller)?;
        // Any conversation in handoff, not only the waiting ones an agent sees: of
        // two agents claiming at once, the second learns it lost (a conflict), not
        // that the conversation vanished.
        let conversation = self
            .ports
            .conversations
            .get(id)
            .await
            .map_err(not_found_as(DomainError::ConversationNotFound))?;
        if conversation.handoff.bot_answers() {
            self.conversation(caller, id).await?;
        }
        move_handoff(&self.ports, id, &actor, HandoffAction::Claim).await
    }

    /// Gives the conversation back to its bot: by the agent who holds it, or an
    /// admin.
    pub async fn release(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<Conversation, DomainError> {
        if !caller.is_agent() {
            return Err(DomainError::Forbidden);
        }
        let conversation = self.conversation(caller, id).await?;
        let actor = match &caller.role {
            // An admin holding the conversation releases it as its agent would.
            Role::Admin if conversation.handoff.holder() != Some(&caller.user_id) => {
                HandoffActor::Admin
            }
            _ => agent(caller)?,
        };
        move_handoff(&self.ports, id, &actor, HandoffAction::Release).await
    }

    /// The conversations waiting for an agent, the longest waiting first, each with
    /// its latest messages.
    pub async fn handoff_queue(
        &self,
        caller: &Caller,
        limit: PageSize,
    ) -> Result<Vec<HandoffEntry>, DomainError> {
        agent(caller)?;
        self.in_handoff(&HandoffListing::Waiting, limit).await
    }

    /// The conversations the calling agent holds, the longest held first, each with
    /// its latest messages.
    pub async fn held_conversations(
        &self,
        caller: &Caller,
        limit: PageSize,
    ) -> Result<Vec<HandoffEntry>, DomainError> {
        agent(caller)?;
        self.in_handoff(&HandoffListing::HeldBy(caller.user_id.clone()), limit)
            .await
    }

    async fn in_handoff(
        &self,
        listing: &HandoffListing,
        limit: PageSize,
    ) -> Result<Vec<HandoffEntry>, DomainError> {
        let conversations = self
            .ports
            .conversations
            .in_handoff(listing, limit.get().min(HANDOFF_LIST_MAX))
            .await?;
        let latest = HistoryQuery {
            before: None,
            after: None,
            limit: PageSize::clamped(QUEUE_RECENT_MESSAGES, PageSize::HISTORY_MAX),
        };
        let pages = conversations
            .iter()
            .map(|conversation| self.ports.messages.history(conversation.id, &latest));
        let pages = futures::future::try_join_all(pages).await?;
        Ok(conversations
            .into_iter()
            .zip(pages)
            .map(|(conversation, page)| HandoffEntry {
                conversation,
                recent: page.messages,
            })
            .collect())
    }
}

/// The caller as an agent, if they are one (admins are agents too).
fn agent(caller: &Caller) -> Result<HandoffActor, DomainError> {
    if caller.is_agent() {
        Ok(HandoffActor::Agent(caller.user_id.clone()))
    } else {
        Err(DomainError::Forbidden)
    }
}
