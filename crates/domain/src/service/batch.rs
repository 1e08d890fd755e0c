//! Conversation management at scale: one action on many conversations at once, and a
//! conversation's whole history as a stream read from storage page by page.
//!
//! A batch is many single changes, not one transaction: each conversation's change is
//! atomic and publishes its `status` event like a single `update` or `delete` would,
//! and the caller gets one outcome per id.

use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use super::ConversationService;
use crate::conversation::{ConversationChange, ConversationId, ConversationStatus, PageSize};
use crate::error::{DomainError, ValidationError};
use crate::message::{HistoryBound, Message, Seq};
use crate::ports::{MessageRepository, pages_after};
use crate::timestamp::Timestamp;
use crate::user::Caller;

/// Most ids one batch may name.
pub const BATCH_MAX_IDS: usize = 100;

/// Messages read from storage per page while exporting: large enough that a million
/// messages take few round trips, small enough that memory stays flat.
pub const EXPORT_PAGE: u32 = 500;

/// What a batch does to each conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchAction {
    /// Set the status to archived.
    Archive,
    /// Set the status to active.
    Unarchive,
    /// Erase the conversation with its session and messages.
    Delete,
}

impl BatchAction {
    /// The status change the action makes, or `None` for a delete.
    fn change(self) -> Option<ConversationChange> {
        let status = match self {
            Self::Archive => ConversationStatus::Archived,
            Self::Unarchive => ConversationStatus::Active,
            Self::Delete => return None,
        };
        Some(ConversationChange {
            status: Some(status),
            ..ConversationChange::default()
        })
    }
}

/// What a batch did to one conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Done (also when the conversation already had the requested status).
    Ok,
    /// No such conversation, or not the caller's.
    NotFound,
    /// Storage failed for this conversation; nothing was changed for it. The cause is
    /// logged; retrying later may succeed.
    Failed,
}

/// One id's result, in request order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchResult {
    /// The conversation.
    pub id: ConversationId,
    /// What happened to it.
    pub outcome: BatchOutcome,
}

/// A stream of messages read from storage as it is consumed.
pub type MessageStream = BoxStream<'static, Result<Message, DomainError>>;

impl ConversationService {
    /// Applies `action` to each of `ids` (1 to [`BATCH_MAX_IDS`]) in order, as the
    /// single `update` or `delete` would, and reports one outcome per id. Ids the caller
    /// may not see are `NotFound`, like unknown ones.
    ///
    /// # Errors
    /// `Invalid` when `ids` is empty or longer than [`BATCH_MAX_IDS`]; a storage
    /// failure on one id is that id's `Failed` outcome, not an error of the batch.
    pub async fn batch(
        &self,
        caller: &Caller,
        action: BatchAction,
        ids: &[ConversationId],
    ) -> Result<Vec<BatchResult>, DomainError> {
        if ids.is_empty() || ids.len() > BATCH_MAX_IDS {
            return Err(ValidationError::InvalidLimit {
                max: BATCH_MAX_IDS as u32,
                actual: ids.len() as u64,
            }
            .into());
        }
        let mut results = Vec::with_capacity(ids.len());
        for &id in ids {
            let outcome = match self.apply(caller, action, id).await {
                Ok(()) => BatchOutcome::Ok,
                Err(DomainError::ConversationNotFound) => BatchOutcome::NotFound,
                Err(error) => {
                    tracing::warn!(conversation = %id, %error, "batch action failed");
                    BatchOutcome::Failed
                }
            };
            results.push(BatchResult { id, outcome });
        }
        Ok(results)
    }

    /// One conversation's part of a batch.
    pub(crate) async fn apply(
        &self,
        caller: &Caller,
        action: BatchAction,
        id: ConversationId,
    ) -> Result<(), DomainError> {
        match action.change() {
            Some(change) => self.update(caller, id, change).await.map(drop),
            None => self.delete(caller, id).await,
        }
    }

