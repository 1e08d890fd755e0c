//! The stream a `streamUrl` opens: a WebSocket that pushes `{activities, watermark}`
//! for every message after the watermark it was opened with, then for every new one,
//! and `typing` activities while the bot works. It is one-way: what the client sends
//! (directlinejs sends an empty text frame every 20 s to notice a dead link) only
//! counts as a sign of life.
//!
//! Resuming loses and repeats nothing: following replays storage after the
//! watermark, then goes live with no gap (see the domain's `follow`), and each
//! message's activity carries its seq as the watermark.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use confab_domain::event::{ConversationEvent, EventKind};
use confab_domain::message::Sender;
use futures::StreamExt;
use serde::Deserialize;
use tokio::time::{Instant, MissedTickBehavior};

use super::access::{self, Opened};
use super::error::DirectLineError;
use super::mapping;
use super::rest::parse_conversation;
use super::wire::ActivitySet;
use crate::state::AppState;

/// While a streamed reply grows, a `typing` activity goes out at most this often:
/// Web Chat shows its typing indicator for a few seconds after each one, and a
/// Direct Line client gets no deltas.
const TYPING_REFRESH: Duration = Duration::from_secs(2);

/// Frames larger than this from a client end the connection: the stream takes none.
const MAX_CLIENT_FRAME: usize = 4 * 1024;

#[derive(Debug, Deserialize)]
pub(crate) struct StreamQuery {
    t: Option<String>,
    watermark: Option<String>,
}

/// `GET /conversations/{id}/stream?t=<token>&watermark=W`: authenticates before the
/// upgrade, so that a bad token gets a Direct Line error, not a socket.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<StreamQuery>, axum::extract::rejection::QueryRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, DirectLineError> {
    let Query(query) =
        query.map_err(|rejection| DirectLineError::bad_argument(rejection.body_text()))?;
    let credential = access::credential(&state, &headers, query.t.as_deref())?;
    let after = mapping::parse_watermark(query.watermark.as_deref())
        .map_err(DirectLineError::bad_argument)?;
    let opened = access::open(&state, &credential, parse_conversation(&id)?).await?;
    let bot_name = access::bot_name(&state, &opened.conversation.bot_id).await;
    let upgrade =
        upgrade.map_err(|rejection| DirectLineError::bad_argument(rejection.body_text()))?;
    let slot = state
        .limiter
        .open_socket(&opened.caller.user_id)
        .map_err(DirectLineError::from)?;
    let span = tracing::Span::current();
    // As on `/ws` (`crate::ws`): what the callback captures is boxed, because axum
    // keeps the callback in the socket's task for the socket's life.
    let inputs = Box::new((state, opened, bot_name));
    Ok(upgrade
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .read_buffer_size(crate::ws::READ_BUFFER_BYTES)
        .on_upgrade(move |socket| {
            let (state, opened, bot_name) = *inputs;
            let shutdown = state.shutdown.clone();
            let session = serve(socket, state, opened, bot_name, after);
            crate::ws::tracked_session(&shutdown, slot, span, session)
        }))
}

/// Why the stream ended, as its close frame says it.
enum End {
    /// The server stops.
    Shutdown,
    /// The conversation was deleted.
    Deleted,
    /// The peer went away, stopped reading, or fell silent.
    Gone,
    /// Following failed for good (a storage or bus failure other than being
    /// unavailable, which following waits out); the client reconnects.
    Failed,
}

