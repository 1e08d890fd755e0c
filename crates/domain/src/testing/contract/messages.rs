//! Contract checks of [`MessageRepository::append`] and [`MessageRepository::get`]:
//! seqs, timestamps, idempotency, replies and the conversation's counters.

use std::collections::HashSet;
use std::sync::Arc;

use crate::conversation::{ConversationId, Metadata, PREVIEW_CHARS};
use crate::message::{
    Appended, Attachment, Attachments, ClientMessageId, Message, MessageContent, MessageId, Sender,
    Seq, Suggestion,
};
use crate::ports::MessageRepository;

use super::{
    Repositories, all_messages, append, append_to, assert_conflict, assert_not_found, at,
    bot_reply, create, get, history, user_message,
};

const TASKS: u64 = 8;
const PER_TASK: u64 = 200;

/// Eight tasks appending 200 messages each to one conversation, at once, get the
/// seqs 1..=1600 between them, each exactly once and increasing within each task;
/// the conversation then counts 1600 messages with `last_seq` 1600, and timestamps
/// never decrease in seq order although the given ones interleave.
pub async fn concurrent_appends_get_gap_free_unique_seqs(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let messages: Arc<dyn MessageRepository> = Arc::clone(&r.messages);
            let conversation = conversation.clone();
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for n in 0..PER_TASK {
                    let offset = i64::try_from(1 + n * 3 + task).expect("small");
                    let message =
                        user_message(&conversation, &format!("task {task} n {n}"), at(offset));
                    let stored = append_to(&*messages, &message).await;
                    assert_eq!(stored.id, message.id, "the stored message is the one sent");
                    seqs.push(stored.seq.get());
                }
                seqs
            })
        })
        .collect();
    let mut every_seq = Vec::new();
    for task in tasks {
        let seqs = task.await.expect("an appending task failed");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one task's sequential appends got decreasing seqs: {seqs:?}"
        );
        every_seq.extend(seqs);
    }
    every_seq.sort_unstable();
    let expected: Vec<u64> = (1..=TASKS * PER_TASK).collect();
    assert_eq!(every_seq, expected, "appends got duplicate or missing seqs");

    let stored = all_messages(&r, conversation.id).await;
    assert_eq!(
        super::seqs(&stored),
        expected,
        "history holds seqs with gaps"
    );
    let distinct: HashSet<MessageId> = stored.iter().map(|m| m.id).collect();
    assert_eq!(distinct.len(), stored.len(), "history repeats a message");
    assert!(
        stored.windows(2).all(|w| w[0].timestamp <= w[1].timestamp),
        "timestamps decrease in seq order"
    );
    let after = get(&r, conversation.id).await;
    assert_eq!(after.message_count, TASKS * PER_TASK);
    assert_eq!(after.last_seq, Seq::new(TASKS * PER_TASK));
    assert_eq!(after.last_user_seq, Seq::new(TASKS * PER_TASK));
    let last = stored.last().expect("messages were stored");
    assert_eq!(after.last_activity, last.timestamp);
}

/// A message given an earlier time than the previous message is stored with the
/// previous message's time: `timestamp = max(given, previous)`.
pub async fn timestamps_never_decrease_in_seq_order_even_when_given_ones_go_back(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let given = [1_000, 500, 2_000, 1_500, 1_500, 2_001];
    let expected = [1_000, 1_000, 2_000, 2_000, 2_000, 2_001];
    let mut returned = Vec::new();
    for (n, offset) in given.into_iter().enumerate() {
        let stored = append(
            &r,
            &user_message(&conversation, &format!("m{n}"), at(offset)),
        )
        .await;
        returned.push(stored.timestamp);
    }
    let expected: Vec<_> = expected.into_iter().map(at).collect();
    assert_eq!(returned, expected, "append returned other timestamps");
    let stored: Vec<_> = all_messages(&r, conversation.id)
        .await
        .into_iter()
        .map(|m| m.timestamp)
        .collect();
    assert_eq!(stored, expected, "history holds other timestamps");
    assert_eq!(get(&r, conversation.id).await.last_activity, at(2_001));
}

