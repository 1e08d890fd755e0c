//! Server-Sent Events at `/conversations/{id}/events`, read with a real HTTP client.

use serde_json::json;

use crate::helpers::{Backend, SseReader, spawn_app};
use crate::on_every_backend;

on_every_backend!(events_stream_live_and_resume_from_last_event_id);

async fn events_stream_live_and_resume_from_last_event_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;
    let started = app.started(&token, "echo").await;
    let id = started["conversation_id"].as_str().unwrap().to_owned();

    let mut live = SseReader::open(app.address, &token, &id, None).await;
    assert_eq!(
        app.send(&token, &id, json!({ "content": "first" }))
            .await
            .status(),
        201
    );
    let (seq, event) = live.next_message().await;
    assert_eq!((seq, event["content"].as_str()), (1, Some("first")));
    let (seq, event) = live.next_message().await;
    assert_eq!((seq, event["sender"].as_str()), (2, Some("bot")));
    drop(live);

    assert_eq!(
        app.send(&token, &id, json!({ "content": "missed" }))
            .await
            .status(),
        201
    );
    let mut resumed = SseReader::open(app.address, &token, &id, Some(2)).await;
    let (seq, event) = resumed.next_message().await;
    assert_eq!((seq, event["content"].as_str()), (3, Some("missed")));
    let (seq, _) = resumed.next_message().await;
    assert_eq!(seq, 4);

    let stranger = app.guest_token().await;
    let response = app
        .http
        .get(app.url(&format!("/conversations/{id}/events")))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
