//! Bad input of every kind gets a problem details answer, and changes nothing.

use serde_json::{Value, json};

use crate::helpers::{TestApp, conversation_with_exchanges, spawn_app};

/// A conversation with one exchange, and its history as it stands.
async fn settled_conversation(app: &TestApp, token: &str) -> (String, Value) {
    let id = conversation_with_exchanges(app, token, 1).await;
    let history = app.history(token, &id, "").await.body;
    (id, history)
}

#[tokio::test]
async fn malformed_json_is_an_invalid_request_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, before) = settled_conversation(&app, &token).await;
    for body in [r#"{"content": "#, "not json", "[1,2]", r#""text""#, ""] {
        app.send_raw(&token, &id, "", body.to_owned())
            .await
            .assert_problem(400, "invalid_request");
    }
    assert_eq!(app.history(&token, &id, "").await.body, before);
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_invalid_requests_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, before) = settled_conversation(&app, &token).await;
    for body in [
        json!({"content": 5}),
        json!({"content": "x", "attachments": "none"}),
        json!({"content": "x", "client_message_id": 1}),
        json!({"attachments": []}),
        json!({}),
    ] {
        let response = app.send(&token, &id, "", body).await;
        response.assert_problem(400, "invalid_request");
    }
    let missing = app.send(&token, &id, "", json!({})).await;
    assert!(
        missing.str("detail").contains("content"),
        "the detail names the field: {}",
        missing.body
    );
    assert_eq!(app.history(&token, &id, "").await.body, before);
}

#[tokio::test]
async fn content_over_16_kib_is_payload_too_large_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, before) = settled_conversation(&app, &token).await;
    let response = app
        .send(&token, &id, "", json!({"content": "a".repeat(17 * 1024)}))
        .await;
    response.assert_problem(413, "payload_too_large");
    assert_eq!(app.history(&token, &id, "").await.body, before);
}

#[tokio::test]
async fn a_body_over_64_kib_is_payload_too_large_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, before) = settled_conversation(&app, &token).await;
    let huge = json!({"content": "a", "metadata": {"blob": "b".repeat(70 * 1024)}});
    app.send(&token, &id, "", huge)
        .await
        .assert_problem(413, "payload_too_large");
    let start = app
        .start(
            &token,
            "",
            json!({"bot_id": "echo", "title": "t".repeat(70 * 1024)}),
        )
        .await;
    start.assert_problem(413, "payload_too_large");
    assert_eq!(app.history(&token, &id, "").await.body, before);
    assert_eq!(app.list(&token, "").await.body["total"], 1);
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_an_invalid_request() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    for bad in ["not-a-uuid", "123", "0193a0f0-0000-7000-8000-00000000000z"] {
        app.get_conversation(&token, bad)
            .await
            .assert_problem(400, "invalid_request");
        app.history(&token, bad, "")
            .await
            .assert_problem(400, "invalid_request");
        app.send(&token, bad, "", json!({"content": "hi"}))
            .await
            .assert_problem(400, "invalid_request");
        app.patch(&token, bad, json!({"title": "x"}))
            .await
            .assert_problem(400, "invalid_request");
        app.delete(&token, bad)
            .await
            .assert_problem(400, "invalid_request");
    }
    assert_eq!(app.ports.store.message_count(), 0);
}

#[tokio::test]
async fn a_well_formed_but_unknown_conversation_id_is_not_found() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let unknown = "0193a0f0-0000-7000-8000-000000000001";
    app.get_conversation(&token, unknown)
        .await
        .assert_problem(404, "not_found");
    app.send(&token, unknown, "", json!({"content": "hi"}))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn history_limits_outside_1_to_100_are_invalid_requests() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, _) = settled_conversation(&app, &token).await;
    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=10000",
        "?limit=-1",
        "?limit=ten",
        "?limit=99999999999999999999999",
    ] {
        app.history(&token, &id, query)
            .await
            .assert_problem(400, "invalid_request");
    }
    app.history(&token, &id, "?limit=100")
        .await
        .assert_status(200);
}

#[tokio::test]
async fn history_cursors_that_are_garbage_are_invalid_requests() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, _) = settled_conversation(&app, &token).await;
    for query in [
        "?before=garbage",
        "?after=garbage",
        "?before=",
        "?after=2026-13-45T99:00:00Z",
        // A message id that is not in this conversation.
        "?before=0193a0f0-0000-7000-8000-000000000009",
    ] {
        app.history(&token, &id, query)
            .await
            .assert_problem(400, "invalid_request");
    }
}

#[tokio::test]
async fn list_parameters_out_of_range_or_unknown_are_invalid_requests() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    app.started(&token).await;
    for query in [
        "?limit=0",
        "?limit=10000",
        "?status=foo",
        "?status=",
        "?bot_id=Not%20A%20Slug",
        "?offset=-1",
        "?cursor=garbage",
        "?offset=0&cursor=1767225600000_0193a0f0000070008000000000000001",
    ] {
        app.list(&token, query)
            .await
            .assert_problem(400, "invalid_request");
    }
}

#[tokio::test]
async fn offset_and_cursor_together_are_refused() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    for _ in 0..3 {
        app.started(&token).await;
    }
    let cursor = app.list(&token, "?limit=1").await.str("next_cursor");
    let response = app
        .list(&token, &format!("?offset=1&cursor={cursor}"))
        .await;
    response.assert_problem(400, "invalid_request");
    assert!(response.str("detail").contains("offset"));
}

#[tokio::test]
async fn wait_must_be_a_boolean() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    app.send(&token, &id, "?wait=soon", json!({"content": "hi"}))
        .await
        .assert_problem(400, "invalid_request");
    assert_eq!(app.ports.store.message_count(), 0);
}
