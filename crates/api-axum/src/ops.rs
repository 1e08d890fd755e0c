//! The operational side of the API, composed around [`router`](crate::router):
//! `GET /metrics` (Prometheus text), `GET /readyz`, request ids and metrics
//! ([`observability`](crate::observability)), the send rate and request time limits
//! ([`limits`](crate::limits)) and CORS.
//!
//! Handlers reach the [`Limiter`](crate::limits::Limiter) and the
//! [`Shutdown`](crate::shutdown::Shutdown) through the [`AppState`]; only the probes
//! and the layers are configured here.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::dto::HealthResponse;
use crate::error::ApiError;
use crate::state::AppState;

/// Whether the server can do its work: the database answers and its schema is current.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// Checks readiness.
    ///
    /// # Errors
    /// What is not ready, for the log; clients get only `unavailable`.
    async fn check(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;
}

/// Renders the metrics registry as Prometheus text.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// Everything the operational layers need.
pub struct Operations {
    /// The readiness check of `/readyz`.
    pub readiness: Arc<dyn Readiness>,
    /// The body of `/metrics`.
    pub metrics: RenderMetrics,
    /// Origins allowed by CORS on confab's own API; empty allows none, `*` any. The
    /// Direct Line routes allow any.
    pub cors_origins: Vec<String>,
    /// How long `/readyz` waits for the database.
    pub readiness_timeout: Duration,
}

/// [`router`](crate::router) with `/metrics`, `/readyz` and every operational layer.
///
/// # Errors
/// A CORS origin that is not a valid header value.
pub fn router_with_operations(state: AppState, ops: Operations) -> Result<Router, String> {
    let cors = cors_layer(&ops.cors_origins)?;
    let probes = Router::new()
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .with_state(Arc::new(Probes {
            readiness: ops.readiness,
            metrics: ops.metrics,
            timeout: ops.readiness_timeout,
        }));
    let limiter = state.limiter.clone();
    let router = limiter.apply(crate::router(state)).merge(probes);
    let router = crate::observability::observe(router);
    Ok(router.layer(cors))
}

/// CORS: the configured origins on confab's own API; any origin on the Direct Line
/// routes, as the Direct Line service itself allows, since they take bearer secrets
/// and tokens only (no cookies) and are meant for pages on other sites.
fn cors_layer(origins: &[String]) -> Result<CorsLayer, String> {
    let any = origins.iter().any(|origin| origin == "*");
    let listed = origins
        .iter()
        .filter(|origin| *origin != "*")
        .map(|origin| {
            HeaderValue::from_str(origin).map_err(|_| format!("invalid CORS origin {origin:?}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let allow = AllowOrigin::predicate(move |origin, request| {
        any || request.uri.path().starts_with(crate::directline::PREFIX)
            || listed.iter().any(|allowed| allowed == origin)
    });
    let mut headers = vec![
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::HeaderName::from_static("idempotency-key"),
        crate::observability::REQUEST_ID,
    ];
    headers.extend(
        crate::directline::CLIENT_HEADERS
            .iter()
            .map(|name| header::HeaderName::from_static(name)),
    );
    Ok(CorsLayer::new()
        .allow_origin(allow)
        .allow_methods(Any)
        .allow_headers(headers)
        .expose_headers([header::RETRY_AFTER, crate::observability::REQUEST_ID]))
}

pub(crate) struct Probes {
    readiness: Arc<dyn Readiness>,
    metrics: RenderMetrics,
    timeout: Duration,
}

/// Prometheus metrics in the text exposition format. Needs no token; expose it only to
/// the monitoring network.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    responses((status = 200, description = "Prometheus text exposition format.", content_type = "text/plain"))
)]
pub(crate) async fn metrics(State(probes): State<Arc<Probes>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        (probes.metrics)(),
    )
        .into_response()
}

/// Readiness: 200 when the database answers and is migrated, else 503 `unavailable`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "meta",
    responses(
        (status = 200, description = "Ready: the database answers and is migrated.", body = HealthResponse),
        (status = 503, response = crate::problems::Unavailable),
    )
)]
pub(crate) async fn readyz(
    State(probes): State<Arc<Probes>>,
) -> Result<Json<HealthResponse>, ApiError> {
    match tokio::time::timeout(probes.timeout, probes.readiness.check()).await {
        Ok(Ok(())) => Ok(Json(HealthResponse {
            status: "ok".to_owned(),
        })),
        Ok(Err(error)) => Err(ApiError::unavailable(&*error)),
        Err(elapsed) => Err(ApiError::unavailable(&elapsed)),
    }
}
