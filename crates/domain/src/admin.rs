//! [`AdminService`]: the administrator's use cases across every user's conversations:
//! actions on a selection (with a dry run), the export of a bot's conversations,
//! analytics, and the retention policy that archives and deletes idle conversations.
//!
//! It sits beside [`ConversationService`] rather than inside it so that the service's
//! ports stay what every embedder must provide; this one adds
//! [`ConversationMaintenance`]. Every change still goes through the service, one
//! conversation at a time, so each is atomic and publishes its `status` event.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};

use crate::analytics::{BucketSummary, SummaryQuery};
use crate::batch::{BatchAction, ConversationSelection, MessageStream, message_range};
use crate::bot::BotId;
use crate::conversation::{ConversationId, ConversationStatus};
use crate::error::DomainError;
use crate::ports::ConversationMaintenance;
use crate::service::ConversationService;
use crate::timestamp::Timestamp;
use crate::user::{Caller, Role, UserId};

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

/// When idle conversations are archived and deleted; `None` leaves them alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Archive active conversations idle for longer than this.
    pub archive_after: Option<Duration>,
    /// Delete conversations (of any status) idle for longer than this.
    pub delete_after: Option<Duration>,
}

impl RetentionPolicy {
    /// Whether the policy does anything.
    pub fn is_enabled(&self) -> bool {
        self.archive_after.is_some() || self.delete_after.is_some()
    }
}

/// What one retention sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Conversations archived.
    pub archived: u64,
    /// Conversations deleted.
    pub deleted: u64,
}

/// The administrator's use cases; see the module documentation.
pub struct AdminService {
    service: Arc<ConversationService>,
    maintenance: Arc<dyn ConversationMaintenance>,
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

    /// Applies `policy` once: archives active conversations idle longer than
    /// `archive_after`, then deletes those idle longer than `delete_after`.
    ///
    /// # Errors
    /// Storage failures; what was done before one stays done.
    pub async fn apply_retention(
        &self,
        policy: &RetentionPolicy,
    ) -> Result<RetentionReport, DomainError> {
        let caller = retention_caller()?;
        let now = self.service.ports().clock.now();
        let mut report = RetentionReport::default();
        if let Some(idle) = policy.archive_after.and_then(|idle| before(now, idle)) {
            let selection = ConversationSelection {
                status: Some(ConversationStatus::Active),
                inactive_before: Some(idle),
                ..ConversationSelection::default()
            };
            report.archived = self
                .act_on_selection(&caller, BatchAction::Archive, &selection, false)
                .await?
                .changed;
        }
        if let Some(idle) = policy.delete_after.and_then(|idle| before(now, idle)) {
            let selection = ConversationSelection {
                inactive_before: Some(idle),
                ..ConversationSelection::default()
            };
            report.deleted = self
                .act_on_selection(&caller, BatchAction::Delete, &selection, false)
                .await?
                .changed;
        }
        Ok(report)
    }

    /// Applies `policy` every `every` until `stop` completes; a failed sweep is logged
    /// and retried at the next tick. Returns at once when the policy does nothing.
    pub async fn run_retention(
        &self,
        policy: RetentionPolicy,
        every: Duration,
        stop: impl Future<Output = ()>,
    ) {
        if !policy.is_enabled() {
            return;
        }
        let sweeps = async {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                match self.apply_retention(&policy).await {
                    Ok(report) if report != RetentionReport::default() => tracing::info!(
                        archived = report.archived,
                        deleted = report.deleted,
                        "retention applied"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "retention sweep failed"),
                }
            }
        };
        tokio::select! {
            () = sweeps => {}
            () = stop => {}
        }
    }
}

/// The identity retention acts as: an administrator, named in logs.
fn retention_caller() -> Result<Caller, DomainError> {
    Ok(Caller {
        user_id: UserId::parse("confab-retention")?,
        role: Role::Admin,
    })
}

fn require_admin(caller: &Caller) -> Result<(), DomainError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

/// `now - idle`, or `None` when that is before any representable time.
fn before(now: Timestamp, idle: Duration) -> Option<Timestamp> {
    let idle = i64::try_from(idle.as_millis()).ok()?;
    Timestamp::from_unix_millis(now.unix_millis().checked_sub(idle)?).ok()
}
