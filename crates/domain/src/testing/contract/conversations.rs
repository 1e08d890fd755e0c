//! Contract checks of [`ConversationRepository`](crate::ports::ConversationRepository):
//! create, get, list (filters, order, offset and cursor paging), update, delete and
//! the pending-reply query.

use std::collections::HashSet;

use crate::conversation::{
    Conversation, ConversationChange, ConversationFilter, ConversationId, ConversationStatus,
    ListCursor, ListPosition, Metadata, Title,
};
use crate::session::SessionId;

use super::{
    Repositories, all_messages, append, assert_conflict, assert_not_found, at, bot_id, bot_reply,
    create, get, history, ids, increasing_ids, list_query, new_conversation,
    new_conversation_with_id, set_status, sorted_for_list, store, user_id, user_message,
};

fn everything() -> ConversationFilter {
    ConversationFilter::default()
}

fn start() -> ListPosition {
    ListPosition::Offset(0)
}

async fn archive(r: &Repositories, id: ConversationId) -> Conversation {
    r.conversations
        .update(
            id,
            &ConversationChange {
                status: Some(ConversationStatus::Archived),
                ..ConversationChange::default()
            },
        )
        .await
        .expect("archiving")
}

/// `count` conversations of `ana` with `alpha`, four at a time sharing one
/// `last_activity`, created in an order that is neither ascending nor descending by
/// id, so that neither creation order nor its reverse passes for the id tie-break.
/// Returned in the order lists must have.
async fn tied_conversations(r: &Repositories, count: usize) -> Vec<Conversation> {
    let ids = increasing_ids(count);
    let mut created = Vec::new();
    for n in 0..count {
        let pick = (n * 7 + 3) % count;
        let group = i64::try_from(pick / 4).expect("small");
        let (conversation, session) =
            new_conversation_with_id(ids[pick], "ana", "alpha", at(100 * group));
        store(r, &conversation, &session).await;
        created.push(conversation);
    }
    sorted_for_list(&mut created);
    created
}

/// A created conversation comes back unchanged from `get` and `get_by_session`,
/// and its session from the session repository.
pub async fn a_created_conversation_and_its_session_can_be_read_back(r: Repositories) {
    let (mut conversation, mut session) = new_conversation("ana", "alpha", at(5));
    conversation.title = Some(Title::parse("Trip to Lisbon").expect("valid title"));
    conversation.metadata =
        Metadata::parse(serde_json::json!({"channel": "web", "n": 3})).expect("valid metadata");
    session.context = serde_json::json!({"step": "greeting"})
        .as_object()
        .cloned()
        .expect("an object");
    store(&r, &conversation, &session).await;
    assert_eq!(
        r.conversations.get(conversation.id).await.ok(),
        Some(conversation.clone())
    );
    assert_eq!(
        r.conversations.get_by_session(session.id).await.ok(),
        Some(conversation.clone())
    );
    assert_eq!(r.sessions.get(session.id).await.ok(), Some(session));
}

/// Creating a conversation whose id, or whose session's id, is taken is
/// `RepoError::Conflict`, and neither the new conversation nor its session is
/// stored.
pub async fn creating_a_conversation_with_a_taken_id_conflicts_and_stores_nothing(r: Repositories) {
    let first = create(&r, "ana", "alpha", at(0)).await;

    let (mut same_id, mut new_session) = new_conversation("bob", "alpha", at(10));
    same_id.id = first.id;
    new_session.conversation_id = first.id;
    assert_conflict(
        r.conversations.create(&same_id, &new_session).await,
        "a taken conversation id",
    );
    assert_not_found(
        r.sessions.get(new_session.id).await,
        "the session of the refused conversation",
    );
    assert_not_found(
        r.conversations.get_by_session(new_session.id).await,
        "the session of the refused conversation",
    );

    let (mut same_session, mut taken) = new_conversation("bob", "alpha", at(10));
    same_session.session_id = first.session_id;
    taken.id = first.session_id;
    assert_conflict(
        r.conversations.create(&same_session, &taken).await,
        "a taken session id",
    );
    assert_not_found(
        r.conversations.get(same_session.id).await,
        "the refused conversation",
    );

    assert_eq!(
        get(&r, first.id).await,
        first,
        "the first conversation changed"
    );
    assert_eq!(
        r.conversations.get_by_session(first.session_id).await.ok(),
        Some(first.clone())
    );
    let page = r
        .conversations
        .list(&user_id("bob"), &list_query(everything(), start(), 10))
        .await
        .expect("listing");
    assert_eq!(page.total, 0, "a refused conversation is listed");
}

