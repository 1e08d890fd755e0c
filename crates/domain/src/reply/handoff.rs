//! Moving a conversation between its bot and people: the one place that applies the
//! rules of [`crate::handoff`] to storage, for the service's callers (users, agents,
//! admins) and for the pipeline's bots alike.

use serde_json::json;

use super::SYSTEM_SENDER_ID;
use crate::conversation::{Conversation, ConversationId, Metadata};
use crate::error::{DomainError, RepoError};
use crate::event::EventKind;
use crate::handoff::{HandoffAction, HandoffActor, HandoffOutcome, HandoffRefusal, HandoffState};
use crate::message::{Attachments, MessageContent, MessageId, NewMessage, Sender};
use crate::ports::{Ports, publish};

/// How often a move is tried again when the state changed between reading it and
/// writing it. Each retry re-applies the rules to the state that won, so a second
/// claim ends in a refusal, not in another retry; the bound only guards against a
/// conversation whose state flips back and forth faster than a round trip.
const ATTEMPTS: usize = 5;

/// Applies `action` by `actor` to the conversation's handoff state: stores the new
/// state with the `system` message that tells it, and publishes both. Returns the
/// conversation as it now stands (unchanged for a retry of a move already made).
///
/// # Errors
/// - `DomainError::Handoff` when the rules refuse the move; nothing is stored.
/// - `DomainError::ConversationNotFound` when the conversation is gone.
pub(crate) async fn move_handoff(
    ports: &Ports,
    id: ConversationId,
    actor: &HandoffActor,
    action: HandoffAction,
) -> Result<Conversation, DomainError> {
    let mut attempts = 0;
    loop {
        let conversation = ports.conversations.get(id).await.map_err(not_found)?;
        let change = match conversation.handoff.apply(actor, action)? {
            HandoffOutcome::Unchanged => return Ok(conversation),
            HandoffOutcome::Changed(change) => change,
        };
        let notice = NewMessage {
            id: MessageId::from_uuid(ports.ids.new_id()),
            conversation_id: id,
            sender: Sender::System,
            sender_id: SYSTEM_SENDER_ID.to_owned(),
            content: MessageContent::trusted(change.notice()),
            attachments: Attachments::none(),
            suggestions: Vec::new(),
            client_message_id: None,
            answers: None,
            timestamp: ports.clock.now(),
            metadata: notice_metadata(&change.to),
        };
        match ports
            .conversations
            .change_handoff(id, &change, &notice)
            .await
        {
            Ok(stored) => {
                let mut now = Conversation {
                    handoff: change.to.clone(),
                    handoff_since: (!change.to.bot_answers()).then_some(stored.timestamp),
                    ..conversation
                };
                now.record(&stored);
                publish(&*ports.events, &now, EventKind::Message(stored)).await;
                publish(&*ports.events, &now, EventKind::Handoff(change.to)).await;
                return Ok(now);
            }
            Err(RepoError::Conflict) if attempts + 1 < ATTEMPTS => attempts += 1,
            Err(RepoError::Conflict) => return Err(HandoffRefusal::Contended.into()),
            Err(error) => return Err(not_found(error)),
        }
    }
}

/// What the notice carries for clients that draw handoffs their own way: the new
/// state and, for a claim, the agent.
fn notice_metadata(to: &HandoffState) -> Metadata {
    let value = match to.holder() {
        Some(agent) => json!({ "handoff": to.as_str(), "agent_id": agent.as_str() }),
        None => json!({ "handoff": to.as_str() }),
    };
    Metadata::parse(value).unwrap_or_default()
}

fn not_found(error: RepoError) -> DomainError {
    match error {
        RepoError::NotFound => DomainError::ConversationNotFound,
        other => other.into(),
    }
}
