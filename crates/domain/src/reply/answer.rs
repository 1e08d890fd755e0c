//! Producing the answers: reading what is pending, asking the bot engine with the
//! session and a window of history, streaming its deltas, and storing the reply (or a
//! `system` message saying why there is none).

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::handoff::move_handoff;
use super::limits::BotLimits;
use super::{ReplyPipeline, SYSTEM_SENDER_ID, lock};
use crate::bot::Bot;
use crate::conversation::{Conversation, ConversationId, PageSize};
use crate::error::{BotError, DomainError, RepoError, error_chain};
use crate::event::EventKind;
use crate::handoff::{HandoffAction, HandoffActor};
use crate::message::{
    HistoryBound, HistoryQuery, Message, MessageContent, MessageId, NewMessage, ReplyTo, Sender,
    Seq,
};
use crate::ports::{BotEngine, BotReply, BotRequest, ReplyChunk, pages_after, publish};
use crate::session::Session;

/// How many times a worker lets other tasks run while it waits for the pending
/// messages to be handed to it, before it reads them from storage instead.
const HANDING_WAITS: usize = 2;

impl ReplyPipeline {
    /// Answers the user messages pending when it looks, a page of them per look at
    /// the conversation. Messages stored after that look are not its concern: this
    /// instance's raise the worker's rerun flag, and other instances' make the lease's
    /// release report work remaining, and either sends the worker here again.
    ///
    /// The messages handed to the worker (`handed`) spare it the history read when
    /// they are all that is pending; `read`, the conversation read just before (by
    /// the lease's claim), spares the first look reading it.
    pub(super) async fn answer_pending(
        &self,
        id: ConversationId,
        mut read: Option<Conversation>,
    ) -> Result<(), DomainError> {
        loop {
            let conversation = match read.take() {
                Some(conversation) => conversation,
                None => match self.ports.conversations.get(id).await {
                    Ok(conversation) => conversation,
                    Err(RepoError::NotFound) => return Ok(()),
                    Err(error) => return Err(error.into()),
                },
            };
            if !conversation.has_pending_replies() {
                return Ok(());
            }
            let (unanswered, more) = match self.handed_pending(&conversation).await {
                Some(unanswered) => (unanswered, false),
                None => self.next_unanswered(&conversation).await?,
            };
            if unanswered.is_empty() {
                return Ok(());
            }
            // In seq order: storing a reply moves `replied_seq` past the message it
            // answers, so answering a later one first would skip the earlier.
            for message in unanswered {
                self.answer(&conversation, message).await?;
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// The user messages pending in `conversation` if they were all handed to its
    /// worker ([`exactly_the_pending`](super::handed::exactly_the_pending)). Looked
    /// for after the conversation was read, so that what was stored before is
    /// handed; and, while some is missing but some was handed, again after each time
    /// the runtime's other tasks run, up to [`HANDING_WAITS`] times: a message
    /// committed just before the read (on SQLite, in the same batch as the worker's
    /// last reply) is read before its sender, woken with the worker, has handed it.
    async fn handed_pending(&self, conversation: &Conversation) -> Option<Vec<Message>> {
        for waited in 0..=HANDING_WAITS {
            if waited > 0 {
                tokio::task::yield_now().await;
            }
            let mut workers = lock(&self.workers);
            let mailbox = workers.get_mut(&conversation.id)?;
            let pending = mailbox.take_pending(conversation);
            if pending.is_some() || !mailbox.holds_any() {
                return pending;
            }
        }
        None
    }

    /// The unanswered user messages of the first page after `replied_seq` that has
    /// any, in seq order, and whether that page was full (more may follow it).
    async fn next_unanswered(
        &self,
        conversation: &Conversation,
    ) -> Result<(Vec<Message>, bool), DomainError> {
        let mut pages = pages_after(
            Arc::clone(&self.ports.messages),
            conversation.id,
            HistoryBound::Seq(conversation.replied_seq),
            None,
            PageSize::HISTORY_LARGEST,
        );
        while let Some(page) = pages.try_next().await? {
            let full = page.len() >= PageSize::HISTORY_LARGEST.get() as usize;
            let unanswered: Vec<Message> = page
                .into_iter()
                .filter(|message| message.sender == Sender::User)
                .collect();
            if !unanswered.is_empty() {
                return Ok((unanswered, full));
            }
        }
        Ok((Vec::new(), false))
    }

    pub(super) async fn answer(
        &self,
        conversation: &Conversation,
        message: Message,
    ) -> Result<(), DomainError> {
        let reply_id = MessageId::from_uuid(self.ports.ids.new_id());
        self.bot_typing(conversation, true).await;
        let bot = self.ports.bots.get(&conversation.bot_id).await;
        let engine = bot
            .as_ref()
            .ok()
            .map(|bot| self.ports.engines.engine_for(bot));
        let reads = |what: fn(&dyn BotEngine) -> bool| match &engine {
            Some(Ok(engine)) => what(engine.as_ref()),
            // No engine to ask: read all, the reply fails before using any of it.
            _ => true,
        };
        let (reads_session, reads_history) = (
            reads(|engine| engine.reads_session()),
            reads(|engine| engine.reads_history()),
        );
        // The session and the history window side by side: one round trip to storage
        // instead of two in a row.
        let (session, history) = tokio::join!(
            async {
                if reads_session {
                    self.ports.sessions.get(conversation.session_id).await
                } else {
                    Ok(Session::new(conversation))
                }
            },
            async {
                if reads_history {
                    self.history_window(conversation.id, message.seq).await
                } else {
                    Ok(Vec::new())
                }
            },
        );
        // Storage that cannot be read now may answer the next try (the worker's own,
        // or the sweep's with several instances): the message waits for its real
        // answer instead of getting a `system` message that the bot could not answer.
        if let Some(cause) = [
            bot.as_ref().err(),
            session.as_ref().err(),
            history.as_ref().err(),
        ]
        .into_iter()
        .flatten()
        .find_map(|error| match error {
            RepoError::Unavailable(cause) => Some(error_chain(cause.as_ref())),
            _ => None,
        }) {
            self.bot_typing(conversation, false).await;
            return Err(RepoError::Unavailable(cause.into()).into());
        }
        let limits = bot
            .as_ref()
            .map(|bot| BotLimits::of(bot, self.settings.timeout))
            .unwrap_or(BotLimits {
                timeout: self.settings.timeout,
                max_concurrency: None,
            });
        // Waiting for a turn does not count against the bot's timeout: the wait is
        // bounded by the replies ahead, each bounded by that timeout.
        let _permit = match limits.max_concurrency {
            Some(max) => self.permit(&conversation.bot_id, max).await,
            None => None,
        };
        let outcome = tokio::time::timeout(
            limits.timeout,
            self.produce(
                conversation,
                &message,
                reply_id,
                Context {
                    bot,
                    engine,
                    session,
                    history,
                },
            ),
        )
        .await
        .unwrap_or(Err(BotError::Timeout));
        self.streaming.finish(conversation.id);
        let (sender, sender_id, reply) = match outcome {
            Ok(Some(reply))
                if reply.handoff && reply.content.is_empty() && reply.attachments.is_empty() =>
            {
                self.hand_over(conversation, &message).await?;
                if let Some(context) = &reply.context {
                    self.ports
                        .sessions
                        .save_context(conversation.session_id, context, self.ports.clock.now())
                        .await?;
                }
                return self.ask_for_a_person(conversation).await;
            }
            Ok(Some(reply)) => (Sender::Bot, conversation.bot_id.to_string(), reply),
            Ok(None) => return self.hand_over(conversation, &message).await,
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
        let asks_for_a_person = reply.handoff;
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
                answers: Some(ReplyTo {
                    message_id: message.id,
                    seq: message.seq,
                }),
                timestamp: self.ports.clock.now(),
                metadata: reply.metadata,
            })
            .await;
        let result = match stored {
            Ok(appended) => {
                // Published before the context is saved: the reply is stored, so
                // subscribers must see it (and typing must stop) even when saving
                // the context fails.
                publish(
                    &*self.ports.events,
                    conversation,
                    EventKind::Message(appended.into_message()),
                )
                .await;
                match reply.context {
                    Some(context) => self
                        .ports
                        .sessions
                        .save_context(conversation.session_id, &context, self.ports.clock.now())
                        .await
                        .map_err(DomainError::from),
                    None => Ok(()),
                }
            }
            // Another worker (another instance) stored this reply first, or the
            // conversation was deleted meanwhile: nothing is left to do.
            Err(RepoError::Conflict | RepoError::NotFound) => Ok(()),
            Err(error) => Err(error.into()),
        };
        self.bot_typing(conversation, false).await;
        result?;
        if asks_for_a_person {
            self.ask_for_a_person(conversation).await?;
        }
        Ok(())
    }

    /// Puts the conversation in the agents' queue because its bot asked for a
    /// person. A conversation gone meanwhile has nobody left to hand over.
    async fn ask_for_a_person(&self, conversation: &Conversation) -> Result<(), DomainError> {
        match move_handoff(
            &self.ports,
            conversation.id,
            &HandoffActor::Bot,
            HandoffAction::Request,
        )
        .await
        {
            Ok(_) | Err(DomainError::ConversationNotFound) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Tells the conversation's subscribers whether its bot is typing.
    async fn bot_typing(&self, conversation: &Conversation, active: bool) {
        publish(
            &*self.ports.events,
            conversation,
            EventKind::Typing {
                sender: Sender::Bot,
                active,
            },
        )
        .await;
    }

    /// Completes the reply job of a message whose bot answers later by itself: no
    /// message is stored, and typing stops.
    async fn hand_over(
        &self,
        conversation: &Conversation,
        message: &Message,
    ) -> Result<(), DomainError> {
        let marked = self
            .ports
            .messages
            .mark_answered(conversation.id, message.seq)
            .await;
        self.bot_typing(conversation, false).await;
        match marked {
            // Another instance completed the job first, or the conversation is gone.
            Ok(()) | Err(RepoError::Conflict | RepoError::NotFound) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// The most recent messages up to and including the one at `seq`, oldest first.
    async fn history_window(
        &self,
        conversation: ConversationId,
        seq: Seq,
    ) -> Result<Vec<Message>, RepoError> {
        let window = PageSize::clamped(self.settings.history_window, PageSize::HISTORY_MAX);
        let page = self
            .ports
            .messages
            .history(
                conversation,
                &HistoryQuery {
                    before: Some(HistoryBound::Seq(seq.next())),
                    after: None,
                    limit: window,
                },
            )
            .await?;
        Ok(page.messages)
    }

    async fn produce(
        &self,
        conversation: &Conversation,
        message: &Message,
        reply_id: MessageId,
        context: Context,
    ) -> Result<Option<BotReply>, BotError> {
        let repo = |error: RepoError| BotError::Failed(Box::new(error));
        let bot = context.bot.map_err(|error| match error {
            RepoError::NotFound => {
                BotError::Misconfigured(format!("bot {} does not exist", conversation.bot_id))
            }
            other => repo(other),
        })?;
        // Present whenever the bot is: it was looked up for the bot just read.
        let engine = context
            .engine
            .unwrap_or_else(|| self.ports.engines.engine_for(&bot))?;
        let session = context.session.map_err(repo)?;
        let history = context.history.map_err(repo)?;
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
                    self.streaming
                        .record(conversation.id, reply_id, index, &content);
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
                ReplyChunk::Done(reply) => return Ok(Some(reply)),
                ReplyChunk::Deferred => return Ok(None),
            }
        }
        Err(BotError::Failed(
            "the reply stream ended without a reply".into(),
        ))
    }
}

/// What an engine is given besides the message, as read from storage.
struct Context {
    bot: Result<Bot, RepoError>,
    /// The bot's engine, when the bot was found.
    engine: Option<Result<Arc<dyn BotEngine>, BotError>>,
    session: Result<Session, RepoError>,
    history: Result<Vec<Message>, RepoError>,
}
