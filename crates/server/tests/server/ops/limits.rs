//! Limits: the send rate over REST and WebSocket, sockets per user, request time and
//! CORS.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, Received, TestApp, spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_over_the_rate_get_429_with_retry_after_and_succeed_after_it() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.messages_per_minute = 60;
        config.limits.message_burst = 2;
    })
    .await;
    let token = app.guest_token().await;
    // The start takes one token of the bucket, the first send the second.
    let started = app.started(&token, "echo").await;
    let conversation = started["conversation_id"].as_str().unwrap();
    let one = json!({ "content": "one" });
    assert_eq!(app.send(&token, conversation, one).await.status(), 201);

    let two = json!({ "content": "two" });
    let refused = app.send(&token, conversation, two.clone()).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");

    // Another user has a bucket of their own.
    let other = app.guest_token().await;
    let echo = json!({ "bot_id": "echo" });
    assert_eq!(app.start(&other, echo).await.status(), 201);

    // After the advertised wait, one token has refilled (one a second at 60/min).
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(app.send(&token, conversation, two).await.status(), 201);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_messages_over_the_rate_get_an_error_frame_and_the_socket_stays() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.messages_per_minute = 1;
        config.limits.message_burst = 2;
    })
    .await;
    let token = app.guest_token().await;
    let started = app.started(&token, "echo").await;
    let session = &started["session_id"];
    let mut socket = app.ws(&token).await;
    socket.next_of("status").await;
    socket
        .send_json(json!({ "type": "message", "session_id": session, "content": "ok" }))
        .await;
    let stored = socket.next_of("message").await;
    assert_eq!(stored["content"], "ok");
    socket
        .send_json(json!({
            "type": "message", "session_id": session, "content": "too many",
            "client_message_id": "c-2",
        }))
        .await;
    let error = socket.next_of("error").await;
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["ref"], "c-2");
    // Still open: a ping is answered.
    socket.send_json(json!({ "type": "ping" })).await;
    socket.next_of("pong").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_over_the_socket_limit_gets_429_until_one_closes() {
    let app = spawn_app_with(Backend::Sqlite, |config| config.limits.sockets_per_user = 1).await;
    let token = app.guest_token().await;
    let mut first = app.ws(&token).await;
    first.next_of("status").await;
    match app.try_ws(&token).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a second socket was accepted"),
    }
    // Another user is not affected.
    let other = app.guest_token().await;
    app.ws(&other).await.next_of("status").await;
    // Closing the first frees the slot; the server notices the close first, so the
    // reconnect is retried a bounded number of times while it does.
    first.stream.close(None).await.unwrap();
    assert!(matches!(first.receive().await, Received::Closed(_)));
    let mut reconnected = None;
    for _ in 0..50 {
        if let Ok(socket) = app.try_ws(&token).await {
            reconnected = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reconnected
        .expect("the slot is freed")
        .next_of("status")
        .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_time_limit_gets_503_unavailable() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.request_timeout = Duration::from_millis(50)
    })
    .await;
    let token = app.guest_token().await;
    let started = app.started(&token, "echo-stream").await;
    let conversation = started["conversation_id"].as_str().unwrap();
    // The streaming echo takes 40 ms a word: 40 words take far longer than 50 ms.
    let long = vec!["word"; 40].join(" ");
    let response = app
        .send_query(
            &token,
            conversation,
            "?wait=true",
            json!({ "content": long }),
        )
        .await;
    assert_eq!(response.status(), 503);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "unavailable");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_configured_origins() {
    let closed = spawn_app(Backend::Sqlite).await;
    let preflight = |app: &TestApp, origin: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/conversations"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    let response = preflight(&closed, "https://chat.example.com")
        .await
        .unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    closed.stop().await;

    let open = spawn_app_with(Backend::Sqlite, |config| {
        config.limits.cors_origins = vec!["https://chat.example.com".to_owned()];
    })
    .await;
    let response = preflight(&open, "https://chat.example.com").await.unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://chat.example.com"
    );
    let response = preflight(&open, "https://evil.example.net").await.unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
    open.stop().await;
}
