//! The fan-out scenario: several sockets of one user follow one conversation, as a
//! user's tabs and phone do, while one of them sends; every event of the conversation
//! goes out once per socket. It measures what the server pays per delivered frame.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use futures::SinkExt as _;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::client::{Api, Socket, next_frame, send_frame};
use crate::report::Report;

/// The bot of the conversation: each user message brings its reply and typing frames,
/// events like those of a real conversation.
const ECHO: &str = "echo";

/// When each message was sent, by index; the sender writes an entry before the
/// message goes out, so a follower that sees the message finds it.
type SentAt = Arc<Mutex<Vec<Instant>>>;

/// `sockets` sockets of one guest follow one conversation with the echo bot; the first
/// also sends `messages` messages of about `content_bytes` bytes (the echo's replies
/// are as long) with up to `window` unacknowledged. Each socket reads until it has
/// seen every user message and every reply.
///
/// Latency is each user message's, from its sending to its arrival on each socket, so
/// there are `sockets × messages` of them. `frames` counts every frame the sockets
/// received meanwhile (messages, replies, typing), which is what the server encoded
/// and wrote; `frames_per_s` is that over the run.
pub async fn fanout(
    api: &Api,
    sockets: usize,
    messages: usize,
    window: usize,
    content_bytes: usize,
) -> Result<Report> {
    ensure!(sockets >= 1, "fanout needs at least one socket");
    let guest = api.guest().await?;
    let conversation = api.start(&guest.token, ECHO).await?;
    let barrier = Arc::new(Barrier::new(sockets + 1));
    let sent_at: SentAt = Arc::new(Mutex::new(Vec::with_capacity(messages)));
    let mut tasks = Vec::with_capacity(sockets);
    for index in 0..sockets {
        let mut socket = api.socket(&guest.token).await?;
        subscribe(&mut socket, &conversation.session_id).await?;
        let (barrier, sent_at) = (barrier.clone(), sent_at.clone());
        let session_id = conversation.session_id.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let sending = (index == 0).then(|| Sending {
                session_id,
                window: window.max(1),
                padding: "x".repeat(content_bytes),
            });
            follow(socket, messages, sending, sent_at).await
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(sockets * messages);
    let mut frames = 0u64;
    for task in tasks {
        let (measured, received) = task.await.context("a socket task panicked")??;
        latencies.extend(measured);
        frames += received;
    }
    let elapsed = started.elapsed();
    Ok(Report::new(
        format!("fanout {sockets} sockets x {messages} msgs of {content_bytes} B"),
        elapsed,
        latencies,
    )
    .with("frames", frames as f64)
    .with("frames_per_s", frames as f64 / elapsed.as_secs_f64()))
}

/// Subscribes `socket` to the conversation and waits for the answer.
async fn subscribe(socket: &mut Socket, session_id: &str) -> Result<()> {
    send_frame(
        socket,
        &json!({"type": "subscribe", "session_id": session_id}),
    )
    .await?;
    loop {
        let frame = next_frame(socket).await?;
        match frame["type"].as_str() {
            Some("subscribed") => return Ok(()),
            Some("error") => bail!("the server refused to subscribe: {frame}"),
            _ => {}
        }
    }
}

/// What the sending socket sends.
struct Sending {
    session_id: String,
    window: usize,
    /// Appended to each message's text, to give it the size asked for.
    padding: String,
}

/// Reads `socket` until every one of `messages` user messages and its reply arrived,
/// sending them first when `sending`; returns the user messages' latencies and how
/// many frames arrived.
async fn follow(
    mut socket: Socket,
    messages: usize,
    sending: Option<Sending>,
    sent_at: SentAt,
) -> Result<(Vec<Duration>, u64)> {
    let mut latencies = Vec::with_capacity(messages);
    let (mut sent, mut replies, mut frames) = (0, 0, 0u64);
    while latencies.len() < messages || replies < messages {
        if let Some(sending) = &sending {
            let mut fed = false;
            while sent < messages && sent - latencies.len() < sending.window {
                let frame = json!({
                    "type": "message",
                    "session_id": sending.session_id,
                    "content": format!("m{sent} {}", sending.padding),
                    "client_message_id": format!("c{sent}"),
                });
                lock(&sent_at).push(Instant::now());
                socket
                    .feed(WsMessage::text(frame.to_string()))
                    .await
                    .context("cannot send a frame")?;
                sent += 1;
                fed = true;
            }
            if fed {
                socket.flush().await.context("cannot send a frame")?;
            }
        }
        let frame = next_frame(&mut socket).await?;
        frames += 1;
        match frame["type"].as_str() {
            Some("message") if frame["sender"] == "user" => {
                let index = message_index(&frame)?;
                let sent = lock(&sent_at)
                    .get(index)
                    .copied()
                    .context("a message nobody sent")?;
                latencies.push(sent.elapsed());
            }
            Some("message") => replies += 1,
            Some("error") => bail!("the server refused a frame: {frame}"),
            _ => {}
        }
    }
    let _ = socket.close(None).await;
    Ok((latencies, frames))
}

/// The index the sender gave a user message in its `client_message_id`.
fn message_index(frame: &Value) -> Result<usize> {
    frame["client_message_id"]
        .as_str()
        .and_then(|id| id.strip_prefix('c'))
        .and_then(|i| i.parse().ok())
        .context("a user message without our client_message_id")
}

fn lock(sent_at: &SentAt) -> std::sync::MutexGuard<'_, Vec<Instant>> {
    sent_at.lock().unwrap_or_else(|p| p.into_inner())
}
