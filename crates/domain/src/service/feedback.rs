//! Feedback on bot replies: the conversation's user rates a reply up or down, with an
//! optional comment, changes their mind, or takes it back. Every client following the
//! conversation hears of each change.

use crate::conversation::ConversationId;
use crate::error::{DomainError, RepoError, ValidationError};
use crate::event::EventKind;
use crate::message::{Feedback, FeedbackComment, Message, MessageId, Rating, Sender};
use crate::user::Caller;

use super::ConversationService;

impl ConversationService {
    /// Rates the bot reply `message_id` (again: the new rating replaces the old).
    ///
    /// # Errors
    /// - `ConversationNotFound` / `MessageNotFound` for what the caller cannot see;
    /// - `Forbidden` for anyone but the conversation's user;
    /// - `Invalid(FeedbackNotOnBotReply)` for a message that is not the bot's.
    pub async fn rate(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        message_id: MessageId,
        rating: Rating,
        comment: Option<FeedbackComment>,
    ) -> Result<Message, DomainError> {
        let feedback = Feedback {
            rating,
            comment,
            at: self.ports.clock.now(),
        };
        self.set_feedback(caller, conversation_id, message_id, Some(feedback))
            .await
    }

    /// Takes the caller's feedback on `message_id` back; without any, changes nothing.
    ///
    /// # Errors
    /// As [`rate`](Self::rate).
    pub async fn unrate(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        message_id: MessageId,
    ) -> Result<Message, DomainError> {
        self.set_feedback(caller, conversation_id, message_id, None)
            .await
    }

    async fn set_feedback(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        message_id: MessageId,
        feedback: Option<Feedback>,
    ) -> Result<Message, DomainError> {
        let conversation = self.conversation(caller, conversation_id).await?;
        let message = self
            .ports
            .messages
            .get(conversation_id, message_id)
            .await
            .map_err(message_not_found)?;
        // Feedback is the user's word on what their bot said: admins, agents and bots
        // see the conversation but give none.
        if conversation.user_id != caller.user_id || caller.role == crate::user::Role::Agent {
            return Err(DomainError::Forbidden);
        }
        if message.sender != Sender::Bot {
            return Err(ValidationError::FeedbackNotOnBotReply.into());
        }
        if message.feedback.is_none() && feedback.is_none() {
            return Ok(message);
        }
        let rated = self
            .ports
            .messages
            .set_feedback(conversation_id, message_id, feedback)
            .await
            .map_err(message_not_found)?;
        self.publish(
            &conversation,
            EventKind::Feedback {
                message_id,
                feedback: rated.feedback.clone(),
            },
        )
        .await;
        Ok(rated)
    }
}

fn message_not_found(error: RepoError) -> DomainError {
    match error {
        RepoError::NotFound => DomainError::MessageNotFound,
        other => other.into(),
    }
}
