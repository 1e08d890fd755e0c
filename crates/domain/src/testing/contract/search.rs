//! Contract checks of [`MessageRepository::search`](crate::ports::MessageRepository::search):
//! whole words in any case, every word of the query, one user's conversations only
//! (or everyone's), the bot and status filters, deleted conversations gone, and
//! paging in both orders. Every store answers the same data set with the same
//! messages, so SQLite, PostgreSQL and the in-memory store agree.

use std::collections::BTreeSet;

use crate::bot::BotId;
use crate::conversation::{ConversationChange, ConversationStatus, PageSize};
use crate::message::{Message, MessageId};
use crate::search::{SearchCursor, SearchOrder, SearchQuery, SearchScope, SearchText};

use super::{Repositories, append, at, bot_id, create, user_id, user_message};

/// The data set: three users' conversations with two bots, one archived, one
/// deleted, and messages that match `pizza` wholly, in part or not at all.
struct Found {
    /// Ana's messages with the whole word `pizza`, newest first.
    anas_pizza: Vec<MessageId>,
    /// Bo's one.
    bos_pizza: MessageId,
    /// Ana's message with both `late` and `pizza`.
    late_pizza: MessageId,
    /// Ana's message in her archived conversation with `beta`.
    archived_pizza: MessageId,
}

async fn data_set(r: &Repositories) -> Found {
    let alpha = create(r, "ana", "alpha", at(0)).await;
    let beta = create(r, "ana", "beta", at(0)).await;
    let bos = create(r, "bo", "alpha", at(0)).await;
    let gone = create(r, "ana", "alpha", at(0)).await;
    let say = |conversation, text: &'static str, time: i64| {
        let r = r.clone();
        async move { append(&r, &user_message(conversation, text, at(time))).await }
    };
    let want = say(&alpha, "I want a pizza, please.", 1_000).await;
    say(&alpha, "Pizzas and pizzerias are not it.", 2_000).await;
    let late = say(&alpha, "Is my PIZZA late?", 3_000).await;
    say(&alpha, "It is late.", 4_000).await;
    let archived = say(&beta, "pizza time", 5_000).await;
    let bos_pizza = say(&bos, "pizza for bo", 6_000).await;
    say(&gone, "a deleted pizza", 7_000).await;
    let cafe = say(&alpha, "Café pizza-party!", 8_000).await;
    r.conversations
        .update(
            beta.id,
            &ConversationChange {
                status: Some(ConversationStatus::Archived),
                ..ConversationChange::default()
            },
        )
        .await
        .expect("archiving");
    r.conversations.delete(gone.id).await.expect("deleting");
    Found {
        anas_pizza: vec![cafe.id, archived.id, late.id, want.id],
        bos_pizza: bos_pizza.id,
        late_pizza: late.id,
        archived_pizza: archived.id,
    }
}

fn query(text: &str, scope: SearchScope) -> SearchQuery {
    SearchQuery {
        text: SearchText::parse(text).expect("a valid query"),
        scope,
        bot_id: None,
        status: None,
        order: SearchOrder::Newest,
        cursor: None,
        limit: PageSize::clamped(SearchQuery::MAX_LIMIT, SearchQuery::MAX_LIMIT),
    }
}

fn anas(text: &str) -> SearchQuery {
    query(text, SearchScope::User(user_id("ana")))
}

async fn ids(r: &Repositories, query: &SearchQuery) -> Vec<MessageId> {
    found(r, query).await.iter().map(|m| m.id).collect()
}

async fn found(r: &Repositories, query: &SearchQuery) -> Vec<Message> {
    r.messages.search(query).await.expect("searching")
}

