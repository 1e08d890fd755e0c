//! confab's HTTP API on axum: the REST routes of the conversations API, bearer-token
//! identity, RFC 9457 problem details for every error, and the OpenAPI description.
//!
//! [`router`] builds the whole API over an [`AppState`]; it never binds a socket (the
//! server crate does). Handlers call [`ConversationService`] and nothing below it.
//!
//! # Layout
//! - [`error`]: [`ApiError`](error::ApiError), the problem details body and the
//!   mapping from domain errors.
//! - [`dto`]: the JSON shapes on the wire and their OpenAPI schemas.
//! - [`auth`]: [`Auth`] (HS256 tokens) and the [`Authenticated`] extractor.
//! - [`extract`]: JSON, query and path extractors that reject with [`ApiError`](error::ApiError).
//! - `routes`: one module per resource (conversations, bots, guest tokens, health and
//!   the OpenAPI document), each with its `routes()`.
//! - `openapi`: the OpenAPI 3.1 document, see [`openapi()`].
//! - [`ws`]: the WebSocket endpoint `/ws` and its protocol.
//! - [`ops`]: [`router_with_operations`](ops::router_with_operations): `/metrics`,
//!   `/readyz`, CORS and the shutdown signal around [`router`]; with
//!   [`observability`] (request ids, HTTP metrics) and [`limits`] (send rate,
//!   sockets per user, request time).
//! - `web`: the chat page at `/`, embedded at build time.
//!
//! [`ConversationService`]: confab_domain::service::ConversationService

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use confab_domain::service::ConversationService;

pub mod auth;
pub mod dto;
pub mod error;
pub mod extract;
pub mod limits;
pub mod observability;
mod openapi;
pub mod ops;
mod routes;
mod web;
pub mod ws;

pub use auth::{Auth, Authenticated, IssueError, IssuedToken};
pub use openapi::openapi;

/// Settings of the API layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiConfig {
    /// WebSocket limits and timers.
    pub ws: ws::WsSettings,
    /// Whether `POST /auth/guest` hands out guest tokens.
    pub guests_enabled: bool,
    /// How long a guest token lives.
    pub guest_token_ttl: Duration,
    /// How long `?wait=true` waits for a bot's replies.
    pub wait_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            ws: ws::WsSettings::default(),
            guests_enabled: true,
            guest_token_ttl: Duration::from_secs(24 * 60 * 60),
            wait_timeout: Duration::from_secs(10),
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub service: Arc<ConversationService>,
    /// Token issuing and verification.
    pub auth: Arc<Auth>,
    /// Settings.
    pub config: ApiConfig,
}

/// The whole API: REST routes at the root and again under `/api`, `/ws`, and the chat
/// page at `/`.
pub fn router(state: AppState) -> Router {
    let api = routes::routes().method_not_allowed_fallback(routes::method_not_allowed);
    Router::new()
        .merge(ws::routes())
        .merge(web::routes())
        .merge(api.clone())
        .nest("/api", api)
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .with_state(state)
}
