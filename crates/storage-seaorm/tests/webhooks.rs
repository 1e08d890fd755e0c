//! The webhook outbox on SQLite and PostgreSQL: every write path records its event in
//! its own transaction, in order, for each subscription that wants it and only then;
//! claims hand out one delivery per conversation at a time and never a claimed one;
//! outcomes, failure and redelivery. Each test runs on SQLite and, when
//! `CONFAB_TEST_POSTGRES_URL` names a server, on PostgreSQL.

// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use confab_domain::bot::BotId;
use confab_domain::conversation::{
    Conversation, ConversationChange, ConversationId, ConversationStatus,
};
use confab_domain::handoff::{HandoffChange, HandoffState};
use confab_domain::lease::LeaseHolder;
use confab_domain::message::{Feedback, FeedbackComment, Message, NewMessage, Rating, Sender};
use confab_domain::ports::{
    ConversationRepository, MessageRepository, WebhookOutbox, WebhookRepository,
};
use confab_domain::session::{Session, SessionId};
use confab_domain::testing::{seed_bot_in, test_start};
use confab_domain::timestamp::Timestamp;
use confab_domain::user::UserId;
use confab_domain::webhook::{
    DeliveryOutcome, DeliveryQuery, DeliveryState, EventData, EventSet, EventType, SecretEnv,
    Webhook, WebhookId, WebhookUrl,
};
use confab_storage_seaorm::{DatabaseConnection, SeaOrmStore};

/// Generates one test per backend for each named `async fn(DatabaseConnection)`.
macro_rules! on_every_backend {
    ($($test:ident),+ $(,)?) => {
        mod sqlite {
            use confab_storage_seaorm::testing::sqlite_temp;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let db = sqlite_temp().await.expect("creating a SQLite test database");
                    super::$test(db.connection().clone()).await;
                }
            )+
        }

        #[cfg(confab_postgres_tests)]
        mod postgres {
            use confab_storage_seaorm::testing::{postgres_temp, postgres_url};
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    let admin_url = postgres_url().expect("CONFAB_TEST_POSTGRES_URL is set");
                    let db = postgres_temp(&admin_url)
                        .await
                        .expect("creating a PostgreSQL test database");
                    super::$test(db.connection().clone()).await;
                    db.drop_database().await.expect("dropping the test database");
                }
            )+
        }
    };
}

on_every_backend!(
    without_a_subscription_nothing_is_recorded,
    messages_are_recorded_while_any_webhook_is_registered,
    every_write_path_records_its_event_in_order_with_a_snapshot,
    a_subscription_gets_only_the_events_it_asked_for,
    a_conversation_s_next_event_waits_for_the_previous_one,
    a_claimed_delivery_is_not_claimed_again_until_its_claim_runs_out,
    a_failed_delivery_can_be_redelivered_with_the_same_id,
    feedback_given_or_changed_is_recorded_but_not_its_removal,
);

fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis).unwrap()
}

/// Far enough in the future that every recorded delivery is due.
fn later() -> Timestamp {
    at(4_102_444_800_000)
}

async fn subscribe(store: &SeaOrmStore, events: &[&str]) -> Webhook {
    let webhook = Webhook {
        id: WebhookId::from_uuid(uuid::Uuid::now_v7()),
        url: WebhookUrl::parse("http://127.0.0.1:9/hook").unwrap(),
        events: EventSet::parse(events).unwrap(),
        secret_env: SecretEnv::parse("HOOK_SECRET").unwrap(),
        description: "crm".into(),
        created_at: test_start(),
        updated_at: test_start(),
    };
    store.create_webhook(&webhook).await.unwrap();
    webhook
}

async fn start(store: &SeaOrmStore) -> Conversation {
    seed_bot_in(store, "alpha").await;
    let conversation = Conversation::begun(
        ConversationId::from_uuid(uuid::Uuid::now_v7()),
        SessionId::from_uuid(uuid::Uuid::now_v7()),
        UserId::parse("ana").unwrap(),
        BotId::parse("alpha").unwrap(),
        test_start(),
    );
    ConversationRepository::create(store, &conversation, &Session::new(&conversation))
        .await
        .unwrap();
    conversation
}

