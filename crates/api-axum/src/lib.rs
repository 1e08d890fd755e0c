//! confab's HTTP API on axum: the REST routes of the conversations API, bearer-token
//! identity, RFC 9457 problem details for every error, and the OpenAPI description.
//!
//! [`router`] builds the whole API over an [`AppState`]; it never binds a socket (the
//! server crate does). Handlers call the domain's services ([`ConversationService`],
//! and for administrators `AdminService` and `BotAdmin`) and nothing below them.
//!
//! # Layout
//! - `state`: [`AppState`], every dependency a handler uses as a typed field.
//! - [`config`]: [`ApiConfig`] and [`WsSettings`].
//! - [`error`]: [`ApiError`](error::ApiError), the problem details body and the
//!   mapping from domain errors.
//! - [`dto`]: the JSON shapes on the wire and their OpenAPI schemas; `command`: wire
//!   input → domain command, shared by REST and the WebSocket.
//! - [`auth`]: [`Auth`] (HS256 tokens) and the [`Authenticated`] extractor.
//! - [`extract`]: JSON, query and path extractors that reject with [`ApiError`](error::ApiError).
//! - `routes`: one module per resource (conversations, bots, guest tokens, health and
//!   the OpenAPI document), each with its `routes()`.
//! - `openapi`: the OpenAPI 3.1 document, see [`openapi()`]; `problems`: its error
//!   responses and the groups of them operations share.
//! - [`ws`]: the WebSocket endpoint `/ws` and its protocol.
//! - [`ops`]: [`router_with_operations`](ops::router_with_operations): `/metrics`,
//!   `/readyz`, CORS and the limits' layers around [`router`]; with
//!   [`observability`] (request ids, HTTP metrics) and [`limits`] (send rate,
//!   sockets per user, request time).
//! - [`shutdown`]: the signal that closes WebSockets when the server stops.
//! - `web`: the chat page at `/`, embedded at build time.
//! - `directline`: Direct Line 3.0 under `/v3/directline`, for Bot Framework clients.
//!
//! [`ConversationService`]: confab_domain::service::ConversationService

use axum::Router;
use axum::extract::DefaultBodyLimit;

pub mod auth;
mod command;
pub mod config;
mod directline;
pub mod dto;
pub mod error;
pub mod extract;
pub mod limits;
pub mod observability;
mod openapi;
pub mod ops;
mod problems;
mod routes;
pub mod shutdown;
mod state;
mod web;
pub mod ws;

pub use auth::{Auth, Authenticated, ConversationGrant, GrantRejection, IssueError, IssuedToken};
pub use config::{ApiConfig, DirectLineSecret, DirectLineSettings, WsSettings};
pub use openapi::openapi;
pub use state::AppState;

/// The whole API: REST routes at the root and again under `/api`, `/ws`, Direct Line
/// under `/v3/directline`, and the chat page at `/`.
pub fn router(state: AppState) -> Router {
    let api = routes::routes()
        .merge(openapi::routes())
        .method_not_allowed_fallback(routes::method_not_allowed);
    Router::new()
        .merge(ws::routes())
        .merge(web::routes())
        .merge(api.clone())
        .nest("/api", api)
        .nest(directline::PREFIX, directline::routes())
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .with_state(state)
}
