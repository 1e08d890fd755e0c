//! Faults under load, on the real `confab` binary: what a client was told is what is
//! kept. After each fault every acknowledged message is in the history exactly once,
//! seqs have no gaps, nothing refused was half written, and every user message gets
//! exactly one reply from the echo bot.
//!
//! # Layout
//! - `kill`: the server killed with SIGKILL while REST and WebSocket writers send,
//!   then started again, on SQLite and on PostgreSQL.
//! - `disk_full`: the SQLite file's file system fills up (a small tmpfs) and empties
//!   again: 503 `unavailable`, then sends work again without a restart.
//! - `postgres_restart`: a PostgreSQL cluster of the test's own stopped at once
//!   (`pg_ctl stop -m immediate`) and started again while writers send.
//! - `postgres`: that throw-away cluster.
//! - this file: the writers and the checks the three share.

mod disk_full;
mod kill;
mod postgres;
mod postgres_restart;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

pub use crate::helpers::Answers;
use crate::helpers::{Binary, Client, PATIENCE, Received, WsClient, assert_each_answered_once};

/// How long a writer that retries waits between two tries of one message: a client's
/// back-off, not a synchronisation.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// How a writer reaches the server.
#[derive(Debug, Clone, Copy)]
pub enum Transport {
    /// `POST /conversations/{id}/messages`; the 201 is the acknowledgement.
    Rest,
    /// A `message` frame on `/ws`; the socket's own `message` frame back is the
    /// acknowledgement.
    WebSocket,
}

/// What a writer does when a send is not acknowledged.
#[derive(Debug, Clone, Copy)]
pub enum OnRefusal {
    /// Stops: the server is gone.
    Stop,
    /// Sends the same message again (same `client_message_id`) until it is
    /// acknowledged or the instant has passed.
    RetryUntil(Instant),
}

/// One writer: a user sending `count` numbered messages to one conversation, one
/// after the other.
#[derive(Debug, Clone)]
pub struct Writer {
    pub address: SocketAddr,
    pub token: String,
    pub conversation: String,
    pub name: String,
    pub transport: Transport,
    pub count: usize,
    pub on_refusal: OnRefusal,
}

/// What a writer was told.
#[derive(Debug, Default)]
pub struct Written {
    /// The acknowledged messages, as `(content, message id)`.
    pub acknowledged: Vec<(String, String)>,
    /// Every refusal, as `"503 unavailable"`, `"error frame unavailable"`, `"no
    /// response"` or `"socket closed"`.
    pub refusals: Vec<String>,
}

impl Writer {
    /// Starts one conversation with the echo bot per transport, as `token`'s user on
    /// the server at `address`, and a writer of `count` messages on each, running;
    /// `progress` counts their acknowledgements together.
    pub async fn start_each(
        client: &Client,
        address: SocketAddr,
        token: &str,
        transports: &[Transport],
        count: usize,
        on_refusal: OnRefusal,
        progress: &Arc<AtomicUsize>,
    ) -> Vec<(Self, tokio::task::JoinHandle<Written>)> {
        let mut writers = Vec::new();
        for (n, transport) in transports.iter().enumerate() {
            let started = client.start(token, "echo", &format!("w{n} hello")).await;
            let writer = Self {
                address,
                token: token.to_owned(),
                conversation: started["conversation_id"]
                    .as_str()
                    .expect("an id")
                    .to_owned(),
                name: format!("w{n}"),
                transport: *transport,
                count,
                on_refusal,
            };
            writers.push((writer.clone(), writer.spawn(Arc::clone(progress))));
        }
        writers
    }

    /// Runs the writer in a task; `progress` counts acknowledgements across writers.
    pub fn spawn(self, progress: Arc<AtomicUsize>) -> tokio::task::JoinHandle<Written> {
        tokio::spawn(async move {
            match self.transport {
                Transport::Rest => self.over_rest(&progress).await,
                Transport::WebSocket => self.over_websocket(&progress).await,
            }
        })
    }

    fn message(&self, m: usize) -> (String, String) {
        (format!("{} m{m}", self.name), format!("{}-{m}", self.name))
    }

    fn gives_up(&self) -> bool {
        match self.on_refusal {
            OnRefusal::Stop => true,
            OnRefusal::RetryUntil(deadline) => Instant::now() >= deadline,
        }
    }

