//! The use cases: [`ConversationService`] enforces every rule of the model and calls
//! the ports. Handlers of any transport call it and nothing below it.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use crate::bot::{Bot, BotId};
use crate::conversation::{
    Conversation, ConversationChange, ConversationId, ConversationPage, ConversationStatus,
    ListQuery, Metadata, PageSize, Title,
};
use crate::error::{DomainError, RepoError, ValidationError};
use crate::event::{ConversationEvent, EventKind};
use crate::message::{
    Appended, Attachment, Attachments, ClientMessageId, HistoryBound, HistoryCursor, HistoryPage,
    HistoryQuery, Message, MessageContent, NewMessage, Sender, Seq,
};
use crate::ports::{
    BotRepository, Clock, ConversationRepository, EngineRegistry, EventBus, EventStream,
    IdGenerator, MessageRepository, SessionRepository,
};
use crate::reply::{ReplyPipeline, ReplySettings};
use crate::session::{Session, SessionId};
use crate::user::{Caller, Role};

/// Every port the service needs; the composition root fills it.
#[derive(Clone)]
pub struct Ports {
    /// Conversations and sessions.
    pub conversations: Arc<dyn ConversationRepository>,
    /// Messages.
    pub messages: Arc<dyn MessageRepository>,
    /// Session contexts.
    pub sessions: Arc<dyn SessionRepository>,
    /// Bots.
    pub bots: Arc<dyn BotRepository>,
    /// Bot engines.
    pub engines: Arc<dyn EngineRegistry>,
    /// Subscribers.
    pub events: Arc<dyn EventBus>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Ids.
    pub ids: Arc<dyn IdGenerator>,
}

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

/// Where a history page is taken, as the client names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryRequest {
    /// Only messages older than this.
    pub before: Option<HistoryCursor>,
    /// Only messages newer than this.
    pub after: Option<HistoryCursor>,
    /// How many at most.
    pub limit: PageSize,
}

/// The use cases of confab.
pub struct ConversationService {
    ports: Ports,
    replies: Arc<ReplyPipeline>,
}

impl ConversationService {
    /// A service over `ports`, with its reply pipeline.
    pub fn new(ports: Ports, reply_settings: ReplySettings) -> Self {
        let replies = Arc::new(ReplyPipeline::new(ports.clone(), reply_settings));
        Self { ports, replies }
    }

    pub(crate) fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The reply pipeline, for start-up recovery and shutdown.
    pub fn replies(&self) -> &Arc<ReplyPipeline> {
        &self.replies
    }

    /// Every bot, ordered by id.
    pub async fn bots(&self) -> Result<Vec<Bot>, DomainError> {
        Ok(self.ports.bots.list().await?)
    }

