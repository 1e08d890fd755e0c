//! The commands of a conversation: starting it, sending to it, renaming, archiving
//! or deleting it, and saying that the caller is typing.

use crate::bot::BotId;
use crate::conversation::{
    Conversation, ConversationChange, ConversationId, ConversationStatus, Metadata, Title,
};
use crate::error::{DomainError, RepoError, ValidationError};
use crate::event::EventKind;
use crate::message::{
    Appended, Attachment, Attachments, ClientMessageId, Message, MessageContent, MessageId,
    NewMessage, Sender,
};
use crate::ports::OwnAppend;
use crate::session::{Session, SessionId};
use crate::user::{Caller, Role};

use super::{ConversationService, not_found_as};

/// A message as a client wants to send it, checked against the model's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageDraft {
    /// The text.
    pub content: MessageContent,
    /// Attached files and links.
    pub attachments: Attachments,
    /// The client's id for the message, which makes the send idempotent.
    pub client_message_id: Option<ClientMessageId>,
    /// Client data.
    pub metadata: Metadata,
}

impl MessageDraft {
    /// Checks content together with its attachments and the optional client id.
    pub fn parse(
        content: &str,
        attachments: Vec<Attachment>,
        client_message_id: Option<&str>,
    ) -> Result<Self, ValidationError> {
        let attachments = Attachments::parse(attachments)?;
        Ok(Self {
            content: MessageContent::parse(content, &attachments)?,
            attachments,
            client_message_id: client_message_id.map(ClientMessageId::parse).transpose()?,
            metadata: Metadata::default(),
        })
    }
}

/// What starting a conversation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct StartConversation {
    /// The bot to talk to.
    pub bot_id: BotId,
    /// A first user message, sent at once.
    pub initial_message: Option<MessageDraft>,
    /// An optional title.
    pub title: Option<Title>,
    /// Client data.
    pub metadata: Metadata,
}

/// A started conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Started {
    /// The new conversation.
    pub conversation: Conversation,
    /// The initial message, when one was sent.
    pub initial_message: Option<Message>,
}

/// A sent message.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The stored message, or the original when this was a retry.
    pub message: Message,
    /// Whether this call stored it (`false` for an idempotent retry).
    pub created: bool,
}

impl ConversationService {
    /// Starts a conversation of the caller with a bot, and sends the initial message
    /// if there is one.
    pub async fn start(
        &self,
        caller: &Caller,
        command: StartConversation,
    ) -> Result<Started, DomainError> {
        let bot = self.bot(&command.bot_id).await?;
        let now = self.ports.clock.now();
        let conversation = Conversation {
            title: command.title,
            metadata: command.metadata,
            ..Conversation::begun(
                ConversationId::from_uuid(self.ports.ids.new_id()),
                SessionId::from_uuid(self.ports.ids.new_id()),
                caller.user_id.clone(),
                bot.id,
                now,
            )
        };
        let session = Session::new(&conversation);
        self.ports
            .conversations
            .create(&conversation, &session)
            .await?;
        let initial_message = match command.initial_message {
            Some(draft) => {
                let sender = sender_for(caller, &conversation)?;
                let message = self.new_message(caller, conversation.id, sender, draft);
                Some(
                    self.append_user_message(&conversation, message)
                        .await?
                        .message,
                )
            }
            None => None,
        };
        Ok(Started {
            conversation,
            initial_message,
        })
    }

    /// Sends a user message. A retry with a known `client_message_id` and the same
    /// content returns the original and triggers no second reply.
    pub async fn send(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        draft: MessageDraft,
    ) -> Result<Sent, DomainError> {
        // `Sender::User` holds wherever the own append takes the message: the caller
        // owns the conversation and writes as its user. The long way below finds the
        // sender for everyone else.
        let mut message = self.new_message(caller, conversation_id, Sender::User, draft);
        // A user's send to their own active conversation, the common case, is checked
        // and stored in one step; storage leaves anything else to the long way. Agents,
        // admins and bots, who mostly write to others' conversations, go straight
        // there rather than pay for a try.
        if caller.role == Role::User {
            let own = self
                .ports
                .messages
                .append_own(&message, &caller.user_id)
                .await?;
            if let OwnAppend::Stored { message, before } = own {
                return Ok(self.announce_and_answer(&before, message).await);
            }
        }
        let conversation = self.conversation(caller, conversation_id).await?;
        message.sender = sender_for(caller, &conversation)?;
        self.append_user_message(&conversation, message).await
    }

    fn new_message(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        sender: Sender,
        draft: MessageDraft,
    ) -> NewMessage {
        NewMessage {
            id: MessageId::from_uuid(self.ports.ids.new_id()),
            conversation_id,
            sender,
            sender_id: caller.user_id.to_string(),
            content: draft.content,
            attachments: draft.attachments,
            suggestions: Vec::new(),
            client_message_id: draft.client_message_id,
            answers: None,
            timestamp: self.ports.clock.now(),
            metadata: draft.metadata,
        }
    }

