//! [`AdminService`] and its actions on conversations chosen by what they are: a batch
//! action on a selection (with a dry run), the export of a bot's conversations, and
//! analytics.

use std::sync::Arc;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::require_admin;
use crate::analytics::{BucketSummary, SummaryQuery};
use crate::bot::BotId;
use crate::conversation::{ConversationId, ConversationSelection};
use crate::error::DomainError;
use crate::ports::ConversationMaintenance;
use crate::service::{BatchAction, ConversationService, MessageStream, message_range};
use crate::timestamp::Timestamp;
use crate::user::Caller;

/// Conversations read per page while walking a selection.
const SELECTION_PAGE: u32 = 200;

/// What an action on a selection did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectionOutcome {
    /// Conversations that matched (for a dry run, that would be acted on).
    pub matched: u64,
    /// Conversations changed; below `matched` when some changed or vanished meanwhile.
    pub changed: u64,
}

/// The administrator's use cases; see the module documentation.
pub struct AdminService {
    pub(super) service: Arc<ConversationService>,
    pub(super) maintenance: Arc<dyn ConversationMaintenance>,
}

impl AdminService {
    /// Administration over `service`, selecting conversations through `maintenance`.
    pub fn new(
        service: Arc<ConversationService>,
        maintenance: Arc<dyn ConversationMaintenance>,
    ) -> Self {
        Self {
            service,
            maintenance,
        }
    }

    /// Applies `action` to every conversation of `selection`, or with `dry_run` only
    /// counts them.
    ///
    /// # Errors
    /// `Forbidden` unless the caller is an administrator; storage failures.
    pub async fn act_on_selection(
        &self,
        caller: &Caller,
        action: BatchAction,
        selection: &ConversationSelection,
        dry_run: bool,
    ) -> Result<SelectionOutcome, DomainError> {
        require_admin(caller)?;
        if dry_run {
            let matched = self.maintenance.count(selection).await?;
            return Ok(SelectionOutcome {
                matched,
                changed: 0,
            });
        }
        let mut outcome = SelectionOutcome {
            matched: 0,
            changed: 0,
        };
        let mut after = None;
        // Paging by ascending id ends: every page starts past the last id seen, and
        // conversations created meanwhile are only visited if their id is larger.
        loop {
            let ids = self
                .maintenance
                .select(selection, after, SELECTION_PAGE)
                .await?;
            for &id in &ids {
                outcome.matched += 1;
                match self.service.apply(caller, action, id).await {
                    Ok(()) => outcome.changed += 1,
                    Err(DomainError::ConversationNotFound) => {}
                    Err(error) => return Err(error),
                }
            }
            match ids.last() {
                Some(&last) if ids.len() == SELECTION_PAGE as usize => after = Some(last),
                _ => return Ok(outcome),
            }
        }
    }

    /// Every message with `from <= timestamp < to` of every conversation with `bot`,
    /// conversation by conversation (ascending id) and oldest first within each, read
    /// from storage page by page as the stream is consumed.
    ///
    /// # Errors
    /// `Forbidden` unless the caller is an administrator; storage failures while
    /// streaming end the stream with an error item.
    pub fn export_bot(
        &self,
        caller: &Caller,
        bot: BotId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> Result<MessageStream, DomainError> {
        require_admin(caller)?;
        let selection = ConversationSelection {
            bot_id: Some(bot),
            active_since: from,
            created_before: to,
            ..ConversationSelection::default()
        };
        let maintenance = self.maintenance.clone();
        let messages = self.service.ports().messages.clone();
        let ids = stream::try_unfold(Some(None), move |after: Option<Option<ConversationId>>| {
            let maintenance = maintenance.clone();
            let selection = selection.clone();
            async move {
                let Some(after) = after else {
                    return Ok(None);
                };
                let ids = maintenance
                    .select(&selection, after, SELECTION_PAGE)
                    .await?;
                let next = match ids.last() {
                    Some(&last) if ids.len() == SELECTION_PAGE as usize => Some(Some(last)),
                    _ => None,
                };
                Ok::<_, DomainError>(Some((ids, next)))
            }
        })
        .map_ok(|ids| stream::iter(ids.into_iter().map(Ok::<_, DomainError>)))
        .try_flatten();
        Ok(ids
            .map_ok(move |id| message_range(messages.clone(), id, from, to))
            .try_flatten()
            .boxed())
    }

    /// The analytics summary of `query`.
    ///
    /// # Errors
    /// `Forbidden` unless the caller is an administrator; storage failures.
    pub async fn summary(
        &self,
        caller: &Caller,
        query: &SummaryQuery,
    ) -> Result<Vec<BucketSummary>, DomainError> {
        require_admin(caller)?;
        Ok(self.maintenance.summary(query).await?)
    }
}