fn message(conversation: &Conversation, content: &str) -> NewMessage {
    confab_domain::testing::user_message(conversation, content, test_start())
}

async fn send(store: &SeaOrmStore, conversation: &Conversation, content: &str) -> Message {
    store
        .append(&message(conversation, content))
        .await
        .unwrap()
        .into_message()
}

async fn all_deliveries(store: &SeaOrmStore, webhook: &Webhook) -> Vec<(EventType, DeliveryState)> {
    let mut deliveries = store
        .deliveries(
            webhook.id,
            &DeliveryQuery {
                state: None,
                before: None,
                limit: 100,
            },
        )
        .await
        .unwrap();
    deliveries.reverse();
    deliveries.into_iter().map(|d| (d.event, d.state)).collect()
}

/// Claims and delivers everything due, one round at a time, and returns the events'
/// data in the order they were handed out.
async fn drain(store: &SeaOrmStore) -> Vec<(EventType, EventData)> {
    let holder = LeaseHolder::from_uuid(uuid::Uuid::now_v7());
    let mut sent = Vec::new();
    loop {
        let due = store
            .claim_due(holder, later(), later(), 100)
            .await
            .unwrap();
        if due.is_empty() {
            return sent;
        }
        for delivery in due {
            store
                .finish(
                    delivery.delivery.id,
                    holder,
                    &DeliveryOutcome::Delivered { at: later() },
                )
                .await
                .unwrap();
            sent.push((delivery.delivery.event, delivery.data));
        }
    }
}

async fn without_a_subscription_nothing_is_recorded(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    let conversation = start(&store).await;
    send(&store, &conversation, "hello").await;
    let webhook = subscribe(&store, &["message.created"]).await;
    assert!(all_deliveries(&store, &webhook).await.is_empty());
}

/// Messages are recorded while some webhook is registered, whichever it is, and not
/// while none is (PostgreSQL switches its message trigger off then).
async fn messages_are_recorded_while_any_webhook_is_registered(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    let conversation = start(&store).await;
    let first = subscribe(&store, &["message.created"]).await;
    send(&store, &conversation, "one").await;
    assert_eq!(all_deliveries(&store, &first).await.len(), 1);
    store.delete_webhook(first.id).await.unwrap();
    send(&store, &conversation, "two, to nobody").await;
    let second = subscribe(&store, &["message.created"]).await;
    let third = subscribe(&store, &["conversation.archived"]).await;
    send(&store, &conversation, "three").await;
    store.delete_webhook(second.id).await.unwrap();
    let fourth = subscribe(&store, &["message.created"]).await;
    store.delete_webhook(third.id).await.unwrap();
    send(&store, &conversation, "four").await;
    let recorded: Vec<String> = drain(&store)
        .await
        .into_iter()
        .map(|(event, data)| match data {
            EventData::Message(message) => message.content.as_str().to_owned(),
            other => panic!("{event:?} recorded with {other:?}"),
        })
        .collect();
    assert_eq!(recorded, ["four"]);
    assert_eq!(all_deliveries(&store, &fourth).await.len(), 1);
}

