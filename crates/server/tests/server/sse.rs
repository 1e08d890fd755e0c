//! Server-Sent Events at `/conversations/{id}/events`, read with a real HTTP client.

use futures::StreamExt;
use serde_json::{Value, json};

use crate::helpers::{Backend, PATIENCE, TestApp, spawn_app};
use crate::on_every_backend;

on_every_backend!(events_stream_live_and_resume_from_last_event_id);

async fn events_stream_live_and_resume_from_last_event_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;
    let started = app.started(&token, "echo").await;
    let id = started["conversation_id"].as_str().unwrap().to_owned();

    let mut live = SseReader::open(&app, &token, &id, None).await;
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
    let mut resumed = SseReader::open(&app, &token, &id, Some(2)).await;
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

struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    async fn open(app: &TestApp, token: &str, id: &str, last_event_id: Option<u64>) -> Self {
        let mut request = app
            .http
            .get(app.url(&format!("/conversations/{id}/events")))
            .bearer_auth(token);
        if let Some(seq) = last_event_id {
            request = request.header("Last-Event-ID", seq.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next `message` event: its `id` (the seq) and its JSON.
    async fn next_message(&mut self) -> (u64, Value) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut kind = "";
                let mut id = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        kind = value.trim();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        id = value.trim().parse().ok();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.trim_start());
                    }
                }
                if kind == "message" {
                    return (
                        id.expect("message events carry an id"),
                        serde_json::from_str(&data).unwrap(),
                    );
                }
                continue;
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next())
                .await
                .expect("an event arrives in time")
                .expect("the stream goes on")
                .unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}
