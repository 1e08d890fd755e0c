//! Server-Sent Events at `GET /conversations/{id}/events`: the WebSocket's server
//! frames for one conversation, for clients behind proxies that break WebSockets.
//!
//! Each event's `event:` is the frame's `type` and its `data:` the same JSON a socket
//! gets. Stored messages carry `id: <seq>`, so an `EventSource` that reconnects sends
//! `Last-Event-ID` and gets every message it missed, once (see docs/websocket.md).

use std::borrow::Cow;
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
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::auth::Authenticated;
use crate::dto::LARGEST_POSITION;
use crate::dto::text::SeqText;
use crate::error::ApiError;
use crate::extract::{ApiQuery, ConversationPath};
use crate::state::AppState;
use crate::ws::protocol::{EventFrame, ServerFrame};

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
    #[param(maximum = 9007199254740992_f64)]
    after_seq: Option<u64>,
}

/// The document's schema of one event of the stream, read as an `EventSource` reads
/// it: its `event` (the frame's type), its `data` (the frame, JSON text) and, for a
/// stored message, its `id` (the message's seq, which later events repeat until the
/// next message, as the SSE format says).
pub(crate) struct ServerSentEvent;

/// The frame types the stream carries, and whether the event carries its own `id`.
const EVENT_TYPES: [(&str, &str); 7] = [
    (
        "message",
        "A stored message: the frame of a WebSocket `message`; `id` is its seq.",
    ),
    ("delta", "Part of a bot reply being produced."),
    ("typing", "Someone started or stopped typing."),
    (
        "handoff",
        "Who answers the user changed: the bot, nobody yet (waiting) or an agent.",
    ),
    (
        "feedback",
        "The user rated a bot reply, changed the rating, or took it back.",
    ),
    (
        "status",
        "The conversation was archived, unarchived or deleted.",
    ),
    ("error", "The stream failed; it ends after this event."),
];

impl PartialSchema for ServerSentEvent {
    fn schema() -> RefOr<Schema> {
        let variants = EVENT_TYPES.iter().map(|(kind, description)| {
            let mut event = ObjectBuilder::new()
                .description(Some(*description))
                .property(
                    "event",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([*kind])),
                )
                .required("event")
                .property(
                    "data",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .content_media_type("application/json")
                        .description(Some(
                            "The frame as JSON text, the same a WebSocket gets (docs/websocket.md).",
                        )),
                )
                .required("data")
                .property("id", Ref::from_schema_name(SeqText::name()));
            if *kind == "message" {
                event = event.required("id");
            }
            event
        });
        variants
            .fold(OneOfBuilder::new(), OneOfBuilder::item)
            .description(Some(
                "One Server-Sent Event: `event` is the frame's type, `data` the frame as \
                 JSON text, `id` the seq of the last stored message.",
            ))
            .into()
    }
}

impl ToSchema for ServerSentEvent {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ServerSentEvent")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((SeqText::name().into_owned(), SeqText::schema()));
    }
}

/// A seq as `Last-Event-ID` carries it: digits only, of a number below 10^19, as
/// the document's `Seq` pattern says.
fn last_event_id(text: &str) -> Option<Seq> {
    let digits = text.trim();
    let significant = digits.trim_start_matches('0');
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || significant.len() > 19 {
        return None;
    }
    digits.parse::<u64>().ok().map(Seq::new)
}

/// Streams a conversation's events as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/conversations/{id}/events",
    tag = "conversations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The conversation's id."),
        ("Last-Event-ID" = Option<SeqText>, Header, nullable = false, description = "The seq of the last message received; every later one is replayed."),
        EventsParams,
    ),
    responses(
        (status = 200, description = "An endless `text/event-stream` of the conversation's events; a comment line every 15 s keeps it open.", content_type = "text/event-stream", body = ServerSentEvent),
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
    // Checked even when `Last-Event-ID` wins: a parameter out of its range is refused
    // whatever else the request says, as the document says.
    if params.after_seq.is_some_and(|seq| seq > LARGEST_POSITION) {
        return Err(ApiError::invalid_request(format!(
            "after_seq must be at most {LARGEST_POSITION}"
        )));
    }
    let after =
        match headers.get("last-event-id") {
            Some(value) => {
                Some(value.to_str().ok().and_then(last_event_id).ok_or_else(|| {
                    ApiError::invalid_request("Last-Event-ID must be a message seq")
                })?)
            }
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
                let frame = EventFrame::of(&event);
                let sse = Event::default().event(frame.kind).data(frame.text.as_str());
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