/// Every field of an appended message comes back unchanged from `append`, `get` and
/// `history`: attachments, suggestions, client id, reply target, metadata, and
/// empty content with an attachment.
pub async fn an_appended_message_is_stored_with_every_field(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let attachments = Attachments::parse(vec![
        Attachment::parse(
            "image",
            "https://example.com/cat.png",
            Some("image/png"),
            Some("cat.png"),
            Some(12_345),
        )
        .expect("valid attachment"),
        Attachment::parse("link", "http://example.com/page?q=1#top", None, None, None)
            .expect("valid attachment"),
    ])
    .expect("two attachments");
    let metadata = Metadata::parse(serde_json::json!({
        "source": "app",
        "nested": {"n": 1, "list": [true, null, "x"]},
    }))
    .expect("valid metadata");
    let mut sent = user_message(&conversation, "", at(10));
    sent.content = MessageContent::parse("", &attachments).expect("attachments allow no text");
    sent.attachments = attachments;
    sent.client_message_id = Some(ClientMessageId::parse("client-1 ✓").expect("valid id"));
    sent.metadata = metadata;
    let question = append(&r, &sent).await;
    let expected = Message {
        id: sent.id,
        conversation_id: conversation.id,
        seq: Seq::new(1),
        sender: Sender::User,
        sender_id: "ana".to_owned(),
        content: sent.content.clone(),
        attachments: sent.attachments.clone(),
        suggestions: Vec::new(),
        client_message_id: sent.client_message_id.clone(),
        reply_to: None,
        timestamp: at(10),
        metadata: sent.metadata.clone(),
        feedback: None,
    };
    assert_eq!(question, expected, "append returned another message");

    let mut answer = bot_reply(&conversation, &question, "Grüße 👋 — a cat!", at(20));
    answer.suggestions = vec![
        Suggestion {
            text: "More cats".to_owned(),
        },
        Suggestion {
            text: "Stop".to_owned(),
        },
    ];
    let reply = append(&r, &answer).await;
    let expected_reply = Message {
        id: answer.id,
        conversation_id: conversation.id,
        seq: Seq::new(2),
        sender: Sender::Bot,
        sender_id: "alpha".to_owned(),
        content: MessageContent::trusted("Grüße 👋 — a cat!"),
        attachments: Attachments::none(),
        suggestions: answer.suggestions.clone(),
        client_message_id: None,
        reply_to: Some(question.id),
        timestamp: at(20),
        metadata: Metadata::default(),
        feedback: None,
    };
    assert_eq!(reply, expected_reply, "append returned another reply");

    let mut system = user_message(&conversation, "The bot could not answer.", at(30));
    system.sender = Sender::System;
    system.sender_id = "confab".to_owned();
    let system = append(&r, &system).await;
    assert_eq!(system.sender, Sender::System);

    assert_eq!(
        r.messages.get(conversation.id, question.id).await.ok(),
        Some(expected.clone())
    );
    assert_eq!(
        r.messages.get(conversation.id, reply.id).await.ok(),
        Some(expected_reply.clone())
    );
    assert_eq!(
        all_messages(&r, conversation.id).await,
        vec![expected, expected_reply, system]
    );
}

