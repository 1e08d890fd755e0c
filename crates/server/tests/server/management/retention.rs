//! Retention: the periodic task archives active conversations idle longer than
//! `archive_after` and deletes those idle longer than `delete_after`, telling
//! subscribed sockets; recent conversations stay as they are.

use std::time::Duration;

use confab_domain::timestamp::Timestamp;
use serde_json::Value;

use crate::helpers::{Backend, WsClient, spawn_app_with, user};
use crate::management::helpers::plus;

crate::on_every_backend!(retention_archives_and_deletes_idle_conversations);

const DAY: i64 = 24 * 60 * 60 * 1000;

async fn retention_archives_and_deletes_idle_conversations(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.retention.archive_after = Some(Duration::from_secs(7 * 24 * 60 * 60));
        config.retention.delete_after = Some(Duration::from_secs(90 * 24 * 60 * 60));
        config.retention.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let alice = user("alice");
    let now = Timestamp::new(time::OffsetDateTime::now_utc());
    let idle = app
        .seed_conversation("alice", "echo", plus(now, -10 * DAY))
        .await;
    let ancient = app
        .seed_conversation("alice", "echo", plus(now, -100 * DAY))
        .await;
    let recent = app
        .seed_conversation("alice", "echo", plus(now, -DAY))
        .await;
    let mut socket = app.ws(&alice).await;

    // Subscribed first, then checked: a sweep that ran before the subscription shows
    // in storage, one after it arrives as an event.
    socket.subscribe(&idle.session_id.to_string()).await;
    if app.status_of(&alice, &idle.id.to_string()).await.as_deref() == Some("active") {
        expect_status(&mut socket, &idle.id.to_string(), "archived").await;
    }
    assert_eq!(
        app.status_of(&alice, &idle.id.to_string()).await.as_deref(),
        Some("archived")
    );

    let mut socket = app.ws(&alice).await;
    let subscribed = subscribe_if_present(&mut socket, &ancient.session_id.to_string()).await;
    if subscribed
        && app
            .status_of(&alice, &ancient.id.to_string())
            .await
            .is_some()
    {
        expect_status(&mut socket, &ancient.id.to_string(), "deleted").await;
    }
    assert_eq!(app.status_of(&alice, &ancient.id.to_string()).await, None);

    // Both changes above come from sweeps that also saw the recent conversation.
    assert_eq!(
        app.status_of(&alice, &recent.id.to_string())
            .await
            .as_deref(),
        Some("active")
    );
    app.stop().await;
}

/// Subscribes, or returns `false` when the conversation is already gone.
async fn subscribe_if_present(socket: &mut WsClient, session_id: &str) -> bool {
    socket
        .send_json(serde_json::json!({ "type": "subscribe", "session_id": session_id }))
        .await;
    loop {
        let frame: Value = socket.next_json().await;
        match frame["type"].as_str() {
            Some("subscribed") => return true,
            Some("error") => return false,
            _ => {}
        }
    }
}

/// Waits for `status` on the conversation, skipping the statuses it passes through
/// first (a conversation idle long enough to delete is archived on the way).
async fn expect_status(socket: &mut WsClient, conversation_id: &str, status: &str) {
    loop {
        let event = socket.next_of("status").await;
        assert_eq!(event["conversation_id"], conversation_id);
        if event["status"] == status {
            return;
        }
    }
}
