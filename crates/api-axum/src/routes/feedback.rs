//! Feedback on bot replies: `PUT` rates a reply up or down (replacing an earlier
//! rating), `DELETE` takes the rating back. Only the conversation's user rates, and
//! only the bot's replies.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use confab_domain::message::FeedbackComment;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::dto::{MessageBody, RatingBody};
use crate::error::ApiError;
use crate::extract::{ApiJson, MessagePath};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route(
        "/conversations/{id}/messages/{message_id}/feedback",
        put(rate).delete(unrate),
    )
}

/// `PUT /conversations/{id}/messages/{message_id}/feedback`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FeedbackRequest {
    /// `up` or `down`.
    rating: RatingBody,
    /// Why, at most 1000 characters, without NUL; blank is no comment.
    #[serde(default)]
    #[schema(max_length = 1000, pattern = r"^[^\u0000]*$")]
    comment: Option<String>,
}

/// Rates a bot reply up or down, with an optional comment; a new rating replaces the
/// old. The conversation's followers get a `feedback` frame.
#[utoipa::path(
    put,
    path = "/conversations/{id}/messages/{message_id}/feedback",
    tag = "conversations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The conversation's id."),
        ("message_id" = String, Path, format = Uuid, description = "The bot reply's id."),
    ),
    request_body = FeedbackRequest,
    responses(
        (status = 200, description = "The reply, with its feedback.", body = MessageBody),
        crate::problems::ResourceErrors,
        (status = 403, response = crate::problems::Forbidden),
    )
)]
pub(crate) async fn rate(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    MessagePath(conversation, message): MessagePath,
    ApiJson(body): ApiJson<FeedbackRequest>,
) -> Result<Json<MessageBody>, ApiError> {
    let comment = match body.comment.as_deref() {
        Some(comment) => FeedbackComment::parse(comment)?,
        None => None,
    };
    let rated = state
        .service
        .rate(&caller, conversation, message, body.rating.into(), comment)
        .await?;
    Ok(Json(MessageBody::from(rated)))
}

/// Takes the caller's rating of a bot reply back (nothing to take back is fine too).
#[utoipa::path(
    delete,
    path = "/conversations/{id}/messages/{message_id}/feedback",
    tag = "conversations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, format = Uuid, description = "The conversation's id."),
        ("message_id" = String, Path, format = Uuid, description = "The bot reply's id."),
    ),
    responses(
        (status = 204, description = "The reply has no feedback now."),
        crate::problems::ResourceErrors,
        (status = 403, response = crate::problems::Forbidden),
    )
)]
pub(crate) async fn unrate(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    MessagePath(conversation, message): MessagePath,
) -> Result<StatusCode, ApiError> {
    state.service.unrate(&caller, conversation, message).await?;
    Ok(StatusCode::NO_CONTENT)
}
