//! The reply pipeline: asks a conversation's bot engine to answer each user message,
//! in seq order, exactly once, and stores the answer.
//!
//! The pending work is durable without a queue table of its own: a conversation
//! whose `replied_seq` is below its `last_user_seq` has user messages waiting, and
//! storing a reply advances `replied_seq` in the same transaction as the reply (see
//! [`MessageRepository::append`](crate::ports::MessageRepository::append)). A server
//! that dies mid-reply therefore finds the work again at start-up
//! ([`ReplyPipeline::recover`]), and a reply stored twice is refused by storage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;

use crate::conversation::{Conversation, ConversationId, Metadata, PageSize};
use crate::error::{BotError, DomainError, RepoError};
use crate::event::EventKind;
use crate::message::{
    HistoryBound, HistoryQuery, Message, MessageContent, MessageId, NewMessage, ReplyTo, Sender,
};
use crate::ports::{BotReply, BotRequest, ReplyChunk};
use crate::service::{Ports, publish};

/// How replies are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplySettings {
    /// How long a bot may take for one reply before a `system` message says it failed.
    pub timeout: Duration,
    /// How many recent messages a bot engine is given.
    pub history_window: u32,
}

impl Default for ReplySettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            history_window: 20,
        }
    }
}

/// The sender id of messages confab writes itself.
pub const SYSTEM_SENDER_ID: &str = "confab";

/// Runs at most one worker per conversation, which answers its pending user messages
/// one after another.
pub struct ReplyPipeline {
    ports: Ports,
    settings: ReplySettings,
    /// Conversations with a running worker, and whether more work arrived since the
    /// worker last looked. A std mutex: it is held for a map operation, never across
    /// an await.
    workers: Mutex<HashMap<ConversationId, bool>>,
    /// The text streamed so far of each reply being produced, for subscribers that
    /// arrive mid-reply (they get it as one snapshot delta).
    streaming: Mutex<HashMap<ConversationId, StreamingReply>>,
    tasks: Arc<InFlight>,
}

/// A reply being streamed: its id, the index of its last delta and the text so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingReply {
    /// The id the stored reply will have.
    pub reply_id: MessageId,
    /// The index of the last delta included in `text`.
    pub last_index: u32,
    /// Every delta so far, concatenated.
    pub text: String,
}

impl ReplyPipeline {
    pub(crate) fn new(ports: Ports, settings: ReplySettings) -> Self {
        Self {
            ports,
            settings,
            workers: Mutex::new(HashMap::new()),
            streaming: Mutex::new(HashMap::new()),
            tasks: Arc::default(),
        }
    }

    /// Makes sure the conversation's pending user messages get answered.
    pub fn schedule(self: &Arc<Self>, conversation: ConversationId) {
        {
            let mut workers = lock(&self.workers);
            if let Some(rerun) = workers.get_mut(&conversation) {
                *rerun = true;
                return;
            }
            workers.insert(conversation, false);
        }
        let pipeline = Arc::clone(self);
        let guard = self.tasks.enter();
        tokio::spawn(async move {
            let _guard = guard;
            pipeline.work(conversation).await;
        });
    }

    /// Schedules every conversation that has user messages waiting for a reply, e.g.
    /// after a restart. Returns how many were scheduled.
    pub async fn recover(self: &Arc<Self>) -> Result<usize, DomainError> {
        let pending = self
            .ports
            .conversations
            .with_pending_replies(10_000)
            .await?;
        for conversation in &pending {
            self.schedule(*conversation);
        }
        Ok(pending.len())
    }

    /// The reply being streamed in a conversation right now, if any.
    pub fn streaming_reply(&self, conversation: ConversationId) -> Option<StreamingReply> {
        lock(&self.streaming).get(&conversation).cloned()
    }