    async fn over_rest(&self, progress: &AtomicUsize) -> Written {
        let client = Client::of(self.address);
        let url = format!(
            "{}/conversations/{}/messages",
            client.base, self.conversation
        );
        let mut written = Written::default();
        for m in 0..self.count {
            let (content, client_id) = self.message(m);
            let body = json!({"content": content, "client_message_id": client_id});
            let mut retried = false;
            loop {
                // Longer than the server's own request timeout (30 s), so that its
                // 503 arrives rather than the client giving up first.
                let response = client
                    .http
                    .post(&url)
                    .bearer_auth(&self.token)
                    .json(&body)
                    .timeout(ANSWER_PATIENCE)
                    .send()
                    .await;
                // A retry answers 200 with the stored message when an earlier attempt
                // was stored although its answer was lost (PostgreSQL went away after
                // the commit): as much an acknowledgement as the 201.
                let acknowledged = |status| status == 201 || (retried && status == 200);
                match response {
                    Ok(response) if acknowledged(response.status()) => {
                        let stored: Value = response.json().await.expect("a send body");
                        let id = stored["message_id"].as_str().expect("an id").to_owned();
                        written.acknowledged.push((content, id));
                        progress.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let problem: Value = response.json().await.unwrap_or_default();
                        let code = problem["code"].as_str().unwrap_or("(no code)");
                        written.refusals.push(format!("{status} {code}"));
                    }
                    Err(_) => written.refusals.push("no response".to_owned()),
                }
                if self.gives_up() {
                    return written;
                }
                retried = true;
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        written
    }

    async fn over_websocket(&self, progress: &AtomicUsize) -> Written {
        let mut written = Written::default();
        let Ok(mut socket) = WsClient::connect(self.address, &self.token).await else {
            written.refusals.push("socket refused".to_owned());
            return written;
        };
        if !matches!(socket.receive().await, Received::Frame(frame) if frame["type"] == "status") {
            written.refusals.push("socket closed".to_owned());
            return written;
        }
        for m in 0..self.count {
            let (content, client_id) = self.message(m);
            let frame = json!({"type": "message", "conversation_id": self.conversation,
                               "content": content, "client_message_id": client_id});
            loop {
                let sent = socket
                    .stream
                    .send(WsMessage::Text(frame.to_string().into()))
                    .await;
                if sent.is_err() {
                    written.refusals.push("socket closed".to_owned());
                    return written;
                }
                let refusal = loop {
                    match receive(&mut socket).await {
                        Received::Frame(reply)
                            if reply["type"] == "message"
                                && reply["client_message_id"] == client_id.as_str() =>
                        {
                            break None;
                        }
                        Received::Frame(reply)
                            if reply["type"] == "error" && reply["ref"] == client_id.as_str() =>
                        {
                            let code = reply["code"].as_str().unwrap_or("(no code)");
                            break Some(format!("error frame {code}"));
                        }
                        Received::Frame(_) => {}
                        Received::Closed(_) => {
                            written.refusals.push("socket closed".to_owned());
                            return written;
                        }
                    }
                };
                match refusal {
                    None => break,
                    Some(refusal) => written.refusals.push(refusal),
                }
                if self.gives_up() {
                    return written;
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            // The stored message's id, from the history: the frame above proves it is
            // stored, and the check after the fault looks it up by content.
            written.acknowledged.push((content, String::new()));
            progress.fetch_add(1, Ordering::SeqCst);
        }
        written
    }
}

/// How long a writer waits for the answer to one send: while PostgreSQL is away a
/// request waits for a pooled connection (sqlx's acquire timeout, 30 s) before it
/// is refused.
const ANSWER_PATIENCE: Duration = Duration::from_secs(60);

/// The socket's next JSON frame or its close, skipping pings, within
/// [`ANSWER_PATIENCE`].
async fn receive(socket: &mut WsClient) -> Received {
    loop {
        let next = tokio::time::timeout(ANSWER_PATIENCE, socket.stream.next())
            .await
            .expect("an answer arrives in time");
        match next {
            Some(Ok(WsMessage::Text(text))) => {
                return Received::Frame(serde_json::from_str(&text).expect("a JSON frame"));
            }
            Some(Ok(WsMessage::Close(frame))) => return Received::Closed(frame),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Received::Closed(None),
        }
    }
}

/// The binary on `url`, started off the runtime's threads (it blocks until the
/// process logs its address).
pub async fn start_binary(url: &str) -> Binary {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || Binary::start(&url))
        .await
        .expect("the binary starts")
}

/// Waits until `progress` reaches `count`, failing the test after [`PATIENCE`].
pub async fn wait_for_progress(progress: &AtomicUsize, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while progress.load(Ordering::SeqCst) < count {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Asserts that `messages`, a whole history, keeps what the writer was told: each
/// acknowledged message exactly once (by id where known, by content always), no
/// user message twice, seqs `1..=n` without a gap, and each user message answered
/// exactly once, as `answers` allows.
pub fn assert_intact(messages: &[Value], written: &Written, answers: Answers) {
    for (index, message) in messages.iter().enumerate() {
        assert_eq!(
            message["seq"].as_u64(),
            Some(index as u64 + 1),
            "a gap or a repeat in the seqs: {messages:#?}"
        );
    }
    let user_contents: Vec<&str> = messages
        .iter()
        .filter(|m| m["sender"] == "user")
        .filter_map(|m| m["content"].as_str())
        .collect();
    for (content, id) in &written.acknowledged {
        let copies: Vec<&Value> = messages
            .iter()
            .filter(|m| m["sender"] == "user" && m["content"] == content.as_str())
            .collect();
        assert_eq!(
            copies.len(),
            1,
            "acknowledged message {:?}… is stored {} times",
            &content[..content.len().min(40)],
            copies.len()
        );
        if !id.is_empty() {
            assert_eq!(copies[0]["id"], id.as_str(), "{content:?} changed its id");
        }
    }
    let mut unique = user_contents.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        user_contents.len(),
        "a user message is stored twice"
    );
    assert_each_answered_once(messages, answers);
}
