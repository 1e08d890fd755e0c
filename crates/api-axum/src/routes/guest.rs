//! `POST /auth/guest`: a throwaway identity for trying confab without an account.
//! It needs no token, and is refused when the deployer turned guests off.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use confab_domain::user::{Role, UserId};

use crate::dto::{GuestBody, GuestTokenResponse};
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/auth/guest", post(guest))
}

/// Creates a guest user (`guest-<uuid>`) and a bearer token for it.
#[utoipa::path(
    post,
    path = "/auth/guest",
    tag = "auth",
    request_body(content = Option<GuestBody>, description = "An empty object, `null`, or no body."),
    responses(
        (status = 201, description = "A guest identity and its token.", body = GuestTokenResponse),
        (status = 400, response = crate::problems::BadRequest),
        (status = 403, response = crate::problems::Forbidden),
    )
)]
pub(crate) async fn guest(
    State(state): State<AppState>,
    // Read only so that a malformed body is refused; an empty object, `null` and no
    // body at all carry nothing.
    // A map, not `GuestBody`: serde would read an empty struct from `[]` too.
    _body: Option<ApiJson<Option<serde_json::Map<String, serde_json::Value>>>>,
) -> Result<(StatusCode, Json<GuestTokenResponse>), ApiError> {
    if !state.config.guests_enabled {
        return Err(ApiError::forbidden(
            "guest access is disabled on this server",
        ));
    }
    let user_id = UserId::parse(&format!("guest-{}", uuid::Uuid::now_v7()))?;
    let issued = state
        .auth
        .issue(&user_id, &Role::User, state.config.guest_token_ttl)
        .map_err(|error| ApiError::internal(&error))?;
    Ok((
        StatusCode::CREATED,
        Json(GuestTokenResponse {
            user_id: user_id.to_string(),
            token: issued.token,
            expires_at: issued.expires_at.to_rfc3339(),
        }),
    ))
}
