//! Sending messages: idempotency by `client_message_id` or `Idempotency-Key`,
//! attachments, and waiting for the bot's replies.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use confab_api_axum::ApiConfig;
use confab_domain::testing::{ScriptedEngine, TestPorts};
use serde_json::{Value, json};

use crate::helpers::{app_over, spawn_app};

#[tokio::test]
async fn a_retry_with_the_same_client_message_id_answers_200_with_the_original() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let body = json!({"content": "once", "client_message_id": "c-1"});

    let first = app.send(&token, &id, "?wait=true", body.clone()).await;
    first.assert_status(201);
    let retry = app.send(&token, &id, "?wait=true", body).await;
    retry.assert_status(200);

    assert_eq!(retry.body["message_id"], first.body["message_id"]);
    assert_eq!(retry.body["seq"], first.body["seq"]);
    assert_eq!(retry.body["timestamp"], first.body["timestamp"]);
    assert_eq!(retry.body["replies"], first.body["replies"]);
    // One user message and one bot reply: the retry triggered no second reply.
    assert_eq!(app.contents(&token, &id).await, ["once", "once"]);
}

#[tokio::test]
async fn the_idempotency_key_header_works_like_client_message_id() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let send = || {
        let request = Request::post(format!("/conversations/{id}/messages?wait=true"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("Idempotency-Key", "key-1")
            .body(Body::from(json!({"content": "hi"}).to_string()))
            .expect("request");
        app.send_request(request)
    };
    let first = send().await;
    first.assert_status(201);
    let retry = send().await;
    retry.assert_status(200);
    assert_eq!(retry.body["message_id"], first.body["message_id"]);

    let history = app.history(&token, &id, "").await;
    assert_eq!(history.body["messages"][0]["client_message_id"], "key-1");
    assert_eq!(
        history.body["messages"].as_array().expect("messages").len(),
        2
    );
}

#[tokio::test]
async fn an_idempotency_key_header_that_contradicts_the_body_is_refused() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let request = Request::post(format!("/conversations/{id}/messages"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("Idempotency-Key", "key-1")
        .body(Body::from(
            json!({"content": "hi", "client_message_id": "key-2"}).to_string(),
        ))
        .expect("request");
    app.send_request(request)
        .await
        .assert_problem(400, "invalid_request");
    assert_eq!(app.ports.store.message_count(), 0);
}

#[tokio::test]
async fn reusing_a_client_message_id_with_different_content_is_an_idempotency_mismatch() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    app.send(
        &token,
        &id,
        "?wait=true",
        json!({"content": "first", "client_message_id": "c-1"}),
    )
    .await
    .assert_status(201);
    let response = app
        .send(
            &token,
            &id,
            "",
            json!({"content": "second", "client_message_id": "c-1"}),
        )
        .await;
    response.assert_problem(409, "idempotency_mismatch");
    assert_eq!(app.contents(&token, &id).await, ["first", "first"]);
}

#[tokio::test]
async fn a_message_may_carry_attachments_and_empty_content() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let attachment = json!({
        "type": "image",
        "url": "https://example.com/cat.png",
        "content_type": "image/png",
        "name": "cat.png",
        "size_bytes": 1234
    });
    app.send(
        &token,
        &id,
        "?wait=true",
        json!({"content": "", "attachments": [attachment.clone()]}),
    )
    .await
    .assert_status(201);
    let history = app.history(&token, &id, "").await;
    assert_eq!(
        history.body["messages"][0]["attachments"],
        json!([attachment])
    );
}

#[tokio::test]
async fn bad_attachments_are_invalid_requests_and_store_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let one = json!({"type": "file", "url": "https://example.com/a"});
    for attachments in [
        json!([{"type": "file", "url": "ftp://example.com/a"}]),
        json!([{"type": "file"}]),
        json!([{"type": "", "url": "https://example.com/a"}]),
        Value::Array(vec![one; 11]),
    ] {
        app.send(
            &token,
            &id,
            "",
            json!({"content": "x", "attachments": attachments}),
        )
        .await
        .assert_problem(400, "invalid_request");
    }
    assert_eq!(app.ports.store.message_count(), 0);
}

#[tokio::test]
async fn waiting_for_a_bot_that_does_not_answer_in_time_returns_no_replies() {
    // No permits: the bot never gets to answer.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let ports = TestPorts::with_engine(ScriptedEngine::echo().gated(gate));
    ports.seed_bot("echo");
    let app = app_over(
        ports,
        ApiConfig {
            wait_timeout: Duration::from_millis(20),
            ..ApiConfig::default()
        },
    );
    let token = app.token_for("alice");
    let started = app
        .start(
            &token,
            "?wait=true",
            json!({"bot_id": "echo", "initial_message": "anyone?"}),
        )
        .await;
    assert_eq!(started.assert_status(201)["replies"], json!([]));
    let id = started.str("conversation_id");
    let sent = app
        .send(&token, &id, "?wait=true", json!({"content": "hello?"}))
        .await;
    assert_eq!(sent.assert_status(201)["replies"], json!([]));
    assert_eq!(app.contents(&token, &id).await, ["anyone?", "hello?"]);
}

#[tokio::test]
async fn without_wait_the_answer_carries_no_replies_member() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let sent = app.send(&token, &id, "", json!({"content": "hi"})).await;
    assert!(sent.assert_status(201).get("replies").is_none());
    let explicit = app
        .send(&token, &id, "?wait=false", json!({"content": "again"}))
        .await;
    assert!(explicit.assert_status(201).get("replies").is_none());
}