/// A second message with a `client_message_id` the conversation already holds gets
/// `Appended::Existing(original)`, whatever its content: nothing is stored and the
/// conversation's counters stay as they were.
pub async fn a_repeated_client_message_id_returns_the_original_and_stores_nothing(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let key = ClientMessageId::parse("retry-me").expect("valid id");
    let mut first = user_message(&conversation, "hello", at(10));
    first.client_message_id = Some(key.clone());
    let original = append(&r, &first).await;
    let mut other = user_message(&conversation, "other", at(20));
    other.client_message_id = Some(key.clone());
    append(&r, &user_message(&conversation, "in between", at(15))).await;
    let before = get(&r, conversation.id).await;

    let mut again = first.clone();
    again.id = MessageId::from_uuid(uuid::Uuid::now_v7());
    let outcome = r
        .messages
        .append(&again)
        .await
        .expect("a retry is no error");
    assert_eq!(outcome, Appended::Existing(original.clone()));
    let outcome = r
        .messages
        .append(&other)
        .await
        .expect("a retry with other content is no storage error");
    assert_eq!(outcome, Appended::Existing(original.clone()));

    assert_eq!(get(&r, conversation.id).await, before, "counters changed");
    assert_eq!(
        super::seqs(&all_messages(&r, conversation.id).await),
        [1, 2]
    );
    for refused in [again.id, other.id] {
        assert_not_found(
            r.messages.get(conversation.id, refused).await,
            "a refused retry",
        );
    }
}

/// Eight retries of one message, each a new id with the same `client_message_id`,
/// sent at once: exactly one is stored, every one of them gets that one back
/// (`Stored` for it, `Existing` for the others), and the conversation counts one
/// message. Clients retry after a timeout while the first attempt is still in flight,
/// so the retries race the original inside storage.
pub async fn concurrent_retries_with_one_client_message_id_store_one_message(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let key = ClientMessageId::parse("sent-twice").expect("valid id");
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let messages: Arc<dyn MessageRepository> = Arc::clone(&r.messages);
            let mut retry = user_message(&conversation, &format!("attempt {task}"), at(1));
            retry.client_message_id = Some(key.clone());
            tokio::spawn(async move { messages.append(&retry).await })
        })
        .collect();
    let mut stored = Vec::new();
    let mut returned = HashSet::new();
    for task in tasks {
        match task.await.expect("an appending task failed") {
            Ok(Appended::Stored(message)) => {
                returned.insert(message.id);
                stored.push(message);
            }
            Ok(Appended::Existing(message)) => {
                returned.insert(message.id);
            }
            Err(error) => panic!("a retry failed: {error:?}"),
        }
    }
    assert_eq!(
        stored.len(),
        1,
        "not exactly one retry was stored: {stored:?}"
    );
    assert_eq!(
        returned,
        HashSet::from([stored[0].id]),
        "the retries were answered with different messages"
    );
    assert_eq!(all_messages(&r, conversation.id).await, stored);
    assert_eq!(get(&r, conversation.id).await.message_count, 1);
}

/// A `client_message_id` is unique per conversation only: the same one in another
/// conversation is stored there, and each conversation's retry finds its own.
pub async fn the_same_client_message_id_in_another_conversation_is_independent(r: Repositories) {
    let first = create(&r, "ana", "alpha", at(0)).await;
    let second = create(&r, "ana", "alpha", at(1)).await;
    let key = ClientMessageId::parse("k-1").expect("valid id");
    let mut in_first = user_message(&first, "one", at(10));
    in_first.client_message_id = Some(key.clone());
    let mut in_second = user_message(&second, "two", at(11));
    in_second.client_message_id = Some(key.clone());
    let stored_first = append(&r, &in_first).await;
    let stored_second = append(&r, &in_second).await;
    assert_eq!(stored_second.seq, Seq::new(1));
    assert_eq!(stored_second.conversation_id, second.id);

    let mut retry = user_message(&second, "two", at(12));
    retry.client_message_id = Some(key);
    assert_eq!(
        r.messages.append(&retry).await.ok(),
        Some(Appended::Existing(stored_second))
    );
    retry.conversation_id = first.id;
    assert_eq!(
        r.messages.append(&retry).await.ok(),
        Some(Appended::Existing(stored_first))
    );
    assert_eq!(get(&r, first.id).await.message_count, 1);
    assert_eq!(get(&r, second.id).await.message_count, 1);
}