    /// One bot.
    pub async fn bot(&self, id: &BotId) -> Result<Bot, DomainError> {
        self.ports.bots.get(id).await.map_err(|error| match error {
            RepoError::NotFound => DomainError::BotNotFound(id.to_string()),
            other => other.into(),
        })
    }

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
            id: ConversationId::from_uuid(self.ports.ids.new_id()),
            session_id: SessionId::from_uuid(self.ports.ids.new_id()),
            user_id: caller.user_id.clone(),
            bot_id: bot.id.clone(),
            status: ConversationStatus::Active,
            title: command.title,
            metadata: command.metadata,
            created_at: now,
            last_activity: now,
            last_message: None,
            message_count: 0,
            last_seq: Seq::ZERO,
            last_user_seq: Seq::ZERO,
            replied_seq: Seq::ZERO,
        };
        let session = Session {
            id: conversation.session_id,
            conversation_id: conversation.id,
            user_id: caller.user_id.clone(),
            bot_id: bot.id,
            context: serde_json::Map::new(),
            created_at: now,
            updated_at: now,
        };
        self.ports
            .conversations
            .create(&conversation, &session)
            .await?;
        let initial_message = match command.initial_message {
            Some(draft) => Some(
                self.append_user_message(caller, &conversation, draft)
                    .await?
                    .message,
            ),
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
        let conversation = self.conversation(caller, conversation_id).await?;
        self.append_user_message(caller, &conversation, draft).await
    }

    async fn append_user_message(
        &self,
        caller: &Caller,
        conversation: &Conversation,
        draft: MessageDraft,
    ) -> Result<Sent, DomainError> {
        if conversation.status == ConversationStatus::Archived {
            return Err(DomainError::ConversationArchived);
        }
        // Visibility was checked already: a bot caller is this conversation's bot.
        let sender = match &caller.role {
            Role::Bot(_) => Sender::Bot,
            Role::User => Sender::User,
            Role::Admin if conversation.user_id == caller.user_id => Sender::User,
            Role::Admin => return Err(DomainError::Forbidden),
        };
        let message = NewMessage {
            id: crate::message::MessageId::from_uuid(self.ports.ids.new_id()),
            conversation_id: conversation.id,
            sender,
            sender_id: caller.user_id.to_string(),
            content: draft.content,
            attachments: draft.attachments,
            suggestions: Vec::new(),
            client_message_id: draft.client_message_id,
            reply_to: None,
            timestamp: self.ports.clock.now(),
            metadata: draft.metadata,
        };
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
                Ok(Sent {
                    message: original,
                    created: false,
                })
            }
            Appended::Stored(stored) => {
                self.publish(conversation, EventKind::Message(stored.clone()))
                    .await;
                if stored.sender == Sender::User {
                    self.replies.schedule(conversation.id);
                }
                Ok(Sent {
                    message: stored,
                    created: true,
                })
            }
        }
    }

    /// The conversation with this id, if the caller may see it.
    pub async fn conversation(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<Conversation, DomainError> {
        let conversation = self
            .ports
            .conversations
            .get(id)
            .await
            .map_err(not_found_as(DomainError::ConversationNotFound))?;
        visible_to(caller, conversation).ok_or(DomainError::ConversationNotFound)
    }

    /// The conversation a session belongs to, if the caller may see it.
    pub async fn conversation_by_session(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<Conversation, DomainError> {
        let conversation = self
            .ports
            .conversations
            .get_by_session(id)
            .await
            .map_err(not_found_as(DomainError::SessionNotFound))?;
        visible_to(caller, conversation).ok_or(DomainError::SessionNotFound)
    }

    /// One page of a conversation's history.
    pub async fn history(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        request: HistoryRequest,
    ) -> Result<HistoryPage, DomainError> {
        let conversation = self.conversation(caller, conversation_id).await?;
        let query = HistoryQuery {
            before: self.bound(&conversation, request.before).await?,
            after: self.bound(&conversation, request.after).await?,
            limit: request.limit,
        };
        Ok(self.ports.messages.history(conversation.id, &query).await?)
    }

    async fn bound(
        &self,
        conversation: &Conversation,
        cursor: Option<HistoryCursor>,
    ) -> Result<Option<HistoryBound>, DomainError> {
        Ok(match cursor {
            None => None,
            Some(HistoryCursor::Seq(seq)) => Some(HistoryBound::Seq(seq)),
            Some(HistoryCursor::Time(at)) => Some(HistoryBound::Time(at)),
            Some(HistoryCursor::Message(id)) => {
                let message =
                    self.ports
                        .messages
                        .get(conversation.id, id)
                        .await
                        .map_err(not_found_as(DomainError::Invalid(
                            ValidationError::UnknownCursorMessage(id.to_string()),
                        )))?;
                Some(HistoryBound::Seq(message.seq))
            }
        })
    }

    /// One page of the caller's conversations.
    pub async fn list(
        &self,
        caller: &Caller,
        query: &ListQuery,
    ) -> Result<ConversationPage, DomainError> {
        Ok(self
            .ports
            .conversations
            .list(&caller.user_id, query)
            .await?)
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
        self.ports
            .conversations
            .delete(id)
            .await
            .map_err(not_found_as(DomainError::ConversationNotFound))?;
        self.publish(&conversation, EventKind::Deleted).await;
        Ok(())
    }

    /// Subscribes to a conversation's live events, if the caller may see it.
    pub async fn subscribe(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<(Conversation, EventStream), DomainError> {
        let conversation = self.conversation(caller, id).await?;
        let stream = self.ports.events.subscribe(id).await?;
        Ok((conversation, stream))
    }

    /// Tells the conversation's other subscribers that the caller is typing.
    pub async fn typing(&self, caller: &Caller, id: ConversationId) -> Result<(), DomainError> {
        let conversation = self.conversation(caller, id).await?;
        self.publish(
            &conversation,
            EventKind::Typing {
                sender: Sender::User,
                active: true,
            },
        )
        .await;
        Ok(())
    }

    /// Waits up to `timeout` for the bot's reply to `message` and returns it (an empty
    /// list when none came in time or the conversation went away).
    pub async fn await_replies(
        &self,
        message: &Message,
        timeout: Duration,
    ) -> Result<Vec<Message>, DomainError> {
        // Subscribe before looking in storage: a reply stored in between is then seen
        // either in storage or on the stream, never missed.
        let mut stream = self.ports.events.subscribe(message.conversation_id).await?;
        let mut after = message.seq;
        loop {
            let page = self
                .ports
                .messages
                .history(
                    message.conversation_id,
                    &HistoryQuery {
                        before: None,
                        after: Some(HistoryBound::Seq(after)),
                        limit: PageSize::HISTORY_LARGEST,
                    },
                )
                .await?;
            let replies: Vec<Message> = page
                .messages
                .iter()
                .filter(|m| m.reply_to == Some(message.id))
                .cloned()
                .collect();
            if !replies.is_empty() {
                return Ok(replies);
            }
            match page.messages.last() {
                Some(last) if page.has_more => after = last.seq,
                _ => break,
            }
        }
        let wait = async {
            while let Some(event) = stream.next().await {
                match event.kind {
                    EventKind::Message(reply) if reply.reply_to == Some(message.id) => {
                        return vec![reply];
                    }
                    EventKind::Deleted => return Vec::new(),
                    _ => {}
                }
            }
            Vec::new()
        };
        Ok(tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or_default())
    }

    async fn publish(&self, conversation: &Conversation, kind: EventKind) {
        publish(&*self.ports.events, conversation, kind).await;
    }
}

/// Publishes an event, logging rather than failing: what was stored stays stored, and
/// subscribers that missed the event catch up from storage when they resume.
pub(crate) async fn publish(events: &dyn EventBus, conversation: &Conversation, kind: EventKind) {
    let event = ConversationEvent {
        conversation_id: conversation.id,
        session_id: conversation.session_id,
        kind,
    };
    if let Err(error) = events.publish(event).await {
        tracing::warn!(conversation = %conversation.id, %error, "event not published");
    }
}

/// The conversation, if the caller may see it: its owner, an admin, or its bot.
fn visible_to(caller: &Caller, conversation: Conversation) -> Option<Conversation> {
    let visible = match &caller.role {
        Role::Admin => true,
        Role::User => conversation.user_id == caller.user_id,
        Role::Bot(bot) => conversation.bot_id == *bot,
    };
    visible.then_some(conversation)
}

fn not_found_as(domain: DomainError) -> impl FnOnce(RepoError) -> DomainError {
    move |error| match error {
        RepoError::NotFound => domain,
        other => other.into(),
    }
}
