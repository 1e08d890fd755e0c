//! One data set with handoffs and agent messages, and the summary it must give, so
//! that the in-memory store and every SQL backend are held to the same numbers
//! rather than each to a hand count of its own.
//!
//! It is seeded through the repository ports alone, with chosen times from
//! [`test_start`] (midnight UTC), so it runs against any adapter.

use crate::analytics::{BucketSummary, Granularity, SummaryQuery};
use crate::bot::BotId;
use crate::conversation::{Conversation, ConversationId};
use crate::handoff::{HandoffChange, HandoffState};
use crate::message::{Feedback, Message, NewMessage, Rating, Sender};
use crate::ports::{ConversationRepository, MessageRepository};
use crate::reply::SYSTEM_SENDER_ID;
use crate::session::{Session, SessionId};
use crate::timestamp::Timestamp;
use crate::user::UserId;

use super::fakes::test_start;
use super::fixtures::{bot_reply, user_message};

const SECOND: i64 = 1_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// What [`seed_handoffs`] needs of a store: both ports, as one adapter has them.
pub trait AnalyticsStore: ConversationRepository + MessageRepository {}

impl<S: ConversationRepository + MessageRepository> AnalyticsStore for S {}

/// [`test_start`] plus `millis`.
fn at(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(test_start().unix_millis() + millis).expect("a valid test time")
}

fn agent(id: &str) -> HandoffState {
    HandoffState::Agent(UserId::parse(id).expect("a valid agent id"))
}

async fn create(store: &dyn AnalyticsStore, user: &str, bot: &str, created: i64) -> Conversation {
    let conversation = Conversation::begun(
        ConversationId::from_uuid(uuid::Uuid::now_v7()),
        SessionId::from_uuid(uuid::Uuid::now_v7()),
        UserId::parse(user).expect("a valid user id"),
        BotId::parse(bot).expect("a valid bot id"),
        at(created),
    );
    store
        .create(&conversation, &Session::new(&conversation))
        .await
        .expect("creating a conversation");
    conversation
}

async fn append(store: &dyn AnalyticsStore, message: NewMessage) -> Message {
    store
        .append(&message)
        .await
        .expect("appending a message")
        .into_message()
}

/// Moves `conversation` from `from` to `to` at `millis`, with its notice, as the
/// service does.
async fn change(
    store: &dyn AnalyticsStore,
    conversation: &Conversation,
    from: HandoffState,
    to: HandoffState,
    millis: i64,
) {
    let change = HandoffChange { from, to };
    let notice = NewMessage {
        sender: Sender::System,
        sender_id: SYSTEM_SENDER_ID.to_owned(),
        ..user_message(conversation, &change.notice(), at(millis))
    };
    store
        .change_handoff(conversation.id, &change, &notice)
        .await
        .expect("changing the handoff state");
}

/// An agent's message in `conversation` at `millis`.
fn agent_message(conversation: &Conversation, agent: &str, millis: i64) -> NewMessage {
    NewMessage {
        sender: Sender::Agent,
        sender_id: agent.to_owned(),
        ..user_message(conversation, "a person answers", at(millis))
    }
}

