//! Routes about the server itself: `GET /healthz`, which needs no token. The
//! document at `GET /openapi.json` is served by the `openapi` module, which lists
//! every route's description, this one's too.

use axum::routing::get;
use axum::{Json, Router};

use crate::dto::HealthResponse;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz))
}

/// Liveness: answers as long as the process serves HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses((status = 200, description = "The server is up.", body = HealthResponse))
)]
pub(crate) async fn healthz() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".to_owned(),
    })
}
