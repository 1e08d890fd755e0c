//! The WebSocket endpoint `/ws`: real-time messages, deltas, typing and status for
//! the conversations a socket follows. See docs/websocket.md for the protocol.
//!
//! # Layout
//! - [`protocol`]: the frames, as tagged serde enums.
//! - `session`: one connection's reader, writer and forwarders.

pub(crate) mod protocol;
mod session;

use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use tracing::Instrument as _;

use crate::AppState;
use crate::error::ApiError;
use crate::limits::Limiter;
use crate::ops::Shutdown;

/// Limits and timers of WebSocket connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsSettings {
    /// Frames queued for one socket before a forwarder waits.
    pub queue_capacity: usize,
    /// How long a forwarder waits for room in a full queue before the socket is closed
    /// with 1013 as too slow.
    pub send_timeout: Duration,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// How long a silent peer is kept.
    pub idle_timeout: Duration,
    /// Largest client frame handled; larger ones get a `payload_too_large` error.
    pub max_frame_bytes: usize,
    /// Invalid frames in a row after which the socket is closed with 1008.
    pub max_bad_frames: u32,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            send_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            max_frame_bytes: 64 * 1024,
            max_bad_frames: 10,
        }
    }
}

/// Frames past this size end the connection in the protocol library itself; below it
/// and above `max_frame_bytes` the peer gets an `error` frame and the socket stays.
const HARD_FRAME_LIMIT: usize = 1024 * 1024;

/// Bytes read from a socket at a time. The library's default (128 KiB) is allocated
/// up front for every socket, which made an idle socket cost about 140 KiB of
/// resident memory; frames are small (a chat message with its JSON is a few hundred
/// bytes), and a larger one is read in several chunks.
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// The `/ws` route.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/ws", get(upgrade))
}

#[derive(Debug, Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Authenticates before the upgrade, so a bad token gets HTTP 401, not a socket.
async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    limiter: Option<Extension<Limiter>>,
    shutdown: Option<Extension<Shutdown>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let token = match query.token {
        Some(token) => token,
        None => crate::auth::bearer_token(&headers)?.to_owned(),
    };
    let caller = state.auth.verify(&token)?;
    let upgrade = upgrade.map_err(|rejection| ApiError::invalid_request(rejection.body_text()))?;
    let limiter = limiter.map(|Extension(limiter)| limiter);
    let slot = limiter
        .as_ref()
        .map(|limiter| limiter.open_socket(&caller.user_id))
        .transpose()?;
    let shutdown = shutdown.map(|Extension(shutdown)| shutdown);
    // The session outlives the upgrade request; its span (and request id) goes along,
    // so the socket's log lines can be traced back to the request that opened it.
    let span = tracing::Span::current();
    Ok(upgrade
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            async move {
                let session = session::serve(socket, state, caller, limiter, shutdown.clone());
                let open = metrics::gauge!(crate::observability::WEBSOCKETS_OPEN);
                open.increment(1.0);
                match shutdown {
                    Some(shutdown) => shutdown.track(session).await,
                    None => session.await,
                }
                open.decrement(1.0);
                drop(slot);
            }
            .instrument(span)
        }))
}
