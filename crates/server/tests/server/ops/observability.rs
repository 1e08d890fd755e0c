//! Request ids and Prometheus metrics.

use serde_json::json;

use crate::helpers::{Backend, spawn_app, spawn_app_with};
use crate::ops::helpers::sample;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_kept_when_sent_and_made_up_otherwise() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let response = app.get_public("/healthz").await;
    let made_up = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made_up).is_ok(), "{made_up}");
    // Errors carry it too, so a client's report points at the server's log lines.
    let response = app.get_public("/no/such/route").await;
    assert_eq!(response.status(), 404);
    assert!(response.headers().contains_key("x-request-id"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_messages_by_sender() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.guest_token().await;
    let started = app.started(&token, "echo").await;
    let conversation = started["conversation_id"].as_str().unwrap();
    let route = [("route", "/conversations/{id}/messages"), ("status", "201")];
    // A follower of the conversation: the bus delivers it both messages, which the
    // bus lag times. (`?wait=true` may find the reply stored before it looks.)
    let mut follower = app.follower(&token, conversation).await;
    let before = app.metrics().await;

    let message = json!({ "content": "count me" });
    let response = app
        .send_query(&token, conversation, "?wait=true", message)
        .await;
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["replies"].as_array().unwrap().len(), 1);
    let reply = body["replies"][0]["id"].as_str().unwrap().to_owned();
    while follower.next_of("message").await["id"] != reply.as_str() {}

    let after = app.metrics().await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    // Other tests of this binary share the process's recorder, so counters may move
    // by more than this test's own traffic, never by less.
    assert!(delta("confab_http_requests_total", &route) >= 1.0);
    assert!(
        delta(
            "confab_http_request_duration_seconds_count",
            &[("route", "/conversations/{id}/messages")]
        ) >= 1.0
    );
    assert!(delta("confab_messages_stored_total", &[("sender", "user")]) >= 1.0);
    assert!(delta("confab_messages_stored_total", &[("sender", "bot")]) >= 1.0);
    assert!(
        delta(
            "confab_bot_reply_duration_seconds_count",
            &[("bot", "echo")]
        ) >= 1.0
    );
    // The follower's deliveries, timed.
    assert!(delta("confab_event_bus_lag_seconds_count", &[]) >= 2.0);
    // The route label is the template, never the raw path with its id.
    assert!(!after.contains(conversation), "raw path in metrics");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_websockets_are_a_gauge() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.guest_token().await;
    let mut socket = app.ws(&token).await;
    socket.next_of("status").await;
    let open = sample(&app.metrics().await, "confab_websockets_open", &[]);
    assert!(open >= 1.0, "{open}");
    socket.send_json(json!({ "type": "ping" })).await;
    socket.next_of("pong").await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_probes_need_no_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let metrics = app.get_public("/metrics").await;
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let ready = app.get_public("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_bot_is_counted_as_a_failed_reply_and_a_system_message() {
    let broken = confab_bots::declaration::BotDeclaration {
        id: "broken".to_owned(),
        name: "Broken".to_owned(),
        description: "A webhook nobody listens to.".to_owned(),
        kind: "webhook".to_owned(),
        // Port 9 (discard) on loopback: refused at once, and no retry.
        settings: json!({ "url": "http://127.0.0.1:9/hook", "max_retries": 0 })
            .as_object()
            .unwrap()
            .clone(),
    };
    let app = spawn_app_with(Backend::Sqlite, |config| config.bots = vec![broken]).await;
    let token = app.guest_token().await;
    let started = app.started(&token, "broken").await;
    let conversation = started["conversation_id"].as_str().unwrap();
    let before = app.metrics().await;

    let message = json!({ "content": "anyone there?" });
    let response = app
        .send_query(&token, conversation, "?wait=true", message)
        .await;
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["replies"][0]["sender"], "system", "{body}");

    let after = app.metrics().await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert!(
        delta(
            "confab_bot_reply_failures_total",
            &[("bot", "broken"), ("reason", "error")]
        ) >= 1.0
    );
    assert!(delta("confab_messages_stored_total", &[("sender", "system")]) >= 1.0);
    app.stop().await;
}
