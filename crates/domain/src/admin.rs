//! [`AdminService`]: the administrator's use cases across every user's conversations:
//! actions on a selection (with a dry run), the export of a bot's conversations,
//! analytics, and the retention policy that archives and deletes idle conversations.
//!
//! It sits beside [`ConversationService`] rather than inside it so that the service's
//! ports stay what every embedder must provide; this one adds
//! [`ConversationMaintenance`]. Every change still goes through the service, one
//! conversation at a time, so each is atomic and publishes its `status` event.
//!
//! [`BotAdmin`], the bot registry's use cases, is administration too and lives here.
//!
//! # Layout
//! - `conversations`: [`AdminService`], actions on a selection, exports, analytics.
//! - `retention`: the [`RetentionPolicy`] and its sweeps.
//! - `bots`: [`BotAdmin`]: creating, changing, deleting and declaring bots.
//!
//! [`ConversationService`]: crate::service::ConversationService
//! [`ConversationMaintenance`]: crate::ports::ConversationMaintenance

mod bots;
mod conversations;
mod retention;

pub use self::bots::{BotAdmin, BotChanges, BotDraft, DESCRIPTION_MAX_CHARS, Declared};
pub use self::conversations::{AdminService, SelectionOutcome};
pub use self::retention::{RetentionPolicy, RetentionReport};
use crate::error::DomainError;
use crate::user::Caller;

/// Refuses every caller but an administrator.
fn require_admin(caller: &Caller) -> Result<(), DomainError> {
    if caller.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::analytics::{BucketSummary, Granularity, SummaryQuery};
    use crate::bot::BotId;
    use crate::conversation::{Conversation, Metadata};
    use crate::conversation::{ConversationSelection, ConversationStatus};
    use crate::event::EventKind;
    use crate::message::{
        Attachments, Message, MessageContent, MessageId, NewMessage, ReplyTo, Sender,
    };
    use crate::ports::{ConversationMaintenance, MessageRepository};
    use crate::reply::ReplySettings;
    use crate::service::{BatchAction, ConversationService};
    use crate::testing::analytics::{
        expected_handoff_summary, handoff_summary_query, seed_handoffs,
    };
    use crate::testing::{
        InMemoryStore, ScriptedEngine, TestPorts, start_conversation, test_start, user,
    };
    use crate::timestamp::Timestamp;
    use crate::user::{Role, UserId};

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
        start_conversation(service, caller, "echo").await
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
            answers: reply_to.map(|m| ReplyTo {
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
                messages_agent: 0,
                handoffs: 0,
                handoffs_claimed: 0,
                conversations_handed_off: 0,
                handoff_wait_p50_ms: None,
                handoff_wait_p90_ms: None,
                feedback_up: 0,
                feedback_down: 0,
            }]
        );
    }

    #[tokio::test]
    async fn the_in_memory_summary_counts_handoffs_and_agent_messages() {
        let store = InMemoryStore::new();
        seed_handoffs(&store).await;

        let summary = store.summary(&handoff_summary_query()).await.unwrap();

        assert_eq!(summary, expected_handoff_summary());
        let shares: Vec<Option<f64>> = summary.iter().map(BucketSummary::handoff_share).collect();
        assert_eq!(shares, vec![Some(0.75), Some(0.0), None]);
    }
}