/// `get` of an unknown conversation id and `get_by_session` of an unknown session
/// id are `RepoError::NotFound`.
pub async fn an_unknown_conversation_or_session_is_not_found(r: Repositories) {
    let known = create(&r, "ana", "alpha", at(0)).await;
    assert_not_found(
        r.conversations
            .get(ConversationId::from_uuid(uuid::Uuid::now_v7()))
            .await,
        "an unknown conversation",
    );
    assert_not_found(
        r.conversations
            .get_by_session(SessionId::from_uuid(uuid::Uuid::now_v7()))
            .await,
        "an unknown session",
    );
    assert_not_found(
        r.conversations
            .get_by_session(SessionId::from_uuid(known.id.as_uuid()))
            .await,
        "a conversation id used as a session id",
    );
}

/// A user's list holds their own conversations only; a user with none gets an
/// empty page.
pub async fn listing_shows_only_the_users_own_conversations(r: Repositories) {
    let mut anas = Vec::new();
    for n in 0..3 {
        anas.push(create(&r, "ana", "alpha", at(n)).await);
    }
    for n in 0..2 {
        create(&r, "bob", "alpha", at(10 + n)).await;
    }
    sorted_for_list(&mut anas);
    let page = r
        .conversations
        .list(&user_id("ana"), &list_query(everything(), start(), 20))
        .await
        .expect("listing");
    assert_eq!(page.conversations, anas);
    assert_eq!(page.total, 3);
    assert!(!page.has_more);

    let none = r
        .conversations
        .list(&user_id("carl"), &list_query(everything(), start(), 20))
        .await
        .expect("a user without conversations is no error");
    assert!(none.conversations.is_empty());
    assert_eq!(none.total, 0);
    assert!(!none.has_more);
    assert_eq!(none.next_cursor, None);
}

/// Filters by bot, by status and by both select exactly the matching
/// conversations, and `total` counts them.
pub async fn listing_filters_by_bot_and_by_status_and_by_both(r: Repositories) {
    let mut all = Vec::new();
    let plan = [
        ("alpha", false),
        ("alpha", false),
        ("alpha", true),
        ("beta", false),
        ("beta", true),
        ("beta", true),
    ];
    for (n, (bot, archived)) in plan.into_iter().enumerate() {
        let offset = i64::try_from(n).expect("small");
        let conversation = create(&r, "ana", bot, at(offset)).await;
        let conversation = if archived {
            archive(&r, conversation.id).await
        } else {
            conversation
        };
        all.push(conversation);
    }
    create(&r, "bob", "alpha", at(50)).await;

    let cases = [
        (None, None),
        (Some("alpha"), None),
        (Some("beta"), None),
        (None, Some(ConversationStatus::Archived)),
        (None, Some(ConversationStatus::Active)),
        (Some("alpha"), Some(ConversationStatus::Archived)),
        (Some("beta"), Some(ConversationStatus::Active)),
        (Some("gamma"), None),
    ];
    for (bot, status) in cases {
        let filter = ConversationFilter {
            bot_id: bot.map(bot_id),
            status,
        };
        let mut expected: Vec<Conversation> = all
            .iter()
            .filter(|c| bot.is_none_or(|b| c.bot_id.as_str() == b))
            .filter(|c| status.is_none_or(|s| c.status == s))
            .cloned()
            .collect();
        sorted_for_list(&mut expected);
        let page = r
            .conversations
            .list(&user_id("ana"), &list_query(filter, start(), 20))
            .await
            .expect("listing");
        assert_eq!(
            ids(&page.conversations),
            ids(&expected),
            "filter bot {bot:?} status {status:?}"
        );
        assert_eq!(
            page.total,
            expected.len() as u64,
            "total for {bot:?} {status:?}"
        );
    }
}

