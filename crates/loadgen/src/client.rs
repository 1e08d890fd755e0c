//! A thin client of confab's HTTP API and `/ws`: just the calls the scenarios make,
//! each failing with the status and body the server answered.

use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use futures::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single request or frame may take before the run is declared failed;
/// a benchmark must end even when the server hangs.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The limit of one download, e.g. an export of a large conversation.
pub const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(300);

/// A guest identity from `POST /auth/guest`.
#[derive(Debug, Clone, Deserialize)]
pub struct Guest {
    /// The guest's user id.
    pub user_id: String,
    /// Its bearer token.
    pub token: String,
}

/// A conversation from `POST /conversations/start`.
#[derive(Debug, Clone, Deserialize)]
pub struct Started {
    /// The conversation's id.
    pub conversation_id: String,
    /// Its session id, which WebSocket frames name.
    pub session_id: String,
}

/// A stored user message, from `POST /conversations/{id}/messages`.
#[derive(Debug, Clone, Deserialize)]
pub struct Sent {
    /// The message's id, which its `message` frames carry as `id`.
    pub message_id: String,
    /// Its place in the conversation.
    pub seq: u64,
}

/// confab at one base URL, e.g. `http://127.0.0.1:8080`.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

/// An open `/ws` connection.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

impl Api {
    /// A client of the server at `base` (no trailing slash needed).
    pub fn new(base: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .pool_max_idle_per_host(usize::MAX)
            .tcp_nodelay(true)
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A new guest identity.
    pub async fn guest(&self) -> Result<Guest> {
        let response = self
            .http
            .post(self.url("/auth/guest"))
            .json(&json!({}))
            .send();
        decode(response.await?).await
    }

    /// Starts a conversation with `bot_id`, without a first message.
    pub async fn start(&self, token: &str, bot_id: &str) -> Result<Started> {
        let response = self
            .http
            .post(self.url("/conversations/start"))
            .bearer_auth(token)
            .json(&json!({ "bot_id": bot_id }))
            .send();
        decode(response.await?).await
    }

    /// Sends a user message over REST; returns its stored seq.
    pub async fn send(&self, token: &str, conversation_id: &str, content: &str) -> Result<u64> {
        let response = self
            .http
            .post(self.url(&format!("/conversations/{conversation_id}/messages")))
            .bearer_auth(token)
            .json(&json!({ "content": content }))
            .send();
        let body: Value = decode(response.await?).await?;
        body["seq"].as_u64().context("the send answer has no seq")
    }

    /// Sends a user message over REST tagged with `client_message_id`; returns what the
    /// server stored.
    pub async fn send_tagged(
        &self,
        token: &str,
        conversation_id: &str,
        content: &str,
        client_message_id: &str,
    ) -> Result<Sent> {
        let response = self
            .http
            .post(self.url(&format!("/conversations/{conversation_id}/messages")))
            .bearer_auth(token)
            .json(&json!({ "content": content, "client_message_id": client_message_id }))
            .send();
        decode(response.await?).await
    }

    /// `GET path` with the token, decoded as JSON.
    pub async fn get(&self, token: &str, path: &str) -> Result<Value> {
        self.get_body(token, path).await?.json()
    }

    /// `GET path` with the token, its body read to the last byte and not yet decoded:
    /// a latency measured around this call is the server's answer, not the
    /// decoding of it here.
    pub async fn get_body(&self, token: &str, path: &str) -> Result<Body> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if !status.is_success() {
            bail!(
                "the server answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(Body(bytes))
    }

    /// `GET path` with the token, read to the end as a stream of chunks; returns the
    /// bytes and lines received. The whole body is never held in memory.
    pub async fn download(&self, token: &str, path: &str) -> Result<(u64, u64)> {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            // A large export outlasts the per-call timeout of small requests.
            .timeout(DOWNLOAD_TIMEOUT)
            .send()
            .await?
            .error_for_status()?;
        let mut body = response.bytes_stream();
        let (mut bytes, mut lines) = (0_u64, 0_u64);
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        Ok((bytes, lines))
    }

    /// Opens `/ws` with `token` and waits for the `connected` status frame.
    pub async fn socket(&self, token: &str) -> Result<Socket> {
        let url = format!("{}/ws?token={token}", self.base.replacen("http", "ws", 1));
        let (mut socket, _) = tokio::time::timeout(
            CALL_TIMEOUT,
            // Nagle's algorithm would hold small frames back for a delayed ACK.
            tokio_tungstenite::connect_async_with_config(url.as_str(), None, true),
        )
        .await
        .context("timed out opening /ws")?
        .context("cannot open /ws")?;
        loop {
            let frame = next_frame(&mut socket).await?;
            if frame["type"] == "status" && frame["status"] == "connected" {
                return Ok(socket);
            }
        }
    }
}

/// Sends one JSON frame.
pub async fn send_frame(socket: &mut Socket, frame: &Value) -> Result<()> {
    socket
        .send(WsMessage::text(frame.to_string()))
        .await
        .context("cannot send a frame")
}

/// The next JSON text frame, skipping pings and pongs; fails when the socket closes or
/// nothing arrives within [`CALL_TIMEOUT`].
pub async fn next_frame(socket: &mut Socket) -> Result<Value> {
    loop {
        let message = tokio::time::timeout(CALL_TIMEOUT, socket.next())
            .await
            .context("timed out waiting for a frame")?
            .context("the socket closed")?
            .context("the socket failed")?;
        match message {
            WsMessage::Text(text) => {
                return serde_json::from_str(text.as_str()).context("a frame is not JSON");
            }
            WsMessage::Close(close) => bail!("the server closed the socket: {close:?}"),
            _ => {}
        }
    }
}

/// A successful answer's body, as received.
pub struct Body(bytes::Bytes);

impl Body {
    /// The body decoded as JSON.
    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.0).context("cannot decode the answer")
    }
}

async fn decode<T: serde::de::DeserializeOwned>(response: reqwest::Response) -> Result<T> {
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("the server answered {status}: {body}");
    }
    response.json().await.context("cannot decode the answer")
}