async fn serve(
    mut socket: WebSocket,
    state: AppState,
    opened: Opened,
    bot_name: String,
    after: confab_domain::message::Seq,
) {
    let settings = state.config.ws;
    let end = match state
        .service
        .follow(&opened.caller, opened.conversation.id, Some(after))
        .await
    {
        Ok((_, mut events)) => {
            let mut heartbeat = tokio::time::interval(settings.ping_interval);
            heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
            heartbeat.reset();
            let mut last_heard = Instant::now();
            let mut typing_sent: Option<Instant> = None;
            loop {
                tokio::select! {
                    () = state.shutdown.stopping() => break End::Shutdown,
                    event = events.next() => match event {
                        Some(Ok(event)) => {
                            if matches!(event.kind, EventKind::Deleted) {
                                break End::Deleted;
                            }
                            let Some(set) = activity_set(&event, &opened, &bot_name, &mut typing_sent) else {
                                continue;
                            };
                            if !send_set(&mut socket, &set, settings.send_timeout).await {
                                break End::Gone;
                            }
                        }
                        Some(Err(error)) => {
                            tracing::warn!(%error, "a Direct Line stream cannot follow its conversation");
                            break End::Failed;
                        }
                        None => break End::Failed,
                    },
                    frame = socket.recv() => match frame {
                        Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => break End::Gone,
                        Some(Ok(_)) => last_heard = Instant::now(),
                    },
                    _ = heartbeat.tick() => {
                        if last_heard.elapsed() > settings.idle_timeout {
                            break End::Gone;
                        }
                        // The empty text message is Direct Line's own heartbeat, which its
                        // clients skip; the ping draws a pong from browsers, which send
                        // nothing else on their own.
                        let beat = async {
                            socket.send(WsMessage::Text("".into())).await?;
                            socket.send(WsMessage::Ping(Default::default())).await
                        };
                        if !matches!(tokio::time::timeout(settings.send_timeout, beat).await, Ok(Ok(()))) {
                            break End::Gone;
                        }
                    }
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, "a Direct Line stream cannot follow its conversation");
            End::Failed
        }
    };
    let (code, reason) = match end {
        End::Shutdown => (1001, "server stopping"),
        End::Deleted => (1000, "conversation deleted"),
        End::Gone => return,
        End::Failed => (1011, "try again"),
    };
    let close = socket.send(WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    })));
    let _ = tokio::time::timeout(settings.close_grace, close).await;
}

/// What a conversation event shows a Direct Line client, if anything.
fn activity_set(
    event: &ConversationEvent,
    opened: &Opened,
    bot_name: &str,
    typing_sent: &mut Option<Instant>,
) -> Option<ActivitySet> {
    let conversation = &opened.conversation;
    let typing = |sender| ActivitySet {
        activities: vec![mapping::typing_of(
            conversation.id,
            sender,
            conversation.bot_id.as_str(),
            bot_name,
        )],
        watermark: None,
    };
    match &event.kind {
        EventKind::Message(message) => {
            if message.sender != Sender::User {
                *typing_sent = None;
            }
            Some(ActivitySet {
                activities: vec![mapping::activity_of(message, bot_name)],
                watermark: Some(mapping::watermark_of(message.seq)),
            })
        }
        // The user's own typing is not shown back to them.
        EventKind::Typing {
            sender: sender @ (Sender::Bot | Sender::System | Sender::Agent),
            active: true,
        } => {
            *typing_sent = Some(Instant::now());
            Some(typing(*sender))
        }
        EventKind::Delta { .. } => {
            let due = typing_sent.is_none_or(|sent| sent.elapsed() >= TYPING_REFRESH);
            due.then(|| {
                *typing_sent = Some(Instant::now());
                typing(Sender::Bot)
            })
        }
        // A handoff's notice arrives as a message of its own.
        EventKind::Typing { .. }
        | EventKind::Status(_)
        | EventKind::Deleted
        | EventKind::Handoff(_)
        | EventKind::Feedback { .. } => None,
    }
}

async fn send_set(socket: &mut WebSocket, set: &ActivitySet, limit: Duration) -> bool {
    let Ok(text) = serde_json::to_string(set) else {
        return false;
    };
    matches!(
        tokio::time::timeout(limit, socket.send(WsMessage::Text(text.into()))).await,
        Ok(Ok(()))
    )
}