    /// Waits until no reply is being produced, or `timeout` passes. Returns whether
    /// all work finished.
    pub async fn drain(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.tasks.idle())
            .await
            .is_ok()
    }

    async fn work(self: Arc<Self>, conversation: ConversationId) {
        loop {
            if let Err(error) = self.answer_pending(conversation).await {
                tracing::error!(%conversation, error = %error_chain(&error), "reply work stopped; it resumes on the next message or restart");
            }
            let mut workers = lock(&self.workers);
            match workers.get_mut(&conversation) {
                Some(rerun) if *rerun => *rerun = false,
                _ => {
                    workers.remove(&conversation);
                    return;
                }
            }
        }
    }

    async fn answer_pending(&self, id: ConversationId) -> Result<(), DomainError> {
        loop {
            let conversation = match self.ports.conversations.get(id).await {
                Ok(conversation) => conversation,
                Err(RepoError::NotFound) => return Ok(()),
                Err(error) => return Err(error.into()),
            };
            if !conversation.has_pending_replies() {
                return Ok(());
            }
            let Some(message) = self.next_unanswered(&conversation).await? else {
                return Ok(());
            };
            self.answer(&conversation, message).await?;
        }
    }

    async fn next_unanswered(
        &self,
        conversation: &Conversation,
    ) -> Result<Option<Message>, DomainError> {
        let mut after = conversation.replied_seq;
        loop {
            let page = self
                .ports
                .messages
                .history(
                    conversation.id,
                    &HistoryQuery {
                        before: None,
                        after: Some(HistoryBound::Seq(after)),
                        limit: PageSize::HISTORY_LARGEST,
                    },
                )
                .await?;
            if let Some(message) = page.messages.iter().find(|m| m.sender == Sender::User) {
                return Ok(Some(message.clone()));
            }
            match page.messages.last() {
                Some(last) if page.has_more => after = last.seq,
                _ => return Ok(None),
            }
        }
    }

    async fn answer(
        &self,
        conversation: &Conversation,
        message: Message,
    ) -> Result<(), DomainError> {
        let reply_id = MessageId::from_uuid(self.ports.ids.new_id());
        publish(
            &*self.ports.events,
            conversation,
            EventKind::Typing {
                sender: Sender::Bot,
                active: true,
            },
        )
        .await;
        let outcome = tokio::time::timeout(
            self.settings.timeout,
            self.produce(conversation, &message, reply_id),
        )
        .await
        .unwrap_or(Err(BotError::Timeout));
        // Forget the partial text before the reply is stored: a subscriber arriving in
        // between gets the stored message, never a snapshot of an answered reply.
        lock(&self.streaming).remove(&conversation.id);
        let (sender, sender_id, reply) = match outcome {
            Ok(reply) => (Sender::Bot, conversation.bot_id.to_string(), reply),
            Err(error) => {
                tracing::warn!(conversation = %conversation.id, %error, "bot reply failed");
                let text = match error {
                    BotError::Timeout => "The bot did not answer in time.",
                    BotError::Misconfigured(_) => "The bot is not available.",
                    BotError::Failed(_) => "The bot could not answer.",
                };
                (
                    Sender::System,
                    SYSTEM_SENDER_ID.to_owned(),
                    BotReply {
                        content: text.to_owned(),
                        ..BotReply::default()
                    },
                )
            }
        };
        let stored = self
            .ports
            .messages
            .append(&NewMessage {
                id: reply_id,
                conversation_id: conversation.id,
                sender,
                sender_id,
                content: MessageContent::trusted(reply.content),
                attachments: reply.attachments,
                suggestions: reply.suggestions,
                client_message_id: None,
                reply_to: Some(ReplyTo {
                    message_id: message.id,
                    seq: message.seq,
                }),
                timestamp: self.ports.clock.now(),
                metadata: Metadata::default(),
            })
            .await;
        let result = match stored {
            Ok(appended) => {
                if let Some(context) = reply.context {
                    self.ports
                        .sessions
                        .save_context(conversation.session_id, &context, self.ports.clock.now())
                        .await?;
                }
                publish(
                    &*self.ports.events,
                    conversation,
                    EventKind::Message(appended.into_message()),
                )
                .await;
                Ok(())
            }
            // Another worker (another instance) stored this reply first, or the
            // conversation was deleted meanwhile: nothing is left to do.
            Err(RepoError::Conflict | RepoError::NotFound) => Ok(()),
            Err(error) => Err(error.into()),
        };
        publish(
            &*self.ports.events,
            conversation,
            EventKind::Typing {
                sender: Sender::Bot,
                active: false,
            },
        )
        .await;
        result
    }

    async fn produce(
        &self,
        conversation: &Conversation,
        message: &Message,
        reply_id: MessageId,
    ) -> Result<BotReply, BotError> {
        let repo = |error: RepoError| BotError::Failed(Box::new(error));
        let bot = self
            .ports
            .bots
            .get(&conversation.bot_id)
            .await
            .map_err(|error| match error {
                RepoError::NotFound => {
                    BotError::Misconfigured(format!("bot {} does not exist", conversation.bot_id))
                }
                other => repo(other),
            })?;
        let engine = self.ports.engines.engine_for(&bot)?;
        let session = self
            .ports
            .sessions
            .get(conversation.session_id)
            .await
            .map_err(repo)?;
        let window = PageSize::parse(
            u64::from(self.settings.history_window.clamp(1, PageSize::HISTORY_MAX)),
            PageSize::HISTORY_MAX,
        )
        .map_err(|e| BotError::Misconfigured(e.to_string()))?;
        let history = self
            .ports
            .messages
            .history(
                conversation.id,
                &HistoryQuery {
                    before: Some(HistoryBound::Seq(message.seq.next())),
                    after: None,
                    limit: window,
                },
            )
            .await
            .map_err(repo)?
            .messages;
        let mut chunks = engine.reply(BotRequest {
            bot,
            conversation: conversation.clone(),
            session,
            message: message.clone(),
            history,
        });
        let mut index = 0;
        while let Some(chunk) = chunks.next().await {
            match chunk? {
                ReplyChunk::Delta(content) => {
                    // Recorded before publishing, so a subscriber's snapshot and the
                    // live deltas it then sees overlap rather than leave a gap.
                    lock(&self.streaming)
                        .entry(conversation.id)
                        .and_modify(|streaming| {
                            streaming.last_index = index;
                            streaming.text.push_str(&content);
                        })
                        .or_insert_with(|| StreamingReply {
                            reply_id,
                            last_index: index,
                            text: content.clone(),
                        });
                    publish(
                        &*self.ports.events,
                        conversation,
                        EventKind::Delta {
                            reply_id,
                            index,
                            content,
                            snapshot: false,
                        },
                    )
                    .await;
                    index += 1;
                }
                ReplyChunk::Done(reply) => return Ok(reply),
            }
        }
        Err(BotError::Failed(
            "the reply stream ended without a reply".into(),
        ))
    }
}

/// Locks a mutex that is never held across an await; a panic while it was held
/// leaves plain data behind, so the poison is ignored.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Counts running reply tasks so that shutdown can wait for them.
#[derive(Debug, Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(Arc::clone(self))
    }

    async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registering before the check means a task finishing in between still
            // wakes this waiter.
            notified.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
