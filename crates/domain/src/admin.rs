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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::Granularity;
    use crate::conversation::{Conversation, Metadata};
    use crate::event::EventKind;
    use crate::message::{
        Attachments, Message, MessageContent, MessageId, NewMessage, ReplyTo, Sender,
    };
    use crate::ports::MessageRepository;
    use crate::reply::ReplySettings;
    use crate::service::StartConversation;
    use crate::testing::{ScriptedEngine, TestPorts, test_start, user};

    const DAY_MS: i64 = 86_400_000;

    fn admin_service() -> (TestPorts, Arc<ConversationService>, AdminService) {
        let fakes = TestPorts::with_engine(ScriptedEngine::echo());
        fakes.seed_bot("echo");
        let service = Arc::new(fakes.service(ReplySettings::default()));
        let admin = AdminService::new(service.clone(), Arc::new(fakes.store.clone()));
        (fakes, service, admin)
    }

    fn root() -> Caller {
        Caller {
            user_id: UserId::parse("root").unwrap(),
            role: Role::Admin,
        }
    }

    fn day(n: i64) -> Timestamp {
        Timestamp::from_unix_millis(test_start().unix_millis() + n * DAY_MS).unwrap()
    }

    async fn start(service: &ConversationService, caller: &Caller) -> Conversation {
        let command = StartConversation {
            bot_id: BotId::parse("echo").unwrap(),
            initial_message: None,
            title: None,
            metadata: Metadata::default(),
        };
        service.start(caller, command).await.unwrap().conversation
    }

    #[tokio::test]
    async fn retention_archives_idle_and_deletes_ancient_conversations_and_tells_subscribers() {
        let (fakes, service, admin) = admin_service();
        let alice = user("alice");
        let ancient = start(&service, &alice).await;
        fakes.clock.set(day(90));
        let idle = start(&service, &alice).await;
        fakes.clock.set(day(99));
        let recent = start(&service, &alice).await;
        fakes.clock.set(day(100));
        let policy = RetentionPolicy {
            archive_after: Some(Duration::from_secs(7 * 24 * 3600)),
            delete_after: Some(Duration::from_secs(30 * 24 * 3600)),
        };

        let report = admin.apply_retention(&policy).await.unwrap();

        assert_eq!(
            report,
            RetentionReport {
                archived: 2,
                deleted: 1
            }
        );
        let kinds = |id| {
            fakes
                .events
                .events_of(id)
                .into_iter()
                .map(|event| event.kind)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(idle.id),
            vec![EventKind::Status(ConversationStatus::Archived)]
        );
        assert_eq!(
            kinds(ancient.id),
            vec![
                EventKind::Status(ConversationStatus::Archived),
                EventKind::Deleted
            ]
        );
        assert!(kinds(recent.id).is_empty());
        let left = service.conversation(&alice, recent.id).await.unwrap();
        assert_eq!(left.status, ConversationStatus::Active);
    }

    #[tokio::test]
    async fn a_disabled_policy_returns_at_once() {
        let (_fakes, _service, admin) = admin_service();
        admin
            .run_retention(
                RetentionPolicy::default(),
                Duration::from_millis(1),
                std::future::pending(),
            )
            .await;
    }

    #[tokio::test]
    async fn only_administrators_act_on_selections_and_a_dry_run_changes_nothing() {
        let (_fakes, service, admin) = admin_service();
        let alice = user("alice");
        let first = start(&service, &alice).await;
        start(&service, &user("bob")).await;
        let selection = ConversationSelection {
            bot_id: Some(BotId::parse("echo").unwrap()),
            ..ConversationSelection::default()
        };
        assert!(matches!(
            admin
                .act_on_selection(&alice, BatchAction::Delete, &selection, true)
                .await,
            Err(DomainError::Forbidden)
        ));
        let dry = admin
            .act_on_selection(&root(), BatchAction::Archive, &selection, true)
            .await
            .unwrap();
        assert_eq!(
            dry,
            SelectionOutcome {
                matched: 2,
                changed: 0
            }
        );
        let first = service.conversation(&alice, first.id).await.unwrap();
        assert_eq!(first.status, ConversationStatus::Active);
        let done = admin
            .act_on_selection(&root(), BatchAction::Archive, &selection, false)
            .await
            .unwrap();
        assert_eq!(done.changed, 2);
    }

    async fn append(
        fakes: &TestPorts,
        conversation: &Conversation,
        sender: Sender,
        at_ms: i64,
        reply_to: Option<&Message>,
    ) -> Message {
        let message = NewMessage {
            id: MessageId::from_uuid(fakes.ports.ids.new_id()),
            conversation_id: conversation.id,
            sender,
            sender_id: "x".to_owned(),
            content: MessageContent::trusted("x"),
            attachments: Attachments::none(),
            suggestions: Vec::new(),
            client_message_id: None,
            reply_to: reply_to.map(|m| ReplyTo {
                message_id: m.id,
                seq: m.seq,
            }),
            timestamp: Timestamp::from_unix_millis(test_start().unix_millis() + at_ms).unwrap(),
            metadata: Metadata::default(),
        };
        fakes.store.append(&message).await.unwrap().into_message()
    }

    #[tokio::test]
    async fn the_in_memory_summary_counts_like_the_sql_one() {
        let (fakes, service, admin) = admin_service();
        let conversation = start(&service, &user("alice")).await;
        let asked = append(&fakes, &conversation, Sender::User, 1_000, None).await;
        append(&fakes, &conversation, Sender::Bot, 1_100, Some(&asked)).await;
        let asked = append(&fakes, &conversation, Sender::User, 2_000, None).await;
        append(&fakes, &conversation, Sender::Bot, 2_300, Some(&asked)).await;
        let asked = append(&fakes, &conversation, Sender::User, 3_000, None).await;
        append(&fakes, &conversation, Sender::System, 9_000, Some(&asked)).await;
        let query = SummaryQuery::parse(None, day(0), day(1), Granularity::Day).unwrap();

        assert!(matches!(
            admin.summary(&user("alice"), &query).await,
            Err(DomainError::Forbidden)
        ));
        let summary = admin.summary(&root(), &query).await.unwrap();

        assert_eq!(
            summary,
            vec![BucketSummary {
                bot_id: BotId::parse("echo").unwrap(),
                bucket_start_ms: test_start().unix_millis(),
                conversations_started: 1,
                conversations_active: 1,
                conversations_archived: 0,
                messages_user: 3,
                messages_bot: 2,
                messages_system: 1,
                distinct_users: 1,
                replies: 2,
                latency_p50_ms: Some(100),
                latency_p95_ms: Some(300),
                failed_replies: 1,
            }]
        );
    }
}
