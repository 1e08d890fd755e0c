//! Contract checks of [`MessageRepository::search`](crate::ports::MessageRepository::search):
//! whole words in any case, every word of the query, one user's conversations only
//! (or everyone's), the bot and status filters, deleted conversations gone, paging
//! in both orders, and newest first by time even where messages were stored in
//! another order. Every store answers the same data set with the same messages, so
//! SQLite, PostgreSQL and the in-memory store agree.

use std::collections::BTreeSet;

use crate::bot::BotId;
use crate::conversation::{ConversationStatus, PageSize};
use crate::message::{Message, MessageId};
use crate::search::{SearchCursor, SearchOrder, SearchQuery, SearchScope, SearchText};

use super::{Repositories, append, at, bot_id, create, set_status, user_id, user_message};

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
    set_status(r, beta.id, ConversationStatus::Archived).await;
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

/// Every match of `query`, newest first, walked in pages of `limit` with the cursor a
/// client sends: the last message of the page. A store returns one more than the
/// limit to tell that another page follows.
async fn walk_newest_first(r: &Repositories, query: &SearchQuery, limit: u32) -> Vec<MessageId> {
    let size = limit as usize;
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page = found(
            r,
            &SearchQuery {
                cursor,
                limit: PageSize::clamped(limit, SearchQuery::MAX_LIMIT),
                ..query.clone()
            },
        )
        .await;
        assert!(page.len() <= size + 1, "at most limit + 1");
        walked.extend(page.iter().take(size).map(|m| m.id));
        let Some(last) = page.get(size - 1).filter(|_| page.len() > size) else {
            break;
        };
        cursor = Some(SearchCursor::Before {
            timestamp: last.timestamp,
            id: last.id,
        });
    }
    walked
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
    assert_eq!(
        walk_newest_first(&r, &anas("pizza"), 1).await,
        expected.anas_pizza
    );

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

/// Newest first means by time whatever order messages were stored in: a store that
/// reads its index in the order of storage must not take it for the order of time.
/// Ana's conversation with the newest messages is stored first, then one with the
/// oldest, then one in between; Bo's next, with times among Ana's newest; Cy's few
/// newest before everything, and his many older ones after everything. Times are
/// shared by several messages, words are spread unevenly (`anchovies` only among the
/// oldest), and every page is checked, as well as the walk through all of them.
pub async fn search_finds_the_newest_matches_whatever_order_they_were_stored_in(r: Repositories) {
    let newest = create(&r, "ana", "alpha", at(0)).await;
    let oldest = create(&r, "ana", "beta", at(0)).await;
    let between = create(&r, "ana", "alpha", at(0)).await;
    let bos = create(&r, "bo", "alpha", at(0)).await;
    let cys_newest = create(&r, "cy", "alpha", at(0)).await;
    let cys_older = create(&r, "cy", "alpha", at(0)).await;
    // Each message with its conversation's user and bot.
    let mut stored: Vec<(&str, &str, Message)> = Vec::new();
    for (conversation, count, time) in [
        (&cys_newest, 10, (|n| 3_000_000 + n * 10) as fn(i64) -> i64),
        (&newest, 150, |n| 2_000_000 + n / 3 * 10),
        (&oldest, 150, |n| n / 3 * 10),
        (&between, 150, |n| 1_000_000 + n / 2 * 15),
        (&bos, 30, |n| 2_000_000 + n * 10),
        (&cys_older, 200, |n| 2_500_000 + n * 10),
    ] {
        for n in 0..count {
            let text = match n % 10 {
                0 if conversation.id == oldest.id => "pizza with anchovies",
                0 => "pizza with olives",
                n if n % 2 == 0 => "pizza",
                _ => "salad",
            };
            let message = append(&r, &user_message(conversation, text, at(time(n)))).await;
            stored.push((
                conversation.user_id.as_str(),
                conversation.bot_id.as_str(),
                message,
            ));
        }
    }
    let expected = |query: &SearchQuery| {
        let mut matches: Vec<&Message> = stored
            .iter()
            .filter(|(user, bot, message)| {
                let in_scope = match &query.scope {
                    SearchScope::User(wanted) => wanted.as_str() == *user,
                    SearchScope::Everyone => true,
                };
                in_scope
                    && query
                        .bot_id
                        .as_ref()
                        .is_none_or(|wanted| wanted.as_str() == *bot)
                    && query.text.matches(message.content.as_str())
            })
            .map(|(_, _, message)| message)
            .collect();
        matches.sort_by_key(|message| std::cmp::Reverse((message.timestamp, message.id)));
        matches
            .into_iter()
            .map(|message| message.id)
            .collect::<Vec<_>>()
    };
    let scopes = [
        SearchScope::User(user_id("ana")),
        SearchScope::User(user_id("bo")),
        SearchScope::User(user_id("cy")),
        SearchScope::Everyone,
    ];
    for scope in scopes {
        for words in ["pizza", "salad", "olives", "pizza olives", "anchovies"] {
            for bot in [None, Some(bot_id("beta"))] {
                let everything = SearchQuery {
                    bot_id: bot,
                    ..query(words, scope.clone())
                };
                let all = expected(&everything);
                for limit in [1, 20, SearchQuery::MAX_LIMIT] {
                    let first = SearchQuery {
                        limit: PageSize::clamped(limit, SearchQuery::MAX_LIMIT),
                        ..everything.clone()
                    };
                    let wanted = all.len().min(limit as usize + 1);
                    assert_eq!(
                        ids(&r, &first).await,
                        all[..wanted],
                        "{words:?} in {scope:?}, bot {:?}, limit {limit}",
                        first.bot_id
                    );
                }
                assert_eq!(
                    walk_newest_first(&r, &everything, 20).await,
                    all,
                    "{words:?} in {scope:?}, every page"
                );
            }
        }
    }
}
