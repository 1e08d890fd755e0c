//! Contract checks of [`ReplyLeases`](crate::ports::ReplyLeases): one holder at a
//! time, leases that run out, and a release that never leaves a waiting user
//! message without a holder.

use std::sync::Arc;

use crate::conversation::ConversationId;
use crate::lease::{Claim, LeaseHolder, Release};
use crate::message::Appended;

use super::{Repositories, append, assert_not_found, at, bot_reply, create, user_message};

fn holder() -> LeaseHolder {
    LeaseHolder::from_uuid(uuid::Uuid::now_v7())
}

async fn claim(
    r: &Repositories,
    id: ConversationId,
    who: LeaseHolder,
    now: i64,
    until: i64,
) -> bool {
    r.leases
        .claim(id, who, at(now), at(until))
        .await
        .expect("claiming a lease")
}

/// A free lease goes to its claimant; another holder's is refused until it runs
/// out (at its expiry exactly, it is free); its holder may renew it.
pub async fn a_lease_has_one_holder_until_it_runs_out(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let (first, second) = (holder(), holder());
    assert!(
        claim(&r, conversation.id, first, 1_000, 11_000).await,
        "a free lease"
    );
    assert!(
        !claim(&r, conversation.id, second, 2_000, 12_000).await,
        "held by another"
    );
    assert!(
        claim(&r, conversation.id, first, 5_000, 15_000).await,
        "renewed by its holder"
    );
    assert!(
        !claim(&r, conversation.id, second, 14_999, 24_999).await,
        "renewed, still held"
    );
    assert!(
        claim(&r, conversation.id, second, 15_000, 25_000).await,
        "ran out"
    );
    assert!(
        !claim(&r, conversation.id, first, 16_000, 26_000).await,
        "taken over"
    );
}

/// Leases are per conversation.
pub async fn leases_of_different_conversations_are_independent(r: Repositories) {
    let one = create(&r, "ana", "alpha", at(0)).await;
    let two = create(&r, "ana", "alpha", at(1)).await;
    let (first, second) = (holder(), holder());
    assert!(claim(&r, one.id, first, 1_000, 11_000).await);
    assert!(claim(&r, two.id, second, 1_000, 11_000).await);
}

