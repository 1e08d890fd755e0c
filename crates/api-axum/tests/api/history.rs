//! Paging through a conversation's history with `before` and `after` cursors.

use crate::helpers::{conversation_with_exchanges, seqs, spawn_app};

#[tokio::test]
async fn history_pages_back_with_before_and_forward_with_after() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = conversation_with_exchanges(&app, &token, 3).await;

    let newest = app.history(&token, &id, "?limit=2").await;
    assert_eq!(seqs(&newest), [5, 6]);
    assert_eq!(newest.body["has_more"], true);

    let older = app.history(&token, &id, "?limit=2&before=5").await;
    assert_eq!(seqs(&older), [3, 4]);
    assert_eq!(older.body["has_more"], true);

    let oldest = app.history(&token, &id, "?limit=2&before=3").await;
    assert_eq!(seqs(&oldest), [1, 2]);
    assert_eq!(oldest.body["has_more"], false);

    let after = app.history(&token, &id, "?limit=2&after=2").await;
    assert_eq!(seqs(&after), [3, 4]);
    assert_eq!(after.body["has_more"], true);

    let between = app.history(&token, &id, "?after=1&before=4").await;
    assert_eq!(seqs(&between), [2, 3]);
}

#[tokio::test]
async fn history_cursors_may_be_message_ids_or_timestamps() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = conversation_with_exchanges(&app, &token, 2).await;
    let all = app.history(&token, &id, "").await;
    let third = &all.body["messages"][2];

    let by_id = app
        .history(
            &token,
            &id,
            &format!("?before={}", third["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(seqs(&by_id), [1, 2]);

    let by_time = app
        .history(
            &token,
            &id,
            &format!("?after={}", third["timestamp"].as_str().expect("timestamp")),
        )
        .await;
    assert_eq!(seqs(&by_time), [4]);
}
