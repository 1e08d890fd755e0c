//! Contract checks of [`MessageRepository::append_own`]: what it stores is what
//! `append` would store, with the conversation as it stood just before; whatever a
//! send must check first makes it store nothing. A store may take no own append at
//! all (the port's default): then every check here holds it to storing nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::conversation::{Conversation, ConversationId, ConversationStatus};
use crate::handoff::HandoffState;
use crate::message::{ClientMessageId, Message, NewMessage, Sender, Seq};
use crate::ports::{MessageRepository, OwnAppend};
use crate::user::UserId;

use super::handoff::waiting;
use super::{
    Repositories, all_messages, append, append_to, at, bot_reply, create, get, set_status, user_id,
    user_message,
};

/// An own append to the owner's active conversation stores the message as `append`
/// would (the next seq, every counter moved) and returns the conversation exactly as
/// it stood before, with a reply answered and one user message still pending.
pub async fn an_own_append_is_stored_as_an_append_with_the_conversation_before_it(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let question = append(&r, &user_message(&conversation, "question", at(10))).await;
    append(&r, &bot_reply(&conversation, &question, "answer", at(20))).await;
    append(&r, &user_message(&conversation, "pending", at(30))).await;
    let before = get(&r, conversation.id).await;

    let mut own = user_message(&conversation, "own", at(40));
    own.client_message_id = Some(ClientMessageId::parse("own-1").expect("valid id"));
    if let Some(message) = offer(&r, &own, &before).await {
        assert_eq!(message, own.stored(Seq::new(4), at(40)));
        let stored = r
            .messages
            .get(conversation.id, own.id)
            .await
            .expect("the stored message can be read back");
        assert_eq!(stored, message);
        let after = get(&r, conversation.id).await;
        assert_eq!(after.last_seq, Seq::new(4));
        assert_eq!(after.last_user_seq, Seq::new(4));
        assert_eq!(after.replied_seq, before.replied_seq);
        assert_eq!(after.message_count, 4);
        assert_eq!(after.last_activity, at(40));
        assert_eq!(after.last_message.as_deref(), Some("own"));
    }
}

/// An own append stores nothing and is not taken when the conversation is missing,
/// another user's or archived, already holds the message's `client_message_id`, or
/// when the message is a reply or not a user's (the long way then tells the caller
/// which).
pub async fn an_own_append_to_a_missing_foreign_or_archived_conversation_or_a_retry_is_not_taken(
    r: Repositories,
) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let key = ClientMessageId::parse("sent-once").expect("valid id");
    let mut first = user_message(&conversation, "first", at(10));
    first.client_message_id = Some(key.clone());
    append(&r, &first).await;
    let before = get(&r, conversation.id).await;

    let mut retry = user_message(&conversation, "first", at(20));
    retry.client_message_id = Some(key);
    let to_another = user_message(&conversation, "not hers", at(20));
    let stored_first = all_messages(&r, conversation.id).await.remove(0);
    let reply = bot_reply(&conversation, &stored_first, "an answer", at(20));
    let mut as_bot = user_message(&conversation, "not a user's", at(20));
    as_bot.sender = Sender::Bot;
    for (message, owner, case) in [
        (&retry, &conversation.user_id, "a retry"),
        (&to_another, &user_id("bob"), "another user's conversation"),
        (&reply, &conversation.user_id, "a reply"),
        (&as_bot, &conversation.user_id, "a bot's message"),
    ] {
        assert_not_taken(&r, message, owner, case).await;
        assert_stored_nothing(&r, &before, message).await;
    }

    let missing = Conversation {
        id: ConversationId::from_uuid(uuid::Uuid::now_v7()),
        ..conversation.clone()
    };
    let to_missing = user_message(&missing, "nobody there", at(20));
    assert_not_taken(
        &r,
        &to_missing,
        &conversation.user_id,
        "a missing conversation",
    )
    .await;
    assert!(
        all_messages(&r, missing.id).await.is_empty(),
        "a message was stored for a missing conversation"
    );

    let archived = create(&r, "ana", "alpha", at(0)).await;
    let archived_before = set_status(&r, archived.id, ConversationStatus::Archived).await;
    let to_archived = user_message(&archived, "too late", at(20));
    assert_not_taken(
        &r,
        &to_archived,
        &archived.user_id,
        "an archived conversation",
    )
    .await;
    assert_stored_nothing(&r, &archived_before, &to_archived).await;
}

