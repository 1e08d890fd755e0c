//! What operators see: a request id on every request and log line, one `tracing` span
//! per request, and HTTP metrics by route.
//!
//! Metrics go through the `metrics` facade; whichever recorder the binary installs
//! (the server installs a Prometheus one) receives them, and none is a no-op, so tests
//! of the router need no set-up.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// The header carrying the request id, in and out.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Counter of HTTP requests, by `method`, `route` and `status`.
pub const HTTP_REQUESTS: &str = "confab_http_requests_total";
/// Histogram of HTTP request durations in seconds, by `method` and `route`.
pub const HTTP_DURATION: &str = "confab_http_request_duration_seconds";
/// Gauge of open WebSockets.
pub const WEBSOCKETS_OPEN: &str = "confab_websockets_open";
/// Counter of requests and frames refused by a limit, by `limit`.
pub const LIMITED: &str = "confab_limited_total";

/// The route label of requests that matched no route, so that scanners probing
/// random paths cannot blow up the number of series.
const UNMATCHED: &str = "unmatched";

/// Adds request ids, the request span and HTTP metrics to `router`.
///
/// A request's `x-request-id` is kept when the client sent one and made up (a UUID)
/// otherwise; it is echoed in the response and recorded on the request's span, so
/// every log line of the request carries it.
pub fn observe(router: Router) -> Router {
    router
        .layer(middleware::from_fn(record_http_metrics))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                // One line per request at info: an access log carrying the request id.
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                .make_span_with(|request: &Request| {
                    let request_id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        uri = %request.uri().path(),
                        request_id,
                    )
                }),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Counts the request and records its duration under its route template.
async fn record_http_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(HTTP_DURATION, "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}
