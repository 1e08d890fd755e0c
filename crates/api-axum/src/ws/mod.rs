//! The WebSocket endpoint `/ws`: real-time messages, deltas, typing and status for
//! the conversations a socket follows. See docs/websocket.md for the protocol.
//!
//! # Layout
//! - [`protocol`]: the frames, as tagged serde enums.
//! - `session`: one connection's lifecycle, from the `connected` status to the close.
//! - `connection`: the reader, which runs each client frame against the service.
//! - `frames`: reading one client frame (size, JSON, `ref`, type, fields).
//! - `forward`: one followed conversation's events into the socket's queue.
//! - `writer`: the queue into the socket, with pings and the close frame.
//! - `close`: the close codes and the close signal.
//!
//! The settings are [`WsSettings`](crate::WsSettings).

mod close;
mod connection;
mod forward;
mod frames;
pub(crate) mod protocol;
mod session;
mod writer;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use futures::FutureExt as _;
use serde::Deserialize;
use tracing::Instrument as _;

use crate::error::ApiError;
use crate::limits::SocketSlot;
use crate::shutdown::Shutdown;
use crate::state::AppState;

/// Frames past this size end the connection in the protocol library itself; below it
/// and above `max_frame_bytes` the peer gets an `error` frame and the socket stays.
const HARD_FRAME_LIMIT: usize = 1024 * 1024;

/// Bytes read from a socket at a time. The library's default (128 KiB) is allocated
/// up front for every socket, which made an idle socket cost about 140 KiB of
/// resident memory; frames are small (a chat message with its JSON is a few hundred
/// bytes), and a larger one is read in several chunks.
pub(crate) const READ_BUFFER_BYTES: usize = 2 * 1024;

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
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let token = match query.token {
        Some(token) => token,
        None => crate::auth::bearer_token(&headers)?.to_owned(),
    };
    let caller = state.auth.verify(&token)?;
    let upgrade = upgrade.map_err(|rejection| ApiError::invalid_request(rejection.body_text()))?;
    let slot = state.limiter.open_socket(&caller.user_id)?;
    // The session outlives the upgrade request; its span (and request id) goes along,
    // so the socket's log lines can be traced back to the request that opened it.
    let span = tracing::Span::current();
    // axum keeps the callback in the socket's task for as long as the socket is open,
    // after it has run: boxed, what it captures costs that task a pointer.
    let inputs = Box::new((state, caller));
    Ok(upgrade
        .max_message_size(HARD_FRAME_LIMIT)
        .max_frame_size(HARD_FRAME_LIMIT)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            let (state, caller) = *inputs;
            let shutdown = state.shutdown.clone();
            let session = span.in_scope(|| session::serve(socket, state, caller));
            tracked_session(&shutdown, slot, span, session)
        }))
}

/// A socket's session as an upgrade callback hands it to axum (here and in Direct
/// Line's stream): counted in the open-sockets gauge and by the server's shutdown,
/// in the upgrade request's span, holding the user's socket slot until it ends.
///
/// A combinator, not an `async` block: a block that awaits a future it captured keeps
/// that future twice, as its capture and as its await.
pub(crate) fn tracked_session<F>(
    shutdown: &Shutdown,
    slot: SocketSlot,
    span: tracing::Span,
    session: F,
) -> impl Future<Output = ()> + Send + use<F>
where
    F: Future<Output = ()> + Send,
{
    let open = metrics::gauge!(crate::observability::WEBSOCKETS_OPEN);
    open.increment(1.0);
    shutdown
        .track(session)
        .map(move |()| {
            open.decrement(1.0);
            drop(slot);
        })
        .instrument(span)
}
