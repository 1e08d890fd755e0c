//! Contract checks of [`MessageRepository::history`](crate::ports::MessageRepository::history):
//! every paging case of DESIGN.md §4. Bounds are exclusive; a page is oldest first;
//! with no bound or `before` alone it holds the newest `limit` messages and
//! `has_more` tells whether older ones exist; with `after` (and maybe `before`) it
//! holds the oldest `limit` and `has_more` tells whether newer ones exist within the
//! bounds.

use crate::conversation::ConversationId;
use crate::message::HistoryPage;

use super::{Repositories, at, conversation_with, create, history, seq, seqs, time};

/// A conversation whose message `n` (seq `n`) was sent at offset `10 * n`.
async fn ten_messages(r: &Repositories) -> ConversationId {
    let times: Vec<_> = (1..=10).map(|n| at(10 * n)).collect();
    conversation_with(r, &times).await.0.id
}

#[track_caller]
fn assert_page(page: &HistoryPage, expected: &[u64], has_more: bool, case: &str) {
    assert_eq!(seqs(&page.messages), expected, "{case}: wrong messages");
    assert_eq!(page.has_more, has_more, "{case}: wrong has_more");
}

/// With no bound, a page holds the newest `limit` messages, oldest first, and
/// `has_more` tells whether older ones exist.
pub async fn history_without_bounds_returns_the_newest_messages_oldest_first(r: Repositories) {
    let id = ten_messages(&r).await;
    assert_page(
        &history(&r, id, None, None, 4).await,
        &[7, 8, 9, 10],
        true,
        "limit 4",
    );
    assert_page(
        &history(&r, id, None, None, 9).await,
        &[2, 3, 4, 5, 6, 7, 8, 9, 10],
        true,
        "limit 9",
    );
    let all: Vec<u64> = (1..=10).collect();
    assert_page(
        &history(&r, id, None, None, 10).await,
        &all,
        false,
        "limit 10",
    );
    assert_page(
        &history(&r, id, None, None, 50).await,
        &all,
        false,
        "limit 50",
    );
}

/// `before=seq` gives the newest `limit` messages with a smaller seq, oldest first;
/// `has_more` tells whether still older ones exist.
pub async fn history_before_a_seq_returns_the_newest_older_messages_oldest_first(r: Repositories) {
    let id = ten_messages(&r).await;
    assert_page(
        &history(&r, id, seq(8), None, 3).await,
        &[5, 6, 7],
        true,
        "before 8",
    );
    assert_page(
        &history(&r, id, seq(4), None, 3).await,
        &[1, 2, 3],
        false,
        "before 4",
    );
    assert_page(
        &history(&r, id, seq(4), None, 5).await,
        &[1, 2, 3],
        false,
        "before 4, limit 5",
    );
    assert_page(
        &history(&r, id, seq(2), None, 3).await,
        &[1],
        false,
        "before 2",
    );
    assert_page(
        &history(&r, id, seq(1), None, 3).await,
        &[],
        false,
        "before 1",
    );
    assert_page(
        &history(&r, id, seq(99), None, 2).await,
        &[9, 10],
        true,
        "before 99",
    );
}

/// `after=seq` gives the oldest `limit` messages with a greater seq, oldest first;
/// `has_more` tells whether still newer ones exist.
pub async fn history_after_a_seq_returns_the_oldest_newer_messages_oldest_first(r: Repositories) {
    let id = ten_messages(&r).await;
    assert_page(
        &history(&r, id, None, seq(2), 3).await,
        &[3, 4, 5],
        true,
        "after 2",
    );
    assert_page(
        &history(&r, id, None, seq(7), 3).await,
        &[8, 9, 10],
        false,
        "after 7",
    );
    assert_page(
        &history(&r, id, None, seq(8), 3).await,
        &[9, 10],
        false,
        "after 8",
    );
    assert_page(
        &history(&r, id, None, seq(10), 3).await,
        &[],
        false,
        "after 10",
    );
    assert_page(
        &history(&r, id, None, seq(0), 1).await,
        &[1],
        true,
        "after 0, limit 1",
    );
    let all: Vec<u64> = (1..=10).collect();
    assert_page(
        &history(&r, id, None, seq(0), 10).await,
        &all,
        false,
        "after 0, limit 10",
    );
}

