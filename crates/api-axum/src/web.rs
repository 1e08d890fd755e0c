//! The web chat at `/`: the page (`index.html`, `app.js`, `markdown.js`, `app.css`),
//! the agents' page at `/agent` (`agent.html`, `agent.js`, `agent.css`), the
//! embeddable widget (`widget.js`) and the vendored libraries the pages render
//! Markdown with (`vendor/`), all from `crates/api-axum/web/`, embedded in the binary
//! at build time, so that `cargo build` alone serves the chat: no CDN, no Node, no
//! files next to the binary.
//!
//! The pages are clients of the public API like any other (the chat fetches a guest
//! token, the agents' page takes an agent's token pasted in, then both use REST and
//! `/ws`), so these routes need no identity. The page's own files
//! carry an `ETag` and `Cache-Control: no-cache`: a browser keeps the file but asks
//! again on each load, and a new binary's page is seen at once without versioned file
//! names. The vendored files do have their version in their names, so they are cached
//! for a year without asking.
//!
//! Each answer also carries the page's security headers: a Content-Security-Policy
//! that allows only this origin's scripts, styles and socket, images from this origin
//! or any `https:` one (a bot's attachments), and the framing sites of
//! [`EmbedOrigins`]; `X-Content-Type-Options: nosniff` and `Referrer-Policy:
//! no-referrer` (the page's links go nowhere that needs to know where from).

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::sync::LazyLock;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::{ApiConfig, EmbedOrigins};
use crate::state::AppState;

/// Builds the page's Content-Security-Policy: everything from this origin only, but
/// images from any `https:` origin too (attachments live elsewhere), no inline script
/// or style, no plugins, and framing only by the `embed` origins.
///
/// `connect-src 'self'` covers the page's own `/ws` in current browsers (CSP level 3
/// matches `ws:`/`wss:` of the same host to `'self'`), but Safari before 16 and
/// Chrome before 71 did not; so the socket's origins for the host the browser asked
/// for are listed too, when the `Host` header is a plain `host[:port]`.
fn content_security_policy(host: Option<&HeaderValue>, embed: &EmbedOrigins) -> String {
    let host = host
        .and_then(|host| host.to_str().ok())
        .filter(|host| is_authority(host));
    let sockets = host.map_or_else(String::new, |host| format!(" ws://{host} wss://{host}"));
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; \
         connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {}",
        embed.frame_ancestors()
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
fn x_frame_options(embed: &EmbedOrigins) -> Option<HeaderValue> {
    match embed.frame_ancestors() {
        "'none'" => Some(HeaderValue::from_static("DENY")),
        "'self'" => Some(HeaderValue::from_static("SAMEORIGIN")),
        _ => None,
    }
}

/// How long a browser may keep a file without asking again.
#[derive(Clone, Copy)]
enum Caching {
    /// Ask on every load (with the `ETag`): the page's own files, which change with
    /// the binary under the same name.
    Revalidate,
    /// Keep for a year: a vendored library, whose version is part of its name.
    Immutable,
}

impl Caching {
    fn header(self) -> HeaderValue {
        match self {
            Self::Revalidate => HeaderValue::from_static("no-cache"),
            Self::Immutable => HeaderValue::from_static("public, max-age=31536000, immutable"),
        }
    }
}

/// One embedded file and how it is served.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    caching: Caching,
    etag: HeaderValue,
}

impl Asset {
    fn new(body: &'static str, content_type: &'static str, caching: Caching) -> Self {
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        // A hex digest is always a valid header value; the fallback only keeps this
        // function total.
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish()))
            .unwrap_or_else(|_| HeaderValue::from_static("\"confab\""));
        Self {
            body,
            content_type,
            caching,
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
            (header::CACHE_CONTROL, self.caching.header()),
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
        let policy = content_security_policy(request.get(header::HOST), &config.embed_origins);
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
        if let Some(frame_options) = x_frame_options(&config.embed_origins) {
            response_headers.insert(header::X_FRAME_OPTIONS, frame_options);
        }
        response
    }
}

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Every file of the web chat by its path. The vendored libraries and their
/// licenses are listed in `web/vendor/README.md`, with where they come from.
static ASSETS: LazyLock<Vec<(&'static str, Asset)>> = LazyLock::new(|| {
    vec![
        (
            "/",
            Asset::new(include_str!("../web/index.html"), HTML, Caching::Revalidate),
        ),
        (
            "/app.js",
            Asset::new(
                include_str!("../web/app.js"),
                JAVASCRIPT,
                Caching::Revalidate,
            ),
        ),
        (
            "/markdown.js",
            Asset::new(
                include_str!("../web/markdown.js"),
                JAVASCRIPT,
                Caching::Revalidate,
            ),
        ),
        (
            "/app.css",
            Asset::new(include_str!("../web/app.css"), CSS, Caching::Revalidate),
        ),
        (
            "/agent",
            Asset::new(include_str!("../web/agent.html"), HTML, Caching::Revalidate),
        ),
        (
            "/agent.js",
            Asset::new(
                include_str!("../web/agent.js"),
                JAVASCRIPT,
                Caching::Revalidate,
            ),
        ),
        (
            "/agent.css",
            Asset::new(include_str!("../web/agent.css"), CSS, Caching::Revalidate),
        ),
        (
            "/widget.js",
            Asset::new(
                include_str!("../web/widget.js"),
                JAVASCRIPT,
                Caching::Revalidate,
            ),
        ),
        (
            "/vendor/marked-18.3.0.esm.js",
            Asset::new(
                include_str!("../web/vendor/marked-18.3.0.esm.js"),
                JAVASCRIPT,
                Caching::Immutable,
            ),
        ),
        (
            "/vendor/marked-18.3.0.LICENSE.txt",
            Asset::new(
                include_str!("../web/vendor/marked-18.3.0.LICENSE.txt"),
                TEXT,
                Caching::Immutable,
            ),
        ),
        (
            "/vendor/dompurify-3.5.0.es.mjs",
            Asset::new(
                include_str!("../web/vendor/dompurify-3.5.0.es.mjs"),
                JAVASCRIPT,
                Caching::Immutable,
            ),
        ),
        (
            "/vendor/dompurify-3.5.0.LICENSE.txt",
            Asset::new(
                include_str!("../web/vendor/dompurify-3.5.0.LICENSE.txt"),
                TEXT,
                Caching::Immutable,
            ),
        ),
        (
            "/vendor/dompurify-3.5.0.LICENSE-MPL.txt",
            Asset::new(
                include_str!("../web/vendor/dompurify-3.5.0.LICENSE-MPL.txt"),
                TEXT,
                Caching::Immutable,
            ),
        ),
    ]
});

/// The pages, their scripts and styles, the widget and the vendored libraries,
/// without authentication.
pub(crate) fn routes() -> Router<AppState> {
    ASSETS.iter().fold(Router::new(), |router, (path, asset)| {
        router.route(
            path,
            get(
                move |State(state): State<AppState>, headers: HeaderMap| async move {
                    asset.respond(&headers, &state.config)
                },
            ),
        )
    })
}