/// Of many holders claiming one free lease at the same moment, exactly one wins.
pub async fn concurrent_claims_have_exactly_one_winner(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let r = Arc::new(r);
    let claims: Vec<_> = (0..16)
        .map(|_| {
            let r = Arc::clone(&r);
            tokio::spawn(async move { claim(&r, conversation.id, holder(), 1_000, 11_000).await })
        })
        .collect();
    let mut winners = 0;
    for claim in claims {
        if claim.await.expect("the claim task") {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one holder must get a free lease");
}

/// A claim that reads decides as a plain claim does, and the conversation it returns
/// is the one a read right after the claim gets, pending messages included.
pub async fn a_claim_that_reads_returns_the_conversation_as_it_left_it(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    append(&r, &user_message(&conversation, "hello?", at(500))).await;
    let (first, second) = (holder(), holder());
    let claimed = r
        .leases
        .claim_reading(conversation.id, first, at(1_000), at(11_000))
        .await
        .expect("claiming a lease");
    let Claim::Held(read) = claimed else {
        panic!("a free lease is held after its claim, not {claimed:?}");
    };
    if let Some(read) = read {
        let now = r.conversations.get(conversation.id).await.expect("reading");
        assert_eq!(
            *read, now,
            "the claim's read is the conversation as it stands"
        );
        assert!(read.has_pending_replies(), "the user message waits");
    }
    assert_eq!(
        r.leases
            .claim_reading(conversation.id, second, at(2_000), at(12_000))
            .await
            .expect("claiming a lease"),
        Claim::Taken,
        "held by another"
    );
    assert!(
        claim(&r, conversation.id, first, 3_000, 13_000).await,
        "a claim that reads takes the lease as a plain claim does"
    );
    let unknown = ConversationId::from_uuid(uuid::Uuid::now_v7());
    assert_not_found(
        r.leases
            .claim_reading(unknown, first, at(0), at(10_000))
            .await,
        "claiming and reading the lease of an unknown conversation",
    );
}

/// A claim on a conversation that does not exist is `NotFound`.
pub async fn claiming_an_unknown_conversation_is_not_found(r: Repositories) {
    let unknown = ConversationId::from_uuid(uuid::Uuid::now_v7());
    assert_not_found(
        r.leases.claim(unknown, holder(), at(0), at(10_000)).await,
        "claiming the lease of an unknown conversation",
    );
}

/// A holder keeps its lease while a user message waits for a reply, and lets go
/// once it is answered; a release by a non-holder, or of a conversation that is
/// gone, changes nothing and reports `Released`.
pub async fn a_lease_is_kept_while_user_messages_wait_and_let_go_after(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let (first, second) = (holder(), holder());
    assert!(claim(&r, conversation.id, first, 1_000, 11_000).await);
    let question = append(&r, &user_message(&conversation, "hello?", at(1_500))).await;

    let released = r
        .leases
        .release(conversation.id, second)
        .await
        .expect("releasing");
    assert_eq!(
        released,
        Release::Released,
        "a non-holder has nothing to let go of"
    );
    assert!(
        !claim(&r, conversation.id, second, 2_000, 12_000).await,
        "still held"
    );

    let released = r
        .leases
        .release(conversation.id, first)
        .await
        .expect("releasing");
    assert_eq!(released, Release::WorkRemains, "a user message waits");
    assert!(
        !claim(&r, conversation.id, second, 2_000, 12_000).await,
        "kept"
    );

    let reply = bot_reply(&conversation, &question, "hi", at(2_500));
    assert!(matches!(
        r.messages.append(&reply).await,
        Ok(Appended::Stored(_))
    ));
    let released = r
        .leases
        .release(conversation.id, first)
        .await
        .expect("releasing");
    assert_eq!(released, Release::Released);
    assert!(
        claim(&r, conversation.id, second, 3_000, 13_000).await,
        "let go"
    );

    r.conversations
        .delete(conversation.id)
        .await
        .expect("deleting");
    let released = r
        .leases
        .release(conversation.id, second)
        .await
        .expect("releasing");
    assert_eq!(
        released,
        Release::Released,
        "nothing is left of a deleted conversation"
    );
}

/// Orphaned work is pending work whose lease is free or ran out, oldest activity
/// first; held leases and conversations with nothing pending are not listed.
pub async fn orphaned_work_is_pending_work_without_a_live_lease(r: Repositories) {
    let idle = create(&r, "ana", "alpha", at(0)).await;
    let free = create(&r, "ana", "alpha", at(1)).await;
    let expired = create(&r, "ana", "alpha", at(2)).await;
    let held = create(&r, "ana", "alpha", at(3)).await;
    assert!(claim(&r, idle.id, holder(), 0, 100_000).await);
    append(&r, &user_message(&expired, "second oldest", at(1_000))).await;
    append(&r, &user_message(&free, "newest", at(3_000))).await;
    append(&r, &user_message(&held, "held", at(2_000))).await;
    assert!(claim(&r, expired.id, holder(), 3_000, 5_000).await);
    assert!(claim(&r, held.id, holder(), 3_000, 50_000).await);

    let orphaned = r.leases.orphaned(at(10_000), 10).await.expect("listing");
    assert_eq!(orphaned, vec![expired.id, free.id]);
    let limited = r.leases.orphaned(at(10_000), 1).await.expect("listing");
    assert_eq!(limited, vec![expired.id]);
    let earlier = r.leases.orphaned(at(4_000), 10).await.expect("listing");
    assert_eq!(earlier, vec![free.id], "the lease runs until 5 000");
}