/// With both bounds a page holds the oldest `limit` messages strictly between them;
/// `has_more` tells whether more exist between them after the page. Seq and time
/// bounds mix.
pub async fn history_between_two_bounds_returns_the_oldest_messages_between_them(r: Repositories) {
    let id = ten_messages(&r).await;
    assert_page(
        &history(&r, id, seq(9), seq(2), 3).await,
        &[3, 4, 5],
        true,
        "2..9, limit 3",
    );
    assert_page(
        &history(&r, id, seq(9), seq(2), 5).await,
        &[3, 4, 5, 6, 7],
        true,
        "2..9, limit 5",
    );
    assert_page(
        &history(&r, id, seq(9), seq(2), 6).await,
        &[3, 4, 5, 6, 7, 8],
        false,
        "2..9, limit 6",
    );
    assert_page(
        &history(&r, id, seq(9), seq(2), 50).await,
        &[3, 4, 5, 6, 7, 8],
        false,
        "2..9, limit 50",
    );
    assert_page(
        &history(&r, id, seq(6), seq(5), 3).await,
        &[],
        false,
        "5..6",
    );
    assert_page(
        &history(&r, id, time(60), time(20), 50).await,
        &[3, 4, 5],
        false,
        "by time",
    );
    assert_page(
        &history(&r, id, time(60), seq(3), 1).await,
        &[4],
        true,
        "after a seq, before a time",
    );
    assert_page(
        &history(&r, id, seq(6), time(30), 5).await,
        &[4, 5],
        false,
        "after a time, before a seq",
    );
}

/// Time bounds are exclusive and compare the stored timestamps: with four messages
/// at the same instant, `before` that instant excludes all four and `after` it
/// skips all four; seq bounds stay exact between them.
pub async fn history_time_bounds_are_exclusive_even_when_timestamps_tie(r: Repositories) {
    let times = [
        at(100),
        at(200),
        at(200),
        at(200),
        at(200),
        at(300),
        at(300),
        at(400),
    ];
    let (conversation, _) = conversation_with(&r, &times).await;
    let id = conversation.id;
    assert_page(
        &history(&r, id, time(200), None, 10).await,
        &[1],
        false,
        "before the tie",
    );
    assert_page(
        &history(&r, id, time(201), None, 2).await,
        &[4, 5],
        true,
        "just after the tie, backwards",
    );
    assert_page(
        &history(&r, id, time(201), None, 10).await,
        &[1, 2, 3, 4, 5],
        false,
        "up to the tie",
    );
    assert_page(
        &history(&r, id, None, time(200), 10).await,
        &[6, 7, 8],
        false,
        "after the tie",
    );
    assert_page(
        &history(&r, id, None, time(199), 3).await,
        &[2, 3, 4],
        true,
        "into the tie",
    );
    assert_page(
        &history(&r, id, time(300), time(100), 10).await,
        &[2, 3, 4, 5],
        false,
        "the tie alone",
    );
    assert_page(
        &history(&r, id, time(300), time(100), 2).await,
        &[2, 3],
        true,
        "half the tie",
    );
    assert_page(
        &history(&r, id, None, time(400), 10).await,
        &[],
        false,
        "after the last",
    );
    assert_page(
        &history(&r, id, time(100), None, 10).await,
        &[],
        false,
        "before the first",
    );
    assert_page(
        &history(&r, id, None, seq(3), 1).await,
        &[4],
        true,
        "a seq inside the tie",
    );
    assert_page(
        &history(&r, id, seq(4), None, 10).await,
        &[1, 2, 3],
        false,
        "before a seq inside the tie",
    );
}

/// In a 61-message conversation whose times tie in runs and jump, every time bound
/// in either direction, one step off every message's time and on it, finds exactly
/// the messages whose times the bound admits. A store may find them by seq (a
/// conversation's times never decrease in seq order), so both ends, each run of
/// ties and each jump are where it would go wrong.
pub async fn history_time_bounds_find_what_comparing_every_time_finds(r: Repositories) {
    // Times 0, 0, 0, 5, 5, 5, 10, … in runs of three, with a jump of 1000 halfway.
    let offset = |n: i64| (n - 1) / 3 * 5 + if n > 30 { 1000 } else { 0 };
    let times: Vec<_> = (1..=61).map(|n| at(offset(n))).collect();
    let (conversation, _) = conversation_with(&r, &times).await;
    let id = conversation.id;
    let mut bounds: Vec<i64> = (1..=61).map(offset).flat_map(|t| [t, t + 1]).collect();
    bounds.extend([1, 4, 1004, 1200]);
    bounds.sort_unstable();
    bounds.dedup();
    for bound in bounds {
        let seqs_where = |admitted: &dyn Fn(i64) -> bool| -> Vec<u64> {
            (1..=61)
                .filter(|&n| admitted(offset(n)))
                .map(i64::unsigned_abs)
                .collect()
        };
        let older = seqs_where(&|t| t < bound);
        let newer = seqs_where(&|t| t > bound);
        assert_page(
            &history(&r, id, time(bound), None, 100).await,
            &older,
            false,
            &format!("before {bound}"),
        );
        assert_page(
            &history(&r, id, None, time(bound), 100).await,
            &newer,
            false,
            &format!("after {bound}"),
        );
    }
}