/// Lists are ordered by `last_activity` descending, then by id descending.
pub async fn listing_orders_by_last_activity_then_id_descending(r: Repositories) {
    let expected = tied_conversations(&r, 10).await;
    let page = r
        .conversations
        .list(&user_id("ana"), &list_query(everything(), start(), 20))
        .await
        .expect("listing");
    assert_eq!(ids(&page.conversations), ids(&expected));
    assert_eq!(page.conversations, expected);
}

/// A message moves its conversation to the top of the list: `last_activity`
/// becomes the message's time.
pub async fn a_conversation_that_gets_a_message_moves_to_the_top_of_the_list(r: Repositories) {
    let oldest = create(&r, "ana", "alpha", at(100)).await;
    let middle = create(&r, "ana", "alpha", at(200)).await;
    let newest = create(&r, "ana", "alpha", at(300)).await;
    let query = list_query(everything(), start(), 20);
    let before = r
        .conversations
        .list(&user_id("ana"), &query)
        .await
        .expect("listing");
    assert_eq!(
        ids(&before.conversations),
        [newest.id, middle.id, oldest.id]
    );

    append(&r, &user_message(&oldest, "back again", at(400))).await;
    let after = r
        .conversations
        .list(&user_id("ana"), &query)
        .await
        .expect("listing");
    assert_eq!(ids(&after.conversations), [oldest.id, newest.id, middle.id]);
    assert_eq!(after.conversations[0].last_activity, at(400));
    assert_eq!(after.conversations[0].message_count, 1);
}

/// Offset pages walk the whole ordered list once: no conversation twice, none
/// left out, `total` on every page, `has_more` on all but the last, `next_cursor`
/// naming each page's last conversation exactly when `has_more`.
pub async fn offset_paging_walks_every_conversation_once(r: Repositories) {
    let expected = tied_conversations(&r, 23).await;
    let mut seen = Vec::new();
    let mut flags = Vec::new();
    for offset in (0..25).step_by(5) {
        let page = r
            .conversations
            .list(
                &user_id("ana"),
                &list_query(everything(), ListPosition::Offset(offset), 5),
            )
            .await
            .expect("listing");
        assert_eq!(page.total, 23, "total at offset {offset}");
        flags.push(page.has_more);
        let cursor = page.conversations.last().map(|c| ListCursor {
            last_activity: c.last_activity,
            id: c.id,
        });
        assert_eq!(
            page.next_cursor,
            cursor.filter(|_| page.has_more),
            "next_cursor at offset {offset}"
        );
        seen.extend(page.conversations);
    }
    assert_eq!(flags, [true, true, true, true, false]);
    assert_eq!(ids(&seen), ids(&expected));

    let beyond = r
        .conversations
        .list(
            &user_id("ana"),
            &list_query(everything(), ListPosition::Offset(23), 5),
        )
        .await
        .expect("an offset past the end is no error");
    assert!(beyond.conversations.is_empty());
    assert!(!beyond.has_more);
    assert_eq!(beyond.total, 23);
}

