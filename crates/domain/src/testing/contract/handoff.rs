//! Contract checks of the handoff part of
//! [`ConversationRepository`](crate::ports::ConversationRepository): a state that
//! moves only from the state the caller saw, with its notice in the same
//! transaction, one winner among concurrent claims, user messages that need no bot
//! while people answer, and the listings of the agents' queue.

use std::sync::Arc;

use crate::conversation::{Conversation, ConversationId};
use crate::error::RepoError;
use crate::handoff::{HandoffChange, HandoffListing, HandoffState};
use crate::message::{Message, NewMessage, Sender, Seq};
use crate::reply::SYSTEM_SENDER_ID;
use crate::timestamp::Timestamp;

use super::{
    Repositories, all_messages, append, assert_conflict, assert_not_found, at, create, get,
    user_id, user_message,
};

fn agent(id: &str) -> HandoffState {
    HandoffState::Agent(user_id(id))
}

/// The `system` message that tells a change, at `timestamp`.
fn notice(conversation: &Conversation, timestamp: Timestamp) -> NewMessage {
    NewMessage {
        sender: Sender::System,
        sender_id: SYSTEM_SENDER_ID.to_owned(),
        ..user_message(conversation, "handoff", timestamp)
    }
}

/// A new conversation of `ana` with `alpha`, waiting for an agent since `at(1_000)`.
pub(super) async fn waiting(r: &Repositories) -> Conversation {
    let conversation = create(r, "ana", "alpha", at(0)).await;
    change(
        r,
        &conversation,
        HandoffState::Bot,
        HandoffState::Waiting,
        at(1_000),
    )
    .await;
    conversation
}

async fn change(
    r: &Repositories,
    conversation: &Conversation,
    from: HandoffState,
    to: HandoffState,
    timestamp: Timestamp,
) -> Message {
    attempt(r, conversation, from, to, timestamp)
        .await
        .expect("changing the handoff state")
}

/// A move from `from` to `to` at `timestamp`, with its notice, as storage answers it.
async fn attempt(
    r: &Repositories,
    conversation: &Conversation,
    from: HandoffState,
    to: HandoffState,
    timestamp: Timestamp,
) -> Result<Message, RepoError> {
    r.conversations
        .change_handoff(
            conversation.id,
            &HandoffChange { from, to },
            &notice(conversation, timestamp),
        )
        .await
}

/// Each change stores the new state, its time (cleared back with the bot) and its
/// notice, appended like any message.
pub async fn a_handoff_moves_through_its_states_with_a_notice_each_time(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let asked = change(
        &r,
        &conversation,
        HandoffState::Bot,
        HandoffState::Waiting,
        at(1_000),
    )
    .await;
    assert_eq!((asked.seq, asked.sender), (Seq::new(1), Sender::System));
    let now = get(&r, conversation.id).await;
    assert_eq!(now.handoff, HandoffState::Waiting);
    assert_eq!(now.handoff_since, Some(at(1_000)));
    assert_eq!((now.last_seq, now.message_count), (Seq::new(1), 1));

    change(
        &r,
        &conversation,
        HandoffState::Waiting,
        agent("alice"),
        at(2_000),
    )
    .await;
    let now = get(&r, conversation.id).await;
    assert_eq!(now.handoff, agent("alice"));
    assert_eq!(now.handoff_since, Some(at(2_000)));

    let back = change(
        &r,
        &conversation,
        agent("alice"),
        HandoffState::Bot,
        at(3_000),
    )
    .await;
    assert_eq!(back.seq, Seq::new(3));
    let now = get(&r, conversation.id).await;
    assert_eq!(now.handoff, HandoffState::Bot);
    assert_eq!(now.handoff_since, None);
    let stored = all_messages(&r, conversation.id).await;
    assert_eq!(stored.len(), 3);
    assert!(stored.iter().all(|m| m.sender == Sender::System));
}

/// A change from a state the conversation is no longer in is refused whole: no
/// state, no notice.
pub async fn a_handoff_change_from_a_stale_state_conflicts_and_changes_nothing(r: Repositories) {
    let conversation = waiting(&r).await;
    let stale = attempt(
        &r,
        &conversation,
        HandoffState::Bot,
        HandoffState::Waiting,
        at(2_000),
    )
    .await;
    assert_conflict(stale, "a change from bot while waiting");
    let held_by_another = attempt(
        &r,
        &conversation,
        agent("bob"),
        HandoffState::Bot,
        at(2_000),
    )
    .await;
    assert_conflict(
        held_by_another,
        "a release of a conversation bob does not hold",
    );
    let now = get(&r, conversation.id).await;
    assert_eq!(now.handoff, HandoffState::Waiting);
    assert_eq!(now.handoff_since, Some(at(1_000)));
    assert_eq!(all_messages(&r, conversation.id).await.len(), 1);
}