/// A conversation without messages has an empty history, with any bounds.
pub async fn history_of_an_empty_conversation_is_an_empty_page(r: Repositories) {
    let id = create(&r, "ana", "alpha", at(0)).await.id;
    assert_page(
        &history(&r, id, None, None, 50).await,
        &[],
        false,
        "no bound",
    );
    assert_page(
        &history(&r, id, seq(5), None, 50).await,
        &[],
        false,
        "before",
    );
    assert_page(
        &history(&r, id, None, seq(0), 50).await,
        &[],
        false,
        "after",
    );
    assert_page(
        &history(&r, id, time(500), time(0), 50).await,
        &[],
        false,
        "between times",
    );
}

/// The history of a conversation that does not exist is an empty page, not an
/// error.
pub async fn history_of_an_unknown_conversation_is_an_empty_page(r: Repositories) {
    ten_messages(&r).await;
    let unknown = ConversationId::from_uuid(uuid::Uuid::now_v7());
    assert_page(
        &history(&r, unknown, None, None, 50).await,
        &[],
        false,
        "no bound",
    );
    assert_page(
        &history(&r, unknown, None, seq(0), 50).await,
        &[],
        false,
        "after",
    );
}

/// Pages of the smallest (1) and the largest (100) size, at both ends of a
/// 150-message conversation.
pub async fn history_pages_of_one_and_of_one_hundred_messages(r: Repositories) {
    let times: Vec<_> = (1..=150).map(at).collect();
    let (conversation, _) = conversation_with(&r, &times).await;
    let id = conversation.id;
    let range = |from: u64, to: u64| (from..=to).collect::<Vec<u64>>();
    assert_page(
        &history(&r, id, None, None, 1).await,
        &[150],
        true,
        "newest one",
    );
    assert_page(
        &history(&r, id, None, seq(0), 1).await,
        &[1],
        true,
        "oldest one",
    );
    assert_page(
        &history(&r, id, seq(2), None, 1).await,
        &[1],
        false,
        "one before 2",
    );
    assert_page(
        &history(&r, id, None, seq(149), 1).await,
        &[150],
        false,
        "one after 149",
    );
    assert_page(
        &history(&r, id, None, None, 100).await,
        &range(51, 150),
        true,
        "newest hundred",
    );
    assert_page(
        &history(&r, id, seq(51), None, 100).await,
        &range(1, 50),
        false,
        "before 51",
    );
    assert_page(
        &history(&r, id, seq(101), None, 100).await,
        &range(1, 100),
        false,
        "exactly a hundred older",
    );
    assert_page(
        &history(&r, id, None, seq(0), 100).await,
        &range(1, 100),
        true,
        "oldest hundred",
    );
    assert_page(
        &history(&r, id, None, seq(50), 100).await,
        &range(51, 150),
        false,
        "exactly a hundred newer",
    );
    assert_page(
        &history(&r, id, None, seq(49), 100).await,
        &range(50, 149),
        true,
        "a hundred and one newer",
    );
}

/// Walking back with `before` = the oldest seq seen, and forward with `after` = the
/// newest, visits every message exactly once; `has_more` is true on every page but
/// the last in each direction.
pub async fn paging_backwards_and_forwards_visits_every_message_once(r: Repositories) {
    let times: Vec<_> = (1..=25).map(|n| at(n / 3)).collect();
    let (conversation, _) = conversation_with(&r, &times).await;
    let id = conversation.id;

    let mut backwards = Vec::new();
    let mut flags = Vec::new();
    let mut before = None;
    loop {
        let page = history(&r, id, before, None, 7).await;
        let first = page.messages.first().map(|m| m.seq.get());
        flags.push(page.has_more);
        let mut older = seqs(&page.messages);
        older.extend(backwards);
        backwards = older;
        match first {
            Some(first) if page.has_more => before = seq(first),
            _ => break,
        }
    }
    assert_eq!(backwards, (1..=25).collect::<Vec<u64>>(), "walking back");
    assert_eq!(flags, [true, true, true, false], "has_more walking back");

    let mut forwards = Vec::new();
    let mut flags = Vec::new();
    let mut after = seq(0);
    loop {
        let page = history(&r, id, None, after, 7).await;
        let last = page.messages.last().map(|m| m.seq.get());
        flags.push(page.has_more);
        forwards.extend(seqs(&page.messages));
        match last {
            Some(last) if page.has_more => after = seq(last),
            _ => break,
        }
    }
    assert_eq!(forwards, (1..=25).collect::<Vec<u64>>(), "walking forward");
    assert_eq!(flags, [true, true, true, false], "has_more walking forward");

    assert_page(
        &history(&r, id, None, seq(18), 7).await,
        &[19, 20, 21, 22, 23, 24, 25],
        false,
        "a last page that is full",
    );
    assert_page(
        &history(&r, id, seq(8), None, 7).await,
        &[1, 2, 3, 4, 5, 6, 7],
        false,
        "a first page that is full",
    );
}