/// Cursor pages walk the whole ordered list once, across ties of `last_activity`
/// at page boundaries, and stay stable when a newer conversation appears
/// mid-walk: it shows up on no later page.
pub async fn cursor_paging_walks_every_conversation_once_and_stays_stable(r: Repositories) {
    let expected = tied_conversations(&r, 23).await;
    let mut seen = Vec::new();
    let mut position = start();
    let mut pages = 0;
    loop {
        let page = r
            .conversations
            .list(&user_id("ana"), &list_query(everything(), position, 5))
            .await
            .expect("listing");
        pages += 1;
        assert!(pages <= 5, "cursor paging does not end");
        if pages == 1 {
            create(&r, "ana", "alpha", at(10_000)).await;
        }
        assert_eq!(page.has_more, page.next_cursor.is_some(), "page {pages}");
        seen.extend(page.conversations);
        match page.next_cursor {
            Some(cursor) => position = ListPosition::After(cursor),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(ids(&seen), ids(&expected));
    let distinct: HashSet<ConversationId> = ids(&seen).into_iter().collect();
    assert_eq!(
        distinct.len(),
        seen.len(),
        "a conversation was listed twice"
    );
}

/// `total` counts every match whatever the page; `has_more` and `next_cursor` say
/// whether and where a next page starts, both for offsets and cursors.
pub async fn list_pages_report_total_has_more_and_next_cursor(r: Repositories) {
    let first = create(&r, "ana", "alpha", at(300)).await;
    let second = create(&r, "ana", "alpha", at(200)).await;
    let third = create(&r, "ana", "alpha", at(100)).await;
    let ana = user_id("ana");

    let whole = r
        .conversations
        .list(&ana, &list_query(everything(), start(), 3))
        .await
        .expect("listing");
    assert_eq!(ids(&whole.conversations), [first.id, second.id, third.id]);
    assert!(!whole.has_more);
    assert_eq!(whole.next_cursor, None);
    assert_eq!(whole.total, 3);

    let head = r
        .conversations
        .list(&ana, &list_query(everything(), start(), 2))
        .await
        .expect("listing");
    assert_eq!(ids(&head.conversations), [first.id, second.id]);
    assert!(head.has_more);
    let cursor = ListCursor {
        last_activity: at(200),
        id: second.id,
    };
    assert_eq!(head.next_cursor, Some(cursor));
    assert_eq!(head.total, 3);

    let tail = r
        .conversations
        .list(
            &ana,
            &list_query(everything(), ListPosition::After(cursor), 2),
        )
        .await
        .expect("listing");
    assert_eq!(ids(&tail.conversations), [third.id]);
    assert!(!tail.has_more);
    assert_eq!(tail.next_cursor, None);
    assert_eq!(tail.total, 3, "total counts every match, not what is left");

    let by_offset = r
        .conversations
        .list(&ana, &list_query(everything(), ListPosition::Offset(1), 1))
        .await
        .expect("listing");
    assert_eq!(ids(&by_offset.conversations), [second.id]);
    assert!(by_offset.has_more);
    assert_eq!(by_offset.next_cursor, Some(cursor));
}

/// `update` sets what the change sets, keeps everything else (counters and times
/// included), and returns the conversation as stored.
pub async fn updating_changes_status_title_and_metadata_only(r: Repositories) {
    let original = create(&r, "ana", "alpha", at(0)).await;
    append(&r, &user_message(&original, "hi", at(10))).await;
    let original = get(&r, original.id).await;

    let archived = archive(&r, original.id).await;
    let mut expected = original.clone();
    expected.status = ConversationStatus::Archived;
    assert_eq!(archived, expected);
    assert_eq!(get(&r, original.id).await, expected);

    let title = Title::parse("Renamed").expect("valid title");
    let metadata = Metadata::parse(serde_json::json!({"pinned": true})).expect("valid metadata");
    let renamed = r
        .conversations
        .update(
            original.id,
            &ConversationChange {
                status: None,
                title: Some(title.clone()),
                metadata: Some(metadata.clone()),
            },
        )
        .await
        .expect("renaming");
    expected.title = Some(title);
    expected.metadata = metadata;
    assert_eq!(renamed, expected);
    assert_eq!(get(&r, original.id).await, expected);

    let active = set_status(&r, original.id, ConversationStatus::Active).await;
    expected.status = ConversationStatus::Active;
    assert_eq!(active, expected);
}

/// Updating an unknown conversation is `RepoError::NotFound` and creates nothing.
pub async fn updating_an_unknown_conversation_is_not_found(r: Repositories) {
    let unknown = ConversationId::from_uuid(uuid::Uuid::now_v7());
    let change = ConversationChange {
        status: Some(ConversationStatus::Archived),
        title: Some(Title::parse("ghost").expect("valid title")),
        metadata: None,
    };
    assert_not_found(r.conversations.update(unknown, &change).await, "update");
    assert_not_found(r.conversations.get(unknown).await, "after the update");
}

/// `delete` erases the conversation, its session and all its messages; the next
/// append to it is `RepoError::NotFound`; a second delete is `RepoError::NotFound`;
/// other conversations keep everything.
pub async fn deleting_erases_the_conversation_its_session_and_messages(r: Repositories) {
    let doomed = create(&r, "ana", "alpha", at(0)).await;
    let kept = create(&r, "ana", "alpha", at(1)).await;
    let question = append(&r, &user_message(&doomed, "q", at(10))).await;
    let answer = append(&r, &bot_reply(&doomed, &question, "a", at(11))).await;
    for n in 0..3 {
        append(&r, &user_message(&kept, &format!("keep {n}"), at(20 + n))).await;
    }
    let kept = get(&r, kept.id).await;

    r.conversations
        .delete(doomed.id)
        .await
        .expect("deleting a conversation");

    assert_not_found(r.conversations.get(doomed.id).await, "the conversation");
    assert_not_found(
        r.conversations.get_by_session(doomed.session_id).await,
        "the conversation by session",
    );
    assert_not_found(r.sessions.get(doomed.session_id).await, "the session");
    let left = history(&r, doomed.id, None, None, 100).await;
    assert!(
        left.messages.is_empty() && !left.has_more,
        "messages remain"
    );
    for message in [question.id, answer.id] {
        assert_not_found(r.messages.get(doomed.id, message).await, "a message");
    }
    assert_not_found(
        r.messages
            .append(&user_message(&doomed, "hello?", at(30)))
            .await,
        "an append after delete",
    );
    let listed = r
        .conversations
        .list(&user_id("ana"), &list_query(everything(), start(), 20))
        .await
        .expect("listing");
    assert_eq!(ids(&listed.conversations), [kept.id]);
    assert_eq!(listed.total, 1);
    assert_not_found(r.conversations.delete(doomed.id).await, "a second delete");

    assert_eq!(get(&r, kept.id).await, kept);
    assert_eq!(super::seqs(&all_messages(&r, kept.id).await), [1, 2, 3]);
    assert!(r.sessions.get(kept.session_id).await.is_ok());
}

/// Deleting a conversation that does not exist is `RepoError::NotFound`.
pub async fn deleting_an_unknown_conversation_is_not_found(r: Repositories) {
    create(&r, "ana", "alpha", at(0)).await;
    assert_not_found(
        r.conversations
            .delete(ConversationId::from_uuid(uuid::Uuid::now_v7()))
            .await,
        "delete",
    );
}

/// `with_pending_replies` names the conversations whose `replied_seq` is below
/// `last_user_seq`, oldest activity first, at most `limit` of them.
pub async fn conversations_with_pending_replies_are_listed_oldest_activity_first(r: Repositories) {
    assert!(
        r.conversations
            .with_pending_replies(10)
            .await
            .expect("none pending is no error")
            .is_empty()
    );
    let recent = create(&r, "ana", "alpha", at(0)).await;
    let answered = create(&r, "ana", "alpha", at(1)).await;
    let silent = create(&r, "ana", "alpha", at(2)).await;
    let early = create(&r, "bob", "beta", at(3)).await;
    let half = create(&r, "ana", "alpha", at(4)).await;

    append(&r, &user_message(&early, "first", at(10))).await;
    let q = append(&r, &user_message(&answered, "q", at(20))).await;
    append(&r, &bot_reply(&answered, &q, "a", at(21))).await;
    let q1 = append(&r, &user_message(&half, "q1", at(30))).await;
    append(&r, &user_message(&half, "q2", at(31))).await;
    append(&r, &bot_reply(&half, &q1, "a1", at(32))).await;
    append(&r, &user_message(&recent, "latest", at(40))).await;
    let mut from_bot = user_message(&silent, "a bot speaks first", at(50));
    from_bot.sender = crate::message::Sender::Bot;
    append(&r, &from_bot).await;

    let pending = r
        .conversations
        .with_pending_replies(10)
        .await
        .expect("listing pending replies");
    assert_eq!(pending, [early.id, half.id, recent.id]);
    let first = r
        .conversations
        .with_pending_replies(1)
        .await
        .expect("listing pending replies");
    assert_eq!(first, [early.id]);
}
