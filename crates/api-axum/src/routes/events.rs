//! Server-Sent Events at `GET /conversations/{id}/events`: the WebSocket's server
//! frames for one conversation, for clients behind proxies that break WebSockets.
//!
//! Each event's `event:` is the frame's `type` and its `data:` the same JSON a socket
//! gets. Stored messages carry `id: <seq>`, so an `EventSource` that reconnects sends
//! `Last-Event-ID` and gets every message it missed, once (see docs/websocket.md).

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use confab_domain::event::EventKind;
use confab_domain::message::Seq;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::{ApiQuery, ConversationPath};
use crate::state::AppState;
use crate::ws::protocol::ServerFrame;

/// How often a comment line keeps an idle stream open through proxies.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/conversations/{id}/events", get(events))
}

/// Where a new event stream starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventsParams {
    /// Replay every message with a greater seq first. `Last-Event-ID` wins over it.
    after_seq: Option<u64>,
}

/// Streams a conversation's events as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/conversations/{id}/events",
    tag = "conversations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The conversation's id."),
        ("Last-Event-ID" = Option<String>, Header, description = "The seq of the last message received; every later one is replayed."),
        EventsParams,
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream` of the conversation's events.", content_type = "text/event-stream", body = String),
        (status = 400, response = crate::problems::BadRequest),
        (status = 401, response = crate::problems::Unauthorized),
        (status = 404, response = crate::problems::NotFound),
        (status = 503, response = crate::problems::Unavailable),
    )
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ConversationPath(id): ConversationPath,
    ApiQuery(params): ApiQuery<EventsParams>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let after = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .map(Seq::new)
                .ok_or_else(|| ApiError::invalid_request("Last-Event-ID must be a message seq"))?,
        ),
        None => params.after_seq.map(Seq::new),
    };
    let (_, follow) = state.service.follow(&caller, id, after).await?;
    let stream = follow.map(|item| {
        Ok(match item {
            Ok(event) => {
                let seq = match &event.kind {
                    EventKind::Message(message) => Some(message.seq),
                    _ => None,
                };
                let frame = ServerFrame::from_event(event);
                let sse = Event::default().event(frame.kind()).data(frame.to_text());
                match seq {
                    Some(seq) => sse.id(seq.to_string()),
                    None => sse,
                }
            }
            Err(error) => {
                let error = ApiError::from(error);
                let frame = ServerFrame::Error {
                    code: error.code().as_str(),
                    message: error.detail().to_owned(),
                    reference: None,
                };
                Event::default().event(frame.kind()).data(frame.to_text())
            }
        })
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