/// An own append while people answer (handoff `waiting`) is stored marked answered,
/// as `append` marks it, and returns the conversation in that state: the bot must not
/// answer it.
pub async fn an_own_append_during_a_handoff_is_stored_answered(r: Repositories) {
    let conversation = waiting(&r).await;
    let before = get(&r, conversation.id).await;
    let own = user_message(&conversation, "anyone?", at(1_500));
    assert_eq!(before.handoff, HandoffState::Waiting);
    if let Some(message) = offer(&r, &own, &before).await {
        let after = get(&r, conversation.id).await;
        assert_eq!(after.last_user_seq, message.seq);
        assert_eq!(after.replied_seq, message.seq, "not marked answered");
        assert!(!after.has_pending_replies());
    }
}

const CONVERSATIONS: usize = 3;
const TASKS: usize = 6;
const PER_TASK: u64 = 30;

/// Own appends racing each other in several conversations at once: each is stored
/// with the conversation as the append before it left it (`last_seq` one below its
/// seq), and every conversation ends with gap-free seqs. Sends to many conversations
/// at once are what a store may batch.
pub async fn concurrent_own_appends_each_see_the_conversation_the_one_before_left(r: Repositories) {
    let mut conversations = Vec::new();
    for _ in 0..CONVERSATIONS {
        conversations.push(create(&r, "ana", "alpha", at(0)).await);
    }
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let messages: Arc<dyn MessageRepository> = Arc::clone(&r.messages);
            let conversations = conversations.clone();
            tokio::spawn(async move {
                let mut stored = Vec::new();
                for n in 0..PER_TASK {
                    let conversation = &conversations[(task + n as usize) % CONVERSATIONS];
                    let offset = i64::try_from(n).expect("small");
                    let message = user_message(conversation, &format!("{task}/{n}"), at(offset));
                    match append_own(&*messages, &message, &conversation.user_id).await {
                        OwnAppend::Stored { message, before } => {
                            assert_eq!(before.id, conversation.id);
                            assert_eq!(
                                before.last_seq.next(),
                                message.seq,
                                "the conversation returned is not the one just before"
                            );
                            stored.push(message);
                        }
                        OwnAppend::NotTaken => stored.push(append_to(&*messages, &message).await),
                    }
                }
                stored
            })
        })
        .collect();
    let mut by_conversation: BTreeMap<ConversationId, Vec<u64>> = BTreeMap::new();
    for task in tasks {
        for message in task.await.expect("an appending task failed") {
            by_conversation
                .entry(message.conversation_id)
                .or_default()
                .push(message.seq.get());
        }
    }
    for conversation in &conversations {
        let mut seqs = by_conversation.remove(&conversation.id).unwrap_or_default();
        seqs.sort_unstable();
        let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "duplicate or missing seqs");
        let stored = all_messages(&r, conversation.id).await;
        assert_eq!(
            super::seqs(&stored),
            expected,
            "history holds seqs with gaps"
        );
        assert_eq!(
            get(&r, conversation.id).await.last_seq,
            Seq::new(expected.len() as u64)
        );
    }
}

async fn append_own(
    messages: &dyn MessageRepository,
    message: &NewMessage,
    owner: &UserId,
) -> OwnAppend {
    messages
        .append_own(message, owner)
        .await
        .expect("an own append never fails on a healthy store")
}

/// Offers `own` as an own append of the owner of `before`, the conversation as it
/// stands: the message as stored, once checked that the append returned `before`;
/// `None` when it was not taken, once checked that it stored nothing.
async fn offer(r: &Repositories, own: &NewMessage, before: &Conversation) -> Option<Message> {
    match append_own(&*r.messages, own, &before.user_id).await {
        OwnAppend::Stored {
            message,
            before: found,
        } => {
            assert_eq!(&found, before, "not the conversation as it stood before");
            Some(message)
        }
        OwnAppend::NotTaken => {
            assert_stored_nothing(r, before, own).await;
            None
        }
    }
}

async fn assert_not_taken(r: &Repositories, message: &NewMessage, owner: &UserId, case: &str) {
    let outcome = append_own(&*r.messages, message, owner).await;
    assert_eq!(outcome, OwnAppend::NotTaken, "{case} was taken");
}

/// The conversation is as it was before `message` was offered, and `message` is not
/// stored.
async fn assert_stored_nothing(r: &Repositories, before: &Conversation, message: &NewMessage) {
    assert_eq!(&get(r, before.id).await, before, "the conversation changed");
    let found: Option<Message> = r.messages.get(before.id, message.id).await.ok();
    assert_eq!(found, None, "a message not taken was stored");
}
