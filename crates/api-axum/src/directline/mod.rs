//! Direct Line 3.0 under `/v3/directline`: the protocol of Microsoft's Bot Framework,
//! so that BotFramework Web Chat, `botframework-directlinejs` and the mobile samples
//! talk to confab by changing one URL. See docs/directline.md.
//!
//! An adapter over the same [`ConversationService`] as the REST API: a Direct Line
//! conversation is an ordinary confab conversation (it shows up in history, exports
//! and analytics), an activity is a message, and a watermark is a seq.
//!
//! # Layout
//! - `access`: secrets (one bot each, held by the deployer's server) and conversation
//!   tokens (one conversation each, held by the browser).
//! - `wire`: the JSON shapes; `mapping`: messages as activities and back.
//! - `rest`: tokens, conversations, activities, upload.
//! - `stream`: the `streamUrl` WebSocket.
//! - `error`: Direct Line's error shape and statuses.
//!
//! [`ConversationService`]: confab_domain::service::ConversationService

mod access;
mod error;
mod mapping;
mod rest;
mod stream;
mod wire;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;

/// Where the Direct Line routes live, as Direct Line clients expect under their
/// `domain`.
pub(crate) const PREFIX: &str = "/v3/directline";

/// The request headers Direct Line clients send besides `Authorization` and
/// `Content-Type`, which CORS must let through.
pub(crate) const CLIENT_HEADERS: [&str; 2] = ["x-ms-bot-agent", "x-requested-with"];

/// The Direct Line routes, to be nested under [`PREFIX`].
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/tokens/generate", post(rest::generate_token))
        .route("/tokens/refresh", post(rest::refresh_token))
        .route("/conversations", post(rest::start_conversation))
        .route("/conversations/{id}", get(rest::reconnect))
        .route(
            "/conversations/{id}/activities",
            get(rest::get_activities).post(rest::post_activity),
        )
        .route("/conversations/{id}/upload", post(rest::upload))
        .route("/conversations/{id}/stream", get(stream::upgrade))
        .fallback(rest::not_found)
        .method_not_allowed_fallback(rest::method_not_allowed)
}
