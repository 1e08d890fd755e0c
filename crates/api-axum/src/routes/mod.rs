//! The REST routes, one module per resource; each owns `fn routes() -> Router<AppState>`.
//! Handlers stay thin: wire DTO → domain command → [`ConversationService`] → response
//! DTO. Every rule lives in the domain; this layer only translates.
//!
//! [`ConversationService`]: confab_domain::service::ConversationService

use axum::Router;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

pub(crate) mod analytics;
pub(crate) mod batch;
pub(crate) mod bots;
pub(crate) mod conversations;
pub(crate) mod events;
pub(crate) mod export;
pub(crate) mod feedback;
pub(crate) mod guest;
pub(crate) mod handoff;
pub(crate) mod meta;
pub(crate) mod search;
pub(crate) mod webhooks;

/// Every REST route, without the `/api` prefix.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(batch::routes())
        .merge(conversations::routes())
        .merge(handoff::routes())
        .merge(feedback::routes())
        .merge(search::routes())
        .merge(export::routes())
        .merge(analytics::routes())
        .merge(events::routes())
        .merge(bots::routes())
        .merge(webhooks::routes())
        .merge(guest::routes())
        .merge(meta::routes())
}

/// The answer for a path no route serves.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

/// The answer for a known path with a method it does not serve; axum adds `Allow`.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this path does not serve this method; see the Allow header",
    )
}