async fn every_write_path_records_its_event_in_order_with_a_snapshot(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    let names: Vec<&str> = EventType::ALL.iter().map(|(_, name)| *name).collect();
    let webhook = subscribe(&store, &names).await;
    let conversation = start(&store).await;
    let hello = send(&store, &conversation, "hello").await;
    let archived = ConversationChange {
        status: Some(ConversationStatus::Archived),
        ..ConversationChange::default()
    };
    store.update(conversation.id, &archived).await.unwrap();
    let active = ConversationChange {
        status: Some(ConversationStatus::Active),
        ..ConversationChange::default()
    };
    store.update(conversation.id, &active).await.unwrap();
    let mut notice = message(&conversation, "Waiting for a person to join");
    notice.sender = Sender::System;
    notice.sender_id = "confab".into();
    store
        .change_handoff(
            conversation.id,
            &HandoffChange {
                from: HandoffState::Bot,
                to: HandoffState::Waiting,
            },
            &notice,
        )
        .await
        .unwrap();
    store.delete(conversation.id).await.unwrap();

    let sent = drain(&store).await;
    let events: Vec<EventType> = sent.iter().map(|(event, _)| *event).collect();
    assert_eq!(
        events,
        [
            EventType::ConversationStarted,
            EventType::MessageCreated,
            EventType::ConversationArchived,
            EventType::ConversationUnarchived,
            EventType::HandoffChanged,
            EventType::MessageCreated,
            EventType::ConversationDeleted,
        ]
    );
    let EventData::Message(stored) = &sent[1].1 else {
        panic!("message.created carries the message");
    };
    assert_eq!(**stored, hello);
    let EventData::Conversation(archived) = &sent[2].1 else {
        panic!("conversation.archived carries the conversation");
    };
    assert_eq!(archived.status, ConversationStatus::Archived);
    let EventData::Conversation(handed) = &sent[4].1 else {
        panic!("handoff.changed carries the conversation");
    };
    assert_eq!(handed.handoff, HandoffState::Waiting);
    let EventData::Conversation(deleted) = &sent[6].1 else {
        panic!("conversation.deleted carries the conversation as it was");
    };
    assert_eq!(deleted.id, conversation.id);
    assert_eq!(deleted.message_count, 2);
    assert!(
        all_deliveries(&store, &webhook)
            .await
            .iter()
            .all(|(_, state)| *state == DeliveryState::Delivered)
    );
}

async fn a_subscription_gets_only_the_events_it_asked_for(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    let messages = subscribe(&store, &["message.created"]).await;
    let lifecycle = subscribe(&store, &["conversation.started", "conversation.deleted"]).await;
    let conversation = start(&store).await;
    send(&store, &conversation, "one").await;
    send(&store, &conversation, "two").await;
    store.delete(conversation.id).await.unwrap();
    assert_eq!(
        all_deliveries(&store, &messages).await,
        [
            (EventType::MessageCreated, DeliveryState::Pending),
            (EventType::MessageCreated, DeliveryState::Pending),
        ]
    );
    assert_eq!(
        all_deliveries(&store, &lifecycle).await,
        [
            (EventType::ConversationStarted, DeliveryState::Pending),
            (EventType::ConversationDeleted, DeliveryState::Pending),
        ]
    );
}

async fn a_conversation_s_next_event_waits_for_the_previous_one(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    subscribe(&store, &["message.created"]).await;
    let first = start(&store).await;
    let second = start(&store).await;
    for n in 0..3 {
        send(&store, &first, &format!("first {n}")).await;
        send(&store, &second, &format!("second {n}")).await;
    }
    let holder = LeaseHolder::from_uuid(uuid::Uuid::now_v7());
    // Claims that outlast the test, so that the second conversation's stays held.
    let until = at(later().unix_millis() + 60_000);
    let due = store.claim_due(holder, later(), until, 100).await.unwrap();
    assert_eq!(due.len(), 2, "one per conversation");
    // A retry keeps its place: the conversation's later events still wait.
    let failed = &due[0];
    store
        .finish(
            failed.delivery.id,
            holder,
            &DeliveryOutcome::Retry {
                attempts: 1,
                error: "503".into(),
                at: later(),
            },
        )
        .await
        .unwrap();
    let again = store.claim_due(holder, later(), until, 100).await.unwrap();
    assert_eq!(
        again.len(),
        1,
        "only the failed one is due in its conversation"
    );
    assert_eq!(again[0].delivery.id, failed.delivery.id);
    assert_eq!(again[0].delivery.attempts, 1);
    // A final failure lets the conversation's next event go.
    store
        .finish(
            failed.delivery.id,
            holder,
            &DeliveryOutcome::Failed {
                attempts: 2,
                error: "503".into(),
            },
        )
        .await
        .unwrap();
    let next = store.claim_due(holder, later(), until, 100).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(
        next[0].delivery.conversation_id,
        failed.delivery.conversation_id
    );
    let EventData::Message(message) = &next[0].data else {
        panic!("a message event");
    };
    assert_eq!(message.seq.get(), 2);
}

