//! The chat page as a browser fetches it: `/`, its scripts and style sheet, the
//! widget and the vendored libraries from `router`, without a token, with their
//! content types, cache headers and validators, and the Content-Security-Policy of
//! the embedding sites.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use confab_api_axum::ApiConfig;
use confab_api_axum::config::EmbedOrigins;
use confab_domain::testing::{ScriptedEngine, TestPorts};
use tower::ServiceExt as _;

use crate::helpers::app_over;

fn app_with(config: ApiConfig) -> Router {
    let ports = TestPorts::with_engine(ScriptedEngine::echo());
    app_over(ports, config).router
}

/// GETs `uri` with `headers`; answers the status, the headers and the body as text.
async fn get(uri: &str, headers: &[(header::HeaderName, &str)]) -> (StatusCode, HeaderMap, String) {
    get_from(app_with(ApiConfig::default()), uri, headers).await
}

async fn get_from(
    app: Router,
    uri: &str,
    headers: &[(header::HeaderName, &str)],
) -> (StatusCode, HeaderMap, String) {
    let mut request = Request::builder().uri(uri);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let response = app
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("the router is infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    let text = String::from_utf8(bytes.to_vec()).expect("the page's files are UTF-8");
    (status, headers, text)
}

fn header_of<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_root_serves_the_chat_page_as_html_without_a_token() {
    let (status, headers, body) = get("/", &[]).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header_of(&headers, &header::CONTENT_TYPE),
        "text/html; charset=utf-8"
    );
    assert_eq!(header_of(&headers, &header::CACHE_CONTROL), "no-cache");
    assert_eq!(
        header_of(&headers, &header::X_CONTENT_TYPE_OPTIONS),
        "nosniff"
    );
    assert!(
        header_of(&headers, &header::CONTENT_SECURITY_POLICY).contains("default-src 'self'"),
        "{headers:?}"
    );
    assert!(body.starts_with("<!doctype html>"), "{body}");
    assert!(body.contains("<title>confab</title>"));
}

#[tokio::test]
async fn the_script_and_the_style_sheet_are_served_with_their_content_types() {
    let (status, headers, script) = get("/app.js", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header_of(&headers, &header::CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert!(script.contains("new WebSocket("));

    let (status, headers, style) = get("/app.css", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        header_of(&headers, &header::CONTENT_TYPE),
        "text/css; charset=utf-8"
    );
    assert!(style.contains(":root"));
}

#[tokio::test]
async fn the_page_loads_its_files_from_this_server_and_nothing_from_elsewhere() {
    let (_, _, page) = get("/", &[]).await;

    assert!(page.contains(r#"src="/app.js""#), "{page}");
    assert!(page.contains(r#"href="/app.css""#), "{page}");
    for (_, _, text) in [
        get("/", &[]).await,
        get("/app.js", &[]).await,
        get("/markdown.js", &[]).await,
        get("/app.css", &[]).await,
    ] {
        // The SVG namespace is a name, not a place anything is fetched from.
        let text = text.replace("http://www.w3.org/2000/svg", "");
        assert!(!text.contains("https://"), "a file loads from elsewhere");
        assert!(!text.contains("http://"), "a file loads from elsewhere");
    }
}

#[tokio::test]
async fn a_browser_holding_the_served_version_gets_not_modified() {
    let (_, headers, _) = get("/app.js", &[]).await;
    let etag = header_of(&headers, &header::ETAG).to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let (status, headers, body) = get("/app.js", &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(header_of(&headers, &header::ETAG), etag);
    assert!(body.is_empty());

    let (status, _, body) = get("/app.js", &[(header::IF_NONE_MATCH, "\"stale\"")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.is_empty());
}

#[tokio::test]
async fn the_page_is_not_served_under_the_api_prefix() {
    let (status, headers, _) = get("/api/", &[]).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        header_of(&headers, &header::CONTENT_TYPE),
        "application/problem+json"
    );
}

#[tokio::test]
async fn the_vendored_libraries_are_cached_for_a_year_and_the_page_s_own_files_are_not() {
    for path in [
        "/vendor/marked-18.3.0.esm.js",
        "/vendor/dompurify-3.5.0.es.mjs",
    ] {
        let (status, headers, body) = get(path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            header_of(&headers, &header::CONTENT_TYPE),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            header_of(&headers, &header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        assert!(body.contains("export"), "{path} is not an ES module");
    }
    for path in ["/", "/app.js", "/markdown.js", "/app.css", "/widget.js"] {
        let (status, headers, _) = get(path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(
            header_of(&headers, &header::CACHE_CONTROL),
            "no-cache",
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_page_lets_images_come_from_https_and_nothing_else_from_elsewhere() {
    let (_, headers, _) = get("/", &[]).await;
    let policy = header_of(&headers, &header::CONTENT_SECURITY_POLICY);
    let directives: Vec<&str> = policy.split("; ").collect();
    assert!(
        directives.contains(&"img-src 'self' data: https:"),
        "{policy}"
    );
    assert!(directives.contains(&"script-src 'self'"), "{policy}");
    assert!(directives.contains(&"frame-ancestors 'none'"), "{policy}");
}

#[tokio::test]
async fn the_embedding_sites_are_the_page_s_frame_ancestors() {
    let config = ApiConfig {
        embed_origins: EmbedOrigins::parse(&["https://shop.example.com", "http://127.0.0.1:8081"])
            .expect("origins"),
        ..ApiConfig::default()
    };
    let (_, headers, _) = get_from(app_with(config), "/", &[]).await;
    let policy = header_of(&headers, &header::CONTENT_SECURITY_POLICY);
    assert!(
        policy.ends_with("; frame-ancestors https://shop.example.com http://127.0.0.1:8081"),
        "{policy}"
    );
    assert!(
        headers.get(header::X_FRAME_OPTIONS).is_none(),
        "{headers:?}"
    );
}
