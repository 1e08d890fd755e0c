//! The operational side of the API, composed around [`router`](crate::router):
//! `GET /metrics` (Prometheus text), `GET /readyz`, request ids and metrics
//! ([`observability`](crate::observability)), limits ([`limits`](crate::limits)), CORS,
//! and the shutdown signal WebSockets listen to.
//!
//! Handlers reach the [`Limiter`] and the [`Shutdown`] through request extensions, so
//! the router keeps working without them (the router tests build none).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use tokio::sync::watch;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::AppState;
use crate::dto::HealthResponse;
use crate::error::ApiError;
use crate::limits::Limiter;

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

/// Tells open WebSockets that the server is stopping and waits for them to close.
#[derive(Clone)]
pub struct Shutdown {
    stopping: watch::Receiver<bool>,
    tracker: tokio_util::task::TaskTracker,
}

/// The trigger of a [`Shutdown`].
pub struct ShutdownTrigger {
    stopping: watch::Sender<bool>,
    tracker: tokio_util::task::TaskTracker,
}

impl Shutdown {
    /// A signal not yet given, and its trigger.
    pub fn new() -> (Self, ShutdownTrigger) {
        let (sender, receiver) = watch::channel(false);
        let tracker = tokio_util::task::TaskTracker::new();
        (
            Self {
                stopping: receiver,
                tracker: tracker.clone(),
            },
            ShutdownTrigger {
                stopping: sender,
                tracker,
            },
        )
    }

    /// Completes once the server is stopping.
    pub async fn stopping(&self) {
        let mut stopping = self.stopping.clone();
        // An error means the trigger is gone, which only happens once the server has
        // stopped: treat it as stopping too.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// Runs `task` (a WebSocket session) so that [`ShutdownTrigger::stop`] waits for it.
    pub fn track<F>(&self, task: F) -> impl Future<Output = F::Output> + Send + use<F>
    where
        F: Future + Send,
    {
        self.tracker.track_future(task)
    }
}

impl ShutdownTrigger {
    /// Tells every WebSocket to close with 1001 and waits up to `grace` for them.
    /// Returns whether all closed in time.
    pub async fn stop(self, grace: Duration) -> bool {
        self.stopping.send_replace(true);
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// Everything the operational layers need.
pub struct Operations {
    /// The readiness check of `/readyz`.
    pub readiness: Arc<dyn Readiness>,
    /// The body of `/metrics`.
    pub metrics: RenderMetrics,
    /// Rate, socket and time limits.
    pub limiter: Limiter,
    /// Origins allowed by CORS; empty allows none, `*` any.
    pub cors_origins: Vec<String>,
    /// The shutdown signal.
    pub shutdown: Shutdown,
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
    let router = ops.limiter.apply(crate::router(state)).merge(probes);
    let router = crate::observability::observe(router)
        .layer(Extension(ops.limiter))
        .layer(Extension(ops.shutdown));
    Ok(match cors {
        Some(cors) => router.layer(cors),
        None => router,
    })
}

fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::from(Any)
    } else {
        let values = origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin).map_err(|_| format!("invalid CORS origin {origin:?}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        AllowOrigin::list(values)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods(Any)
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::HeaderName::from_static("idempotency-key"),
                crate::observability::REQUEST_ID,
            ])
            .expose_headers([header::RETRY_AFTER, crate::observability::REQUEST_ID]),
    ))
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
        (status = 503, response = crate::error::Unavailable),
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