    /// Appends `message`, which the caller may send to `conversation` as its
    /// `sender` ([`sender_for`]).
    async fn append_user_message(
        &self,
        conversation: &Conversation,
        message: NewMessage,
    ) -> Result<Sent, DomainError> {
        let appended = self
            .ports
            .messages
            .append(&message)
            .await
            .map_err(|error| match error {
                RepoError::NotFound => DomainError::ConversationNotFound,
                other => other.into(),
            })?;
        match appended {
            Appended::Existing(original) => {
                if original.content != message.content
                    || original.attachments != message.attachments
                    || original.sender != message.sender
                {
                    return Err(DomainError::IdempotencyMismatch);
                }
                // The first attempt may have been stored although its answer was lost
                // (storage went away after the commit), before anything had the
                // message answered: a retry that finds replies pending has the worker
                // look, which answers nothing twice.
                if original.sender == Sender::User && conversation.has_pending_replies() {
                    self.replies.schedule(conversation.id);
                }
                Ok(Sent {
                    message: original,
                    created: false,
                })
            }
            Appended::Stored(stored) => Ok(self.announce_and_answer(conversation, stored).await),
        }
    }

    /// Tells followers of a message just stored in `conversation` (as it stood before)
    /// and has it answered.
    async fn announce_and_answer(&self, conversation: &Conversation, stored: Message) -> Sent {
        self.publish(conversation, EventKind::Message(stored.clone()))
            .await;
        if stored.sender == Sender::User {
            self.replies.stored(conversation, &stored);
        }
        Sent {
            message: stored,
            created: true,
        }
    }

    /// Archives, unarchives, renames or re-tags a conversation.
    pub async fn update(
        &self,
        caller: &Caller,
        id: ConversationId,
        change: ConversationChange,
    ) -> Result<Conversation, DomainError> {
        if change.is_empty() {
            return Err(ValidationError::EmptyChange.into());
        }
        let before = self.conversation(caller, id).await?;
        if is_agent_of_another(caller, &before) {
            // The agent holding a conversation closes it by archiving, which gives
            // it back to its bot first; the rest of it is the user's.
            if change.status != Some(ConversationStatus::Archived)
                || change.title.is_some()
                || change.metadata.is_some()
            {
                return Err(DomainError::Forbidden);
            }
            writer(caller, &before)?;
            self.release(caller, id).await?;
        }
        let after = self
            .ports
            .conversations
            .update(id, &change)
            .await
            .map_err(not_found_as(DomainError::ConversationNotFound))?;
        if before.status != after.status {
            self.publish(&after, EventKind::Status(after.status)).await;
        }
        Ok(after)
    }

    /// Erases a conversation with its session and messages.
    pub async fn delete(&self, caller: &Caller, id: ConversationId) -> Result<(), DomainError> {
        let conversation = self.conversation(caller, id).await?;
        if is_agent_of_another(caller, &conversation) {
            return Err(DomainError::Forbidden);
        }
        self.ports
            .conversations
            .delete(id)
            .await
            .map_err(not_found_as(DomainError::ConversationNotFound))?;
        self.publish(&conversation, EventKind::Deleted).await;
        Ok(())
    }

    /// Tells the conversation's other subscribers that the caller is typing.
    pub async fn typing(&self, caller: &Caller, id: ConversationId) -> Result<(), DomainError> {
        let conversation = self.conversation(caller, id).await?;
        let sender = writer(caller, &conversation)?;
        self.publish(
            &conversation,
            EventKind::Typing {
                sender,
                active: true,
            },
        )
        .await;
        Ok(())
    }
}

/// Whether the caller sees the conversation as an agent, not as its user: they may
/// write to it while they hold it, and archive it, but nothing more.
fn is_agent_of_another(caller: &Caller, conversation: &Conversation) -> bool {
    caller.role == Role::Agent && conversation.user_id != caller.user_id
}

/// The sender `caller` writes to `conversation` as, when it may write to it now.
fn sender_for(caller: &Caller, conversation: &Conversation) -> Result<Sender, DomainError> {
    if conversation.status == ConversationStatus::Archived {
        return Err(DomainError::ConversationArchived);
    }
    writer(caller, conversation)
}

/// Who the caller writes as in a conversation they may see: its user, its bot, or
/// the agent holding it.
///
/// # Errors
/// - `Handoff(NotHolder)` for an agent who does not hold the conversation;
/// - `Forbidden` for an admin who is neither its user nor its holder.
fn writer(caller: &Caller, conversation: &Conversation) -> Result<Sender, DomainError> {
    if conversation.user_id == caller.user_id && !matches!(caller.role, Role::Bot(_)) {
        return Ok(Sender::User);
    }
    match &caller.role {
        // Visibility was checked already: a bot caller is this conversation's bot.
        Role::Bot(_) => Ok(Sender::Bot),
        Role::User => Ok(Sender::User),
        Role::Agent => {
            conversation.handoff.agent_may_write(&caller.user_id)?;
            Ok(Sender::Agent)
        }
        Role::Admin if conversation.handoff.holder() == Some(&caller.user_id) => Ok(Sender::Agent),
        Role::Admin => Err(DomainError::Forbidden),
    }
}