/// Seeds bots `echo` and `echo-stream` over the two days from [`test_start`]:
///
/// - `a` (echo): asked for a person twice on day 1, claimed after 60 s and after
///   300 s, one agent message each time;
/// - `b` (echo): asked at 23:59 on day 1, claimed 80 s later on day 2, where its
///   agent message and the release fall;
/// - `c` (echo): a bot reply after 500 ms, rated down, then a request an
///   administrator cancels before anyone claims it;
/// - `d` (echo): a user message, no handoff;
/// - `e` (echo-stream): created the day before and with its only messages after day
///   2, so that its request's notice is stored then (times never go back) while the
///   handoff counts on day 1: a bucket with a handoff and no message.
///
/// # Panics
/// When the store refuses any of it.
pub async fn seed_handoffs(store: &dyn AnalyticsStore) {
    let a = create(store, "u1", "echo", HOUR).await;
    append(store, user_message(&a, "a", at(HOUR))).await;
    change(
        store,
        &a,
        HandoffState::Bot,
        HandoffState::Waiting,
        HOUR + SECOND,
    )
    .await;
    change(
        store,
        &a,
        HandoffState::Waiting,
        agent("alice"),
        HOUR + 61 * SECOND,
    )
    .await;
    append(store, agent_message(&a, "alice", HOUR + 62 * SECOND)).await;
    change(
        store,
        &a,
        agent("alice"),
        HandoffState::Bot,
        HOUR + 120 * SECOND,
    )
    .await;
    change(
        store,
        &a,
        HandoffState::Bot,
        HandoffState::Waiting,
        5 * HOUR,
    )
    .await;
    change(
        store,
        &a,
        HandoffState::Waiting,
        agent("bob"),
        5 * HOUR + 300 * SECOND,
    )
    .await;
    append(store, agent_message(&a, "bob", 5 * HOUR + 310 * SECOND)).await;
    change(
        store,
        &a,
        agent("bob"),
        HandoffState::Bot,
        5 * HOUR + 400 * SECOND,
    )
    .await;

    let b = create(store, "u2", "echo", 2 * HOUR).await;
    append(store, user_message(&b, "b", at(2 * HOUR))).await;
    change(
        store,
        &b,
        HandoffState::Bot,
        HandoffState::Waiting,
        DAY - 60 * SECOND,
    )
    .await;
    change(
        store,
        &b,
        HandoffState::Waiting,
        agent("alice"),
        DAY + 20 * SECOND,
    )
    .await;
    append(store, agent_message(&b, "alice", DAY + 30 * SECOND)).await;
    change(
        store,
        &b,
        agent("alice"),
        HandoffState::Bot,
        DAY + 40 * SECOND,
    )
    .await;

    let c = create(store, "u3", "echo", 3 * HOUR).await;
    let asked = append(store, user_message(&c, "c", at(3 * HOUR))).await;
    let answer = append(store, bot_reply(&c, &asked, "c", at(3 * HOUR + 500))).await;
    store
        .set_feedback(
            c.id,
            answer.id,
            Some(Feedback {
                rating: Rating::Down,
                comment: None,
                at: at(3 * HOUR + SECOND / 2 + 1),
            }),
        )
        .await
        .expect("rating the reply");
    change(
        store,
        &c,
        HandoffState::Bot,
        HandoffState::Waiting,
        3 * HOUR + SECOND,
    )
    .await;
    change(
        store,
        &c,
        HandoffState::Waiting,
        HandoffState::Bot,
        3 * HOUR + 600 * SECOND,
    )
    .await;

    let d = create(store, "u4", "echo", 4 * HOUR).await;
    append(store, user_message(&d, "d", at(4 * HOUR))).await;

    let e = create(store, "u5", "echo-stream", -HOUR).await;
    append(store, user_message(&e, "e", at(2 * DAY + HOUR))).await;
    change(
        store,
        &e,
        HandoffState::Bot,
        HandoffState::Waiting,
        2 * HOUR,
    )
    .await;
}

/// Both days of [`seed_handoffs`], every bot, by day.
pub fn handoff_summary_query() -> SummaryQuery {
    SummaryQuery::parse(None, at(0), at(2 * DAY), Granularity::Day).expect("a valid range")
}

/// The summary of [`handoff_summary_query`] over [`seed_handoffs`], worked out by
/// hand: on day 1 echo's waits are 60 s, 80 s and 300 s, so p50 is the 2nd and p90
/// the 3rd (`ceil(0.9 × 3)`); its system messages are the nine notices of `a`, `b`
/// and `c` on that day.
pub fn expected_handoff_summary() -> Vec<BucketSummary> {
    let empty = |bot: &str, bucket: i64| BucketSummary {
        bot_id: BotId::parse(bot).expect("a valid bot id"),
        bucket_start_ms: at(bucket).unix_millis(),
        conversations_started: 0,
        conversations_active: 0,
        conversations_archived: 0,
        messages_user: 0,
        messages_bot: 0,
        messages_system: 0,
        messages_agent: 0,
        distinct_users: 0,
        replies: 0,
        latency_p50_ms: None,
        latency_p95_ms: None,
        failed_replies: 0,
        handoffs: 0,
        handoffs_claimed: 0,
        conversations_handed_off: 0,
        handoff_wait_p50_ms: None,
        handoff_wait_p90_ms: None,
        feedback_up: 0,
        feedback_down: 0,
    };
    vec![
        BucketSummary {
            conversations_started: 4,
            conversations_active: 4,
            messages_user: 4,
            messages_bot: 1,
            messages_system: 9,
            messages_agent: 2,
            distinct_users: 4,
            replies: 1,
            latency_p50_ms: Some(500),
            latency_p95_ms: Some(500),
            handoffs: 4,
            handoffs_claimed: 3,
            conversations_handed_off: 3,
            handoff_wait_p50_ms: Some(80 * SECOND),
            handoff_wait_p90_ms: Some(300 * SECOND),
            feedback_down: 1,
            ..empty("echo", 0)
        },
        BucketSummary {
            conversations_active: 1,
            messages_system: 2,
            messages_agent: 1,
            ..empty("echo", DAY)
        },
        BucketSummary {
            handoffs: 1,
            conversations_handed_off: 1,
            ..empty("echo-stream", 0)
        },
    ]
}