/// A word matches whole and in any case; a part of a word does not; every word of
/// the query must be there; the newest message comes first.
pub async fn search_finds_whole_words_in_any_case_newest_first(r: Repositories) {
    let expected = data_set(&r).await;
    assert_eq!(ids(&r, &anas("pizza")).await, expected.anas_pizza);
    assert_eq!(ids(&r, &anas("PIZZA")).await, expected.anas_pizza);
    assert_eq!(ids(&r, &anas("late pizza")).await, [expected.late_pizza]);
    assert_eq!(ids(&r, &anas("pizz")).await, []);
    assert_eq!(ids(&r, &anas("pizza nowhere")).await, []);
    let cafe = found(&r, &anas("café")).await;
    assert_eq!(cafe.len(), 1);
    assert_eq!(cafe[0].content.as_str(), "Café pizza-party!");
    assert_eq!(ids(&r, &anas("party")).await, [cafe[0].id]);
}

/// A user's search covers their conversations only; everyone's covers all; a
/// deleted conversation is gone from both.
pub async fn search_keeps_to_its_scope_and_forgets_deleted_conversations(r: Repositories) {
    let expected = data_set(&r).await;
    assert_eq!(
        ids(&r, &query("pizza", SearchScope::User(user_id("bo")))).await,
        [expected.bos_pizza]
    );
    assert_eq!(
        ids(&r, &query("pizza", SearchScope::User(user_id("cy")))).await,
        []
    );
    let everyone = ids(&r, &query("pizza", SearchScope::Everyone)).await;
    let mut all = expected.anas_pizza.clone();
    all.insert(1, expected.bos_pizza);
    assert_eq!(everyone, all);
    assert_eq!(ids(&r, &anas("deleted")).await, []);
}

/// The bot and status filters narrow the conversations searched.
pub async fn search_filters_by_bot_and_status(r: Repositories) {
    let expected = data_set(&r).await;
    let with_beta = SearchQuery {
        bot_id: Some(bot_id("beta")),
        ..anas("pizza")
    };
    assert_eq!(ids(&r, &with_beta).await, [expected.archived_pizza]);
    let active = SearchQuery {
        status: Some(ConversationStatus::Active),
        ..anas("pizza")
    };
    let mut without_archived = expected.anas_pizza.clone();
    without_archived.retain(|id| *id != expected.archived_pizza);
    assert_eq!(ids(&r, &active).await, without_archived);
    let nobody = SearchQuery {
        bot_id: Some(BotId::parse("gamma").expect("a bot id")),
        ..anas("pizza")
    };
    assert_eq!(ids(&r, &nobody).await, []);
}

/// Pages of one walk every match once: newest first after a cursor naming the last
/// message seen, by rank after an offset. A store returns one more than the limit.
pub async fn search_pages_walk_every_match_once_in_both_orders(r: Repositories) {
    let expected = data_set(&r).await;
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page = found(
            &r,
            &SearchQuery {
                cursor,
                limit: PageSize::clamped(1, SearchQuery::MAX_LIMIT),
                ..anas("pizza")
            },
        )
        .await;
        assert!(page.len() <= 2, "at most limit + 1");
        let Some(first) = page.first() else { break };
        walked.push(first.id);
        if page.len() < 2 {
            break;
        }
        cursor = Some(SearchCursor::Before {
            timestamp: first.timestamp,
            id: first.id,
        });
    }
    assert_eq!(walked, expected.anas_pizza);

    let mut ranked = BTreeSet::new();
    for skip in 0..4 {
        let page = found(
            &r,
            &SearchQuery {
                order: SearchOrder::Rank,
                cursor: Some(SearchCursor::Offset(skip)),
                limit: PageSize::clamped(1, SearchQuery::MAX_LIMIT),
                ..anas("pizza")
            },
        )
        .await;
        assert_eq!(page.len(), if skip < 3 { 2 } else { 1 }, "offset {skip}");
        ranked.insert(page[0].id);
    }
    let all: BTreeSet<MessageId> = expected.anas_pizza.iter().copied().collect();
    assert_eq!(ranked, all, "rank order visits every match once");
}