/// Of several agents claiming one waiting conversation at once, exactly one holds
/// it, and only the winner's notice is stored.
pub async fn concurrent_claims_of_a_waiting_conversation_have_one_winner(r: Repositories) {
    let conversation = waiting(&r).await;
    let r = Arc::new(r);
    let claims: Vec<_> = (0..8)
        .map(|n| {
            let (r, conversation) = (Arc::clone(&r), conversation.clone());
            tokio::spawn(async move {
                let to = agent(&format!("agent-{n}"));
                let claimed = attempt(
                    &r,
                    &conversation,
                    HandoffState::Waiting,
                    to.clone(),
                    at(2_000),
                )
                .await;
                claimed.is_ok().then_some(to)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for claim in claims {
        winners.extend(claim.await.expect("a claim task"));
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(get(&r, conversation.id).await.handoff, winners[0]);
    assert_eq!(all_messages(&r, conversation.id).await.len(), 2);
}

/// While people answer, a user message is stored answered: no reply work waits for
/// the bot. Back with the bot, the next one waits for it again.
pub async fn user_messages_during_a_handoff_need_no_bot_reply(r: Repositories) {
    let conversation = waiting(&r).await;
    let waiting = append(&r, &user_message(&conversation, "anyone?", at(1_500))).await;
    let now = get(&r, conversation.id).await;
    assert_eq!(now.last_user_seq, waiting.seq);
    assert_eq!(now.replied_seq, waiting.seq);
    assert!(!now.has_pending_replies());

    change(
        &r,
        &conversation,
        HandoffState::Waiting,
        agent("alice"),
        at(2_000),
    )
    .await;
    let last_during = append(&r, &user_message(&conversation, "hi alice", at(2_500))).await;
    assert!(!get(&r, conversation.id).await.has_pending_replies());
    assert!(
        r.conversations
            .with_pending_replies(10)
            .await
            .expect("listing pending work")
            .is_empty()
    );

    change(
        &r,
        &conversation,
        agent("alice"),
        HandoffState::Bot,
        at(3_000),
    )
    .await;
    let for_the_bot = append(&r, &user_message(&conversation, "hello bot", at(3_500))).await;
    let now = get(&r, conversation.id).await;
    assert_eq!(now.last_user_seq, for_the_bot.seq);
    assert!(now.has_pending_replies());
    assert_eq!(now.replied_seq, last_during.seq);
}

/// The queue lists waiting conversations, the longest waiting first; an agent's
/// listing lists what that agent holds; conversations with their bot are in neither.
pub async fn conversations_in_handoff_are_listed_by_state_longest_first(r: Repositories) {
    let later = create(&r, "ana", "alpha", at(0)).await;
    let earlier = create(&r, "bob", "alpha", at(0)).await;
    let held = create(&r, "cy", "beta", at(0)).await;
    create(&r, "dee", "alpha", at(0)).await;
    change(
        &r,
        &later,
        HandoffState::Bot,
        HandoffState::Waiting,
        at(2_000),
    )
    .await;
    change(
        &r,
        &earlier,
        HandoffState::Bot,
        HandoffState::Waiting,
        at(1_000),
    )
    .await;
    change(&r, &held, HandoffState::Bot, HandoffState::Waiting, at(500)).await;
    change(&r, &held, HandoffState::Waiting, agent("alice"), at(3_000)).await;

    let ids = |conversations: Vec<Conversation>| -> Vec<ConversationId> {
        conversations.iter().map(|c| c.id).collect()
    };
    let list = |listing: HandoffListing, limit: u32| {
        let r = r.clone();
        async move {
            r.conversations
                .in_handoff(&listing, limit)
                .await
                .expect("listing conversations in handoff")
        }
    };
    let waiting = list(HandoffListing::Waiting, 10).await;
    assert_eq!(ids(waiting.clone()), vec![earlier.id, later.id]);
    assert!(waiting.iter().all(|c| c.handoff == HandoffState::Waiting));
    assert_eq!(
        ids(list(HandoffListing::Waiting, 1).await),
        vec![earlier.id]
    );
    let alices = list(HandoffListing::HeldBy(user_id("alice")), 10).await;
    assert_eq!(ids(alices.clone()), vec![held.id]);
    assert_eq!(alices[0].handoff, agent("alice"));
    assert!(
        list(HandoffListing::HeldBy(user_id("bob")), 10)
            .await
            .is_empty()
    );
}

/// A change to a conversation that does not exist stores nothing.
pub async fn changing_the_handoff_of_an_unknown_conversation_is_not_found(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    r.conversations
        .delete(conversation.id)
        .await
        .expect("deleting");
    let missing = attempt(
        &r,
        &conversation,
        HandoffState::Bot,
        HandoffState::Waiting,
        at(1_000),
    )
    .await;
    assert_not_found(missing, "a handoff of a deleted conversation");
}
