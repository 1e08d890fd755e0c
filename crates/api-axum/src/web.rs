//! The web chat page at `/`: three static files (`index.html`, `app.js`, `app.css`)
//! from `crates/api-axum/web/`, embedded in the binary at build time, so that
//! `cargo build` alone serves the page: no CDN, no Node, no files next to the binary.
//!
//! The page is a client of the public API like any other (it fetches a guest token,
//! then uses REST and `/ws`), so these routes need no identity. Each answer carries an
//! `ETag` and `Cache-Control: no-cache`: a browser keeps the file but asks again on each
//! load, and a new binary's page is seen at once without versioned file names.

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// The page's policy: everything from this origin only (the socket included), no
/// inline scripts, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

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

    /// The file, or `304 Not Modified` when the browser already holds this version.
    fn respond(&self, request: &HeaderMap) -> Response {
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
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ];
        if cached {
            (StatusCode::NOT_MODIFIED, headers).into_response()
        } else {
            (headers, self.body).into_response()
        }
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
            get(|headers: HeaderMap| async move { INDEX_HTML.respond(&headers) }),
        )
        .route(
            "/app.js",
            get(|headers: HeaderMap| async move { APP_JS.respond(&headers) }),
        )
        .route(
            "/app.css",
            get(|headers: HeaderMap| async move { APP_CSS.respond(&headers) }),
        )
}
