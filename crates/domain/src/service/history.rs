//! Reading a conversation: pages of its history, the caller's conversations, and
//! waiting for the reply to one message.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use crate::conversation::{ConversationId, ConversationPage, ListQuery, PageSize};
use crate::error::{DomainError, RepoError, ValidationError};
use crate::event::EventKind;
use crate::message::{HistoryBound, HistoryCursor, HistoryPage, HistoryQuery, Message};
use crate::ports::pages_after;
use crate::user::Caller;

use super::{ConversationService, not_found_as};

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

impl ConversationService {
    /// One page of a conversation's history.
    pub async fn history(
        &self,
        caller: &Caller,
        conversation_id: ConversationId,
        request: HistoryRequest,
    ) -> Result<HistoryPage, DomainError> {
        // The page is read beside the check that the caller may see the conversation,
        // not after it: a page costs one storage round trip instead of two in a row.
        // Nothing of the page leaves here unless the check passes, and its failure is
        // the one reported.
        let (visible, page) = futures::join!(
            self.conversation(caller, conversation_id),
            self.page(conversation_id, request)
        );
        visible?;
        page
    }

    async fn page(
        &self,
        conversation: ConversationId,
        request: HistoryRequest,
    ) -> Result<HistoryPage, DomainError> {
        let query = HistoryQuery {
            before: self.bound(conversation, request.before).await?,
            after: self.bound(conversation, request.after).await?,
            limit: request.limit,
        };
        Ok(self.ports.messages.history(conversation, &query).await?)
    }

    async fn bound(
        &self,
        conversation: ConversationId,
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
                        .get(conversation, id)
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

    /// Waits up to `timeout` for the bot's reply to `message` and returns it: an empty
    /// list when none came in time, the conversation went away, or people answer it
    /// (the message was sent during a handoff, or the bot handed over instead of
    /// replying).
    pub async fn await_replies(
        &self,
        message: &Message,
        timeout: Duration,
    ) -> Result<Vec<Message>, DomainError> {
        // Subscribe before looking in storage: a reply stored in between is then seen
        // either in storage or on the stream, never missed.
        let mut stream = self.ports.events.subscribe(message.conversation_id).await?;
        let mut pages = pages_after(
            Arc::clone(&self.ports.messages),
            message.conversation_id,
            HistoryBound::Seq(message.seq),
            None,
            PageSize::HISTORY_LARGEST,
        );
        while let Some(page) = pages.try_next().await? {
            let replies: Vec<Message> = page
                .into_iter()
                .filter(|m| m.reply_to == Some(message.id))
                .collect();
            if !replies.is_empty() {
                return Ok(replies);
            }
        }
        // Sent while people answer: no bot reply will ever come.
        match self.ports.conversations.get(message.conversation_id).await {
            Ok(now) if !now.handoff.bot_answers() && now.replied_seq >= message.seq => {
                return Ok(Vec::new());
            }
            Ok(_) => {}
            Err(RepoError::NotFound) => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        }
        let wait = async {
            while let Some(event) = stream.next().await {
                match &event.kind {
                    EventKind::Message(reply) if reply.reply_to == Some(message.id) => {
                        return vec![reply.clone()];
                    }
                    // The bot handed the conversation to people instead of replying,
                    // or people took it over meanwhile.
                    EventKind::Deleted => return Vec::new(),
                    EventKind::Handoff(state) if !state.bot_answers() => return Vec::new(),
                    _ => {}
                }
            }
            Vec::new()
        };
        Ok(tokio::time::timeout(timeout, wait)
            .await
            .unwrap_or_default())
    }
}