/// A message with `reply_to` sets the conversation's `replied_seq` (and leaves
/// `last_user_seq` alone); a second reply to the same seq, or to an older one, is
/// `RepoError::Conflict` and stores nothing.
pub async fn a_reply_advances_replied_seq_and_a_second_reply_to_that_seq_conflicts(
    r: Repositories,
) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let question = append(&r, &user_message(&conversation, "q1", at(10))).await;
    let waiting = get(&r, conversation.id).await;
    assert_eq!(waiting.last_user_seq, Seq::new(1));
    assert_eq!(waiting.replied_seq, Seq::ZERO);
    assert!(waiting.has_pending_replies());

    let answer = append(&r, &bot_reply(&conversation, &question, "a1", at(20))).await;
    assert_eq!(answer.reply_to, Some(question.id));
    let answered = get(&r, conversation.id).await;
    assert_eq!(answered.replied_seq, Seq::new(1));
    assert_eq!(answered.last_user_seq, Seq::new(1));
    assert!(!answered.has_pending_replies());

    let twice = bot_reply(&conversation, &question, "a1 again", at(30));
    assert_conflict(r.messages.append(&twice).await, "a second reply");
    assert_eq!(get(&r, conversation.id).await, answered, "counters changed");
    assert_not_found(
        r.messages.get(conversation.id, twice.id).await,
        "the refused reply",
    );

    let second = append(&r, &user_message(&conversation, "q2", at(40))).await;
    let third = append(&r, &user_message(&conversation, "q3", at(50))).await;
    append(&r, &bot_reply(&conversation, &third, "a3", at(60))).await;
    let late = bot_reply(&conversation, &second, "a2, too late", at(70));
    assert_conflict(r.messages.append(&late).await, "a reply to an older seq");
    let last = get(&r, conversation.id).await;
    assert_eq!(last.replied_seq, Seq::new(4));
    assert_eq!(last.last_user_seq, Seq::new(4));
    assert_eq!(
        super::seqs(&all_messages(&r, conversation.id).await),
        [1, 2, 3, 4, 5]
    );
}

/// Marking a user message answered (its bot answers later by itself) sets
/// `replied_seq` and stores nothing; marking it, or an older one, again is
/// `RepoError::Conflict`, and an unknown conversation is `RepoError::NotFound`.
pub async fn marking_a_message_answered_advances_replied_seq_once_and_stores_nothing(
    r: Repositories,
) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let question = append(&r, &user_message(&conversation, "q1", at(10))).await;
    r.messages
        .mark_answered(conversation.id, question.seq)
        .await
        .expect("marking the question answered");
    let marked = get(&r, conversation.id).await;
    assert_eq!(marked.replied_seq, question.seq);
    assert!(!marked.has_pending_replies());
    assert_eq!(marked.message_count, 1, "a message was stored");
    assert_eq!(marked.last_seq, question.seq);

    assert_conflict(
        r.messages
            .mark_answered(conversation.id, question.seq)
            .await,
        "marking it twice",
    );
    assert_conflict(
        r.messages.mark_answered(conversation.id, Seq::ZERO).await,
        "marking an older seq",
    );
    assert_eq!(get(&r, conversation.id).await, marked, "counters changed");
    assert_conflict(
        r.messages
            .append(&bot_reply(&conversation, &question, "late", at(20)))
            .await,
        "a reply after the mark",
    );

    let (ghost, _) = super::new_conversation("ana", "alpha", at(0));
    assert_not_found(
        r.messages.mark_answered(ghost.id, Seq::new(1)).await,
        "an unknown conversation",
    );
}

/// Appending to a conversation that does not exist is `RepoError::NotFound`, and
/// nothing appears under that id.
pub async fn appending_to_an_unknown_conversation_is_not_found_and_stores_nothing(r: Repositories) {
    let (ghost, _) = super::new_conversation("ana", "alpha", at(0));
    let message = user_message(&ghost, "anyone there?", at(10));
    assert_not_found(r.messages.append(&message).await, "append");
    assert!(
        history(&r, ghost.id, None, None, 10)
            .await
            .messages
            .is_empty()
    );
    assert_not_found(
        r.messages.get(ghost.id, message.id).await,
        "the refused message",
    );
}

