//! A Server-Sent Events client of `/conversations/{id}/events`, for the real server
//! in-process or as a child process.

use std::net::SocketAddr;

use futures::StreamExt;
use serde_json::Value;

use crate::helpers::PATIENCE;

/// A client of `GET /conversations/{id}/events`.
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    /// Opens the stream of conversation `id` on the server at `address`.
    pub async fn open(
        address: SocketAddr,
        token: &str,
        id: &str,
        last_event_id: Option<u64>,
    ) -> Self {
        let mut request = reqwest::Client::new()
            .get(format!("http://{address}/conversations/{id}/events"))
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
    pub async fn next_message(&mut self) -> (u64, Value) {
        let (id, message) = self.next_event("message").await;
        (id.expect("message events carry an id"), message)
    }

    /// The next event of `kind`, skipping others: its `id`, if it has one, and its
    /// JSON.
    pub async fn next_event(&mut self, wanted: &str) -> (Option<u64>, Value) {
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
                if kind == wanted {
                    return (id, serde_json::from_str(&data).unwrap());
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