async fn a_claimed_delivery_is_not_claimed_again_until_its_claim_runs_out(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    subscribe(&store, &["conversation.started"]).await;
    start(&store).await;
    let now = at(test_start().unix_millis() + 1_000);
    let until = at(now.unix_millis() + 60_000);
    let one = LeaseHolder::from_uuid(uuid::Uuid::now_v7());
    let other = LeaseHolder::from_uuid(uuid::Uuid::now_v7());
    let claimed = store.claim_due(one, now, until, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        store
            .claim_due(other, now, until, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let taken = store.claim_due(other, until, later(), 10).await.unwrap();
    assert_eq!(taken.len(), 1, "an expired claim is taken over");
    let outcome = DeliveryOutcome::Delivered { at: until };
    assert!(
        store
            .finish(claimed[0].delivery.id, one, &outcome)
            .await
            .is_err(),
        "the first holder lost it"
    );
    store
        .finish(taken[0].delivery.id, other, &outcome)
        .await
        .unwrap();
}

async fn a_failed_delivery_can_be_redelivered_with_the_same_id(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    let webhook = subscribe(&store, &["conversation.started"]).await;
    start(&store).await;
    let holder = LeaseHolder::from_uuid(uuid::Uuid::now_v7());
    let due = store.claim_due(holder, later(), later(), 10).await.unwrap();
    let id = due[0].delivery.id;
    store
        .finish(
            id,
            holder,
            &DeliveryOutcome::Failed {
                attempts: 8,
                error: "the receiver answered 500".into(),
            },
        )
        .await
        .unwrap();
    let failed = store
        .deliveries(
            webhook.id,
            &DeliveryQuery {
                state: Some(DeliveryState::Failed),
                before: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 8);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("the receiver answered 500")
    );
    let redelivered = store.redeliver(webhook.id, id, test_start()).await.unwrap();
    assert_eq!(redelivered.state, DeliveryState::Pending);
    assert_eq!(redelivered.attempts, 0);
    let again = store.claim_due(holder, later(), later(), 10).await.unwrap();
    assert_eq!(again[0].delivery.id, id);
    assert!(matches!(
        store
            .redeliver(WebhookId::from_uuid(uuid::Uuid::now_v7()), id, test_start())
            .await,
        Err(confab_domain::error::RepoError::NotFound)
    ));
}

async fn feedback_given_or_changed_is_recorded_but_not_its_removal(db: DatabaseConnection) {
    let store = SeaOrmStore::new(db);
    subscribe(&store, &["message.created", "feedback.created"]).await;
    let conversation = start(&store).await;
    let reply = send(&store, &conversation, "an answer").await;
    let given = Feedback {
        rating: Rating::Down,
        comment: FeedbackComment::parse("wrong city").unwrap(),
        at: at(test_start().unix_millis() + 5_000),
    };
    let changed = Feedback {
        rating: Rating::Up,
        comment: None,
        at: at(test_start().unix_millis() + 6_000),
    };
    for feedback in [
        Some(given.clone()),
        Some(given.clone()),
        Some(changed.clone()),
        None,
    ] {
        store
            .set_feedback(conversation.id, reply.id, feedback)
            .await
            .unwrap();
    }
    let sent = drain(&store).await;
    let feedback: Vec<Option<Feedback>> = sent
        .iter()
        .map(|(event, data)| {
            let EventData::Message(message) = data else {
                panic!("{event:?} carries the message");
            };
            message.feedback.clone()
        })
        .collect();
    // The same feedback twice changes nothing; its removal is no feedback given.
    assert_eq!(
        sent.iter().map(|(event, _)| *event).collect::<Vec<_>>(),
        [
            EventType::MessageCreated,
            EventType::FeedbackCreated,
            EventType::FeedbackCreated,
        ]
    );
    assert_eq!(feedback, [None, Some(given), Some(changed)]);
}