/// Each append raises `message_count` and `last_seq`, sets `last_activity` to the
/// message's time and `last_message` to its first 200 characters (characters, not
/// bytes), and `last_user_seq` for user messages only; other conversations stay
/// unchanged.
pub async fn appending_updates_the_counters_and_the_last_message_preview(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let bystander = create(&r, "ana", "alpha", at(1)).await;
    let fresh = get(&r, conversation.id).await;
    assert_eq!(fresh.message_count, 0);
    assert_eq!(fresh.last_seq, Seq::ZERO);
    assert_eq!(fresh.last_message, None);
    assert_eq!(fresh.last_activity, at(0));

    let long = "é".repeat(PREVIEW_CHARS + 100);
    append(&r, &user_message(&conversation, &long, at(10))).await;
    let after_user = get(&r, conversation.id).await;
    assert_eq!(after_user.message_count, 1);
    assert_eq!(after_user.last_seq, Seq::new(1));
    assert_eq!(after_user.last_user_seq, Seq::new(1));
    assert_eq!(after_user.last_activity, at(10));
    assert_eq!(
        after_user.last_message,
        Some("é".repeat(PREVIEW_CHARS)),
        "the preview is the first 200 characters"
    );

    let mut from_bot = user_message(&conversation, "short answer", at(20));
    from_bot.sender = Sender::Bot;
    from_bot.sender_id = "alpha".to_owned();
    append(&r, &from_bot).await;
    let exact = "x".repeat(PREVIEW_CHARS);
    let mut last = user_message(&conversation, &exact, at(30));
    last.sender = Sender::Bot;
    last.sender_id = "alpha".to_owned();
    append(&r, &last).await;
    let after_bot = get(&r, conversation.id).await;
    assert_eq!(after_bot.message_count, 3);
    assert_eq!(after_bot.last_seq, Seq::new(3));
    assert_eq!(after_bot.last_user_seq, Seq::new(1), "bots are not users");
    assert_eq!(after_bot.replied_seq, Seq::ZERO, "no reply_to was given");
    assert_eq!(after_bot.last_activity, at(30));
    assert_eq!(after_bot.last_message, Some(exact));
    assert_eq!(
        (after_bot.created_at, after_bot.user_id, after_bot.status),
        (fresh.created_at, fresh.user_id, fresh.status)
    );

    let untouched = get(&r, bystander.id).await;
    assert_eq!(untouched, bystander, "another conversation changed");
}

/// `get` finds a message by conversation and id; an unknown id, or the id of a
/// message of another conversation, is `RepoError::NotFound`.
pub async fn getting_a_message_returns_it_and_an_unknown_or_foreign_one_is_not_found(
    r: Repositories,
) {
    let mine = create(&r, "ana", "alpha", at(0)).await;
    let other = create(&r, "ana", "alpha", at(1)).await;
    let stored = append(&r, &user_message(&mine, "mine", at(10))).await;
    let foreign = append(&r, &user_message(&other, "not mine", at(11))).await;
    assert_eq!(
        r.messages.get(mine.id, stored.id).await.ok(),
        Some(stored.clone())
    );
    assert_not_found(
        r.messages
            .get(mine.id, MessageId::from_uuid(uuid::Uuid::now_v7()))
            .await,
        "an unknown message",
    );
    assert_not_found(
        r.messages.get(mine.id, foreign.id).await,
        "another conversation's message",
    );
    assert_not_found(
        r.messages
            .get(ConversationId::from_uuid(uuid::Uuid::now_v7()), stored.id)
            .await,
        "a message of an unknown conversation",
    );
}