    /// Every message of a conversation the caller may see, oldest first, read from
    /// storage [`EXPORT_PAGE`] messages at a time as the stream is consumed.
    ///
    /// # Errors
    /// `ConversationNotFound` when the caller may not see the conversation; storage
    /// failures while streaming end the stream with an error item.
    pub async fn export(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<MessageStream, DomainError> {
        let conversation = self.conversation(caller, id).await?;
        Ok(message_range(
            self.ports().messages.clone(),
            conversation.id,
            None,
            None,
        ))
    }
}

/// The messages of one conversation with `from <= timestamp < to` (unbounded where
/// `None`), oldest first, paged by seq so that equal timestamps are never skipped.
pub(crate) fn message_range(
    messages: Arc<dyn MessageRepository>,
    conversation: ConversationId,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> MessageStream {
    let page =
        PageSize::parse(u64::from(EXPORT_PAGE), EXPORT_PAGE).unwrap_or(PageSize::HISTORY_LARGEST);
    // Bounds are exclusive: starting just before `from` includes it; without `from`,
    // seq 0 is before the first message.
    let first = match from {
        Some(from) => Timestamp::from_unix_millis(from.unix_millis() - 1)
            .map_or(HistoryBound::Seq(Seq::ZERO), HistoryBound::Time),
        None => HistoryBound::Seq(Seq::ZERO),
    };
    pages_after(
        messages,
        conversation,
        first,
        to.map(HistoryBound::Time),
        page,
    )
    .map_err(DomainError::from)
    .map_ok(|page| stream::iter(page.into_iter().map(Ok::<_, DomainError>)))
    .try_flatten()
    .boxed()
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::conversation::Metadata;
    use crate::message::{Attachments, MessageContent, MessageId, NewMessage, Sender};
    use crate::reply::ReplySettings;
    use crate::testing::{TestPorts, start_conversation, user};

    fn service() -> (TestPorts, ConversationService) {
        let fakes = TestPorts::with_engine(crate::testing::ScriptedEngine::echo());
        fakes.seed_bot("echo");
        let service = fakes.service(ReplySettings::default());
        (fakes, service)
    }

    async fn started(service: &ConversationService, caller: &Caller) -> ConversationId {
        start_conversation(service, caller, "echo").await.id
    }

    #[tokio::test]
    async fn a_batch_reports_foreign_and_unknown_ids_as_not_found_in_request_order() {
        let (_fakes, service) = service();
        let alice = user("alice");
        let bob = user("bob");
        let own = started(&service, &alice).await;
        let foreign = started(&service, &bob).await;
        let unknown = ConversationId::from_uuid(uuid::Uuid::now_v7());
        let results = service
            .batch(&alice, BatchAction::Archive, &[foreign, own, unknown])
            .await
            .unwrap();
        let outcomes: Vec<_> = results.iter().map(|r| (r.id, r.outcome)).collect();
        assert_eq!(
            outcomes,
            vec![
                (foreign, BatchOutcome::NotFound),
                (own, BatchOutcome::Ok),
                (unknown, BatchOutcome::NotFound),
            ]
        );
        let bobs = service.conversation(&bob, foreign).await.unwrap();
        assert_eq!(bobs.status, ConversationStatus::Active);
        let alices = service.conversation(&alice, own).await.unwrap();
        assert_eq!(alices.status, ConversationStatus::Archived);
    }

    #[tokio::test]
    async fn an_empty_or_oversized_batch_is_refused() {
        let (_fakes, service) = service();
        let alice = user("alice");
        assert!(
            service
                .batch(&alice, BatchAction::Delete, &[])
                .await
                .is_err()
        );
        let ids: Vec<_> = (0..=BATCH_MAX_IDS)
            .map(|_| ConversationId::from_uuid(uuid::Uuid::now_v7()))
            .collect();
        assert!(
            service
                .batch(&alice, BatchAction::Delete, &ids)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn an_export_pages_through_every_message_in_order() {
        let (fakes, service) = service();
        let alice = user("alice");
        let id = started(&service, &alice).await;
        let total = u64::from(EXPORT_PAGE) * 2 + 7;
        for n in 0..total {
            let message = NewMessage {
                id: MessageId::from_uuid(uuid::Uuid::now_v7()),
                conversation_id: id,
                sender: Sender::User,
                sender_id: "alice".to_owned(),
                content: MessageContent::trusted(format!("m{n}")),
                attachments: Attachments::none(),
                suggestions: Vec::new(),
                client_message_id: None,
                answers: None,
                timestamp: crate::testing::test_start(),
                metadata: Metadata::default(),
            };
            fakes.store.append(&message).await.unwrap();
        }
        let seqs: Vec<u64> = service
            .export(&alice, id)
            .await
            .unwrap()
            .map(|m| m.unwrap().seq.get())
            .collect()
            .await;
        assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
        assert!(matches!(
            service.export(&user("bob"), id).await.map(drop),
            Err(DomainError::ConversationNotFound)
        ));
    }
}
