//! `GET /bots` and `GET /bots/{id}`: the bots a user can start a conversation with.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};

use crate::AppState;
use crate::auth::Authenticated;
use crate::dto::{BotBody, BotListResponse};
use crate::error::ApiError;
use crate::extract::BotPath;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/bots", get(list_bots))
        .route("/bots/{id}", get(get_bot))
}

/// Lists every bot, ordered by id.
#[utoipa::path(
    get,
    path = "/bots",
    tag = "bots",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every bot.", body = BotListResponse),
        (status = 401, response = crate::error::Unauthorized),
        (status = 500, response = crate::error::Internal),
        (status = 503, response = crate::error::Unavailable),
    )
)]
pub(crate) async fn list_bots(
    State(state): State<AppState>,
    _caller: Authenticated,
) -> Result<Json<BotListResponse>, ApiError> {
    let bots = state.service.bots().await?;
    Ok(Json(BotListResponse {
        bots: bots.into_iter().map(BotBody::from).collect(),
    }))
}

/// One bot.
#[utoipa::path(
    get,
    path = "/bots/{id}",
    tag = "bots",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The bot's id, 1 to 64 of a-z, 0-9, _ and -.")),
    responses(
        (status = 200, description = "The bot.", body = BotBody),
        (status = 400, response = crate::error::BadRequest),
        (status = 401, response = crate::error::Unauthorized),
        (status = 404, response = crate::error::NotFound),
        (status = 500, response = crate::error::Internal),
        (status = 503, response = crate::error::Unavailable),
    )
)]
pub(crate) async fn get_bot(
    State(state): State<AppState>,
    _caller: Authenticated,
    BotPath(id): BotPath,
) -> Result<Json<BotBody>, ApiError> {
    Ok(Json(state.service.bot(&id).await?.into()))
}
