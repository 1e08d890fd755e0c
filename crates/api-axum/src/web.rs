//! The web chat page at `/`: three static files (`index.html`, `app.js`, `app.css`)
//! from `crates/api-axum/web/`, embedded in the binary at build time, so that
//! `cargo build` alone serves the page: no CDN, no Node, no files next to the binary.
//!
//! The page is a client of the public API like any other (it fetches a guest token,
//! then uses REST and `/ws`), so these routes need no identity. Each answer carries an
//! `ETag` and `Cache-Control: no-cache`: a browser keeps the file but asks again on each
//! load, and a new binary's page is seen at once without versioned file names.
//!
//! Each answer also carries the page's security headers: a Content-Security-Policy
//! that allows only this origin's scripts, styles and socket and the framing pages of
//! [`FrameAncestors`], `X-Content-Type-Options: nosniff` and `Referrer-Policy:
//! no-referrer` (the page's links go nowhere that needs to know where from).

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::LazyLock;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::{ApiConfig, FrameAncestors};
use crate::state::AppState;

/// Builds the page's Content-Security-Policy: everything from this origin only, no
/// inline script or style, no plugins, and framing only by `frame_ancestors`.
///
/// `connect-src 'self'` covers the page's own `/ws` in current browsers (CSP level 3
/// matches `ws:`/`wss:` of the same host to `'self'`), but Safari before 16 and
/// Chrome before 71 did not; so the socket's origins for the host the browser asked
/// for are listed too, when the `Host` header is a plain `host[:port]`.
fn content_security_policy(host: Option<&HeaderValue>, frame_ancestors: &FrameAncestors) -> String {
    let host = host
        .and_then(|host| host.to_str().ok())
        .filter(|host| is_authority(host));
    let sockets = host.map_or_else(String::new, |host| format!(" ws://{host} wss://{host}"));
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {}",
        frame_ancestors.as_str()
    )
}

/// Whether `host` is a `Host` header of a name or address and an optional port, and
/// nothing that could change the policy it is written into.
fn is_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ':' | '[' | ']'))
}

/// The legacy `X-Frame-Options` that says the same as `frame-ancestors`, for browsers
/// that predate it; it cannot name other origins, so it is only sent for `'none'`
/// and `'self'`.
fn x_frame_options(frame_ancestors: &FrameAncestors) -> Option<HeaderValue> {
    match frame_ancestors.as_str() {
        "'none'" => Some(HeaderValue::from_static("DENY")),
        "'self'" => Some(HeaderValue::from_static("SAMEORIGIN")),
        _ => None,
    }
}

/// One embedded file and how it is served.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        // A hex digest is always a valid header value; the fallback only keeps this
        // function total.
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish()))
            .unwrap_or_else(|_| HeaderValue::from_static("\"confab\""));
        Self {
            body,
            content_type,
            etag,
        }
    }

    /// The file, or `304 Not Modified` when the browser already holds this version,
    /// with the page's security headers.
    fn respond(&self, request: &HeaderMap, config: &ApiConfig) -> Response {
        let cached = request
            .get(header::IF_NONE_MATCH)
            .is_some_and(|tags| tags.as_bytes() == self.etag.as_bytes());
        let headers = [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, self.etag.clone()),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ];
        let policy = content_security_policy(request.get(header::HOST), &config.frame_ancestors);
        let mut response = if cached {
            (StatusCode::NOT_MODIFIED, headers).into_response()
        } else {
            (headers, self.body).into_response()
        };
        let response_headers = response.headers_mut();
        // Built from checked parts only; the fallback keeps this function total.
        let policy = HeaderValue::from_str(&policy)
            .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"));
        response_headers.insert(header::CONTENT_SECURITY_POLICY, policy);
        if let Some(frame_options) = x_frame_options(&config.frame_ancestors) {
            response_headers.insert(header::X_FRAME_OPTIONS, frame_options);
        }
        response
    }
}

static INDEX_HTML: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../web/index.html"),
        "text/html; charset=utf-8",
    )
});
static APP_JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        include_str!("../web/app.js"),
        "text/javascript; charset=utf-8",
    )
});
static APP_CSS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new(include_str!("../web/app.css"), "text/css; charset=utf-8"));

/// `/`, `/app.js` and `/app.css`, without authentication.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(
                |State(state): State<AppState>, headers: HeaderMap| async move {
                    INDEX_HTML.respond(&headers, &state.config)
                },
            ),
        )
        .route(
            "/app.js",
            get(
                |State(state): State<AppState>, headers: HeaderMap| async move {
                    APP_JS.respond(&headers, &state.config)
                },
            ),
        )
        .route(
            "/app.css",
            get(
                |State(state): State<AppState>, headers: HeaderMap| async move {
                    APP_CSS.respond(&headers, &state.config)
                },
            ),
        )
}
