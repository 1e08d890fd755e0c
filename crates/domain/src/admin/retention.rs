//! The retention policy: archiving and deleting conversations idle for too long,
//! once or every period.

use std::future::Future;
use std::time::Duration;

use super::AdminService;
use crate::conversation::{ConversationSelection, ConversationStatus};
use crate::error::DomainError;
use crate::service::BatchAction;
use crate::timestamp::Timestamp;
use crate::user::{Caller, Role, UserId};

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

impl AdminService {
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

/// `now - idle`, or `None` when that is before any representable time.
fn before(now: Timestamp, idle: Duration) -> Option<Timestamp> {
    let idle = i64::try_from(idle.as_millis()).ok()?;
    Timestamp::from_unix_millis(now.unix_millis().checked_sub(idle)?).ok()
}
