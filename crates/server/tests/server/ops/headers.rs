//! The chat page's security headers as the server sends them: a Content-Security-
//! Policy that allows only the page's own scripts, styles and socket (and `https:`
//! images), framing as `web.embed_origins` says (no one by default), `nosniff`, a
//! referrer policy, and no CORS unless configured; an embedding site is allowed by
//! CORS too. A bad `web.embed_origins` stops the start.

use confab_server::{App, Config};
use reqwest::header::{self, HeaderMap};

use crate::helpers::{Backend, TestDatabase, spawn_app, spawn_app_with};

fn header<'a>(headers: &'a HeaderMap, name: &header::HeaderName) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_allows_only_its_own_scripts_styles_and_socket_and_no_framing_by_default() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/", "/app.js", "/markdown.js", "/app.css", "/widget.js"] {
        let response = app
            .http
            .get(app.url(path))
            .header(header::ORIGIN, "https://elsewhere.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let policy = header(headers, &header::CONTENT_SECURITY_POLICY);
        let host = app.address.to_string();
        for directive in [
            "default-src 'self'".to_owned(),
            "script-src 'self'".to_owned(),
            "style-src 'self'".to_owned(),
            "img-src 'self' data: https:".to_owned(),
            format!("connect-src 'self' ws://{host} wss://{host}"),
            "object-src 'none'".to_owned(),
            "base-uri 'none'".to_owned(),
            "frame-ancestors 'none'".to_owned(),
        ] {
            assert!(
                policy.split("; ").any(|d| d == directive),
                "{path}: {directive} missing from {policy}"
            );
        }
        assert!(!policy.contains("unsafe"), "{policy}");
        assert_eq!(header(headers, &header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        assert_eq!(header(headers, &header::REFERRER_POLICY), "no-referrer");
        assert_eq!(header(headers, &header::X_FRAME_OPTIONS), "DENY");
        assert!(
            headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(),
            "CORS is closed by default: {headers:?}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_has_no_inline_script_or_style_for_the_policy_to_block() {
    let app = spawn_app(Backend::Sqlite).await;
    let page = app.get_public("/").await.text().await.unwrap();
    assert!(!page.contains("style="), "an inline style attribute");
    assert!(!page.contains("<style"), "an inline style sheet");
    assert_eq!(
        page.matches("<script").count(),
        page.matches("<script type=\"module\" src=\"/app.js\"></script>")
            .count(),
        "an inline script"
    );
    let handlers = page.split(" on").skip(1).filter(|rest| {
        let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    });
    assert_eq!(handlers.count(), 0, "an inline event handler attribute");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_named_in_embed_origins_may_frame_the_page_and_call_the_api() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.web.embed_origins =
            vec!["'self'".to_owned(), "https://Shop.Example.com/".to_owned()];
    })
    .await;
    let response = app.get_public("/").await;
    let headers = response.headers();
    let policy = header(headers, &header::CONTENT_SECURITY_POLICY);
    assert!(
        policy.ends_with("; frame-ancestors 'self' https://shop.example.com"),
        "{policy}"
    );
    // X-Frame-Options cannot name a site: it is left out rather than contradict.
    assert!(
        headers.get(header::X_FRAME_OPTIONS).is_none(),
        "{headers:?}"
    );

    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/conversations"))
        .header(header::ORIGIN, "https://shop.example.com")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{preflight:?}");
    assert_eq!(
        header(preflight.headers(), &header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "https://shop.example.com"
    );
    let elsewhere = app
        .http
        .get(app.url("/healthz"))
        .header(header::ORIGIN, "https://elsewhere.example")
        .send()
        .await
        .unwrap();
    assert!(
        elsewhere
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "{elsewhere:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_origins_join_the_cors_origins_rather_than_replace_them() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.web.embed_origins = vec!["http://127.0.0.1:9".to_owned()];
        config.limits.cors_origins = vec!["https://console.example.com".to_owned()];
    })
    .await;
    for origin in ["http://127.0.0.1:9", "https://console.example.com"] {
        let response = app
            .http
            .get(app.url("/healthz"))
            .header(header::ORIGIN, origin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            header(response.headers(), &header::ACCESS_CONTROL_ALLOW_ORIGIN),
            origin
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embed_origin_that_is_not_an_origin_stops_the_start() {
    for bad in [
        vec!["https://shop.example.com; script-src *".to_owned()],
        vec!["'none'".to_owned(), "'self'".to_owned()],
        vec!["'unsafe-inline'".to_owned()],
        vec!["https://*.example.com".to_owned()],
        vec!["https://shop.example.com/chat".to_owned()],
        vec![String::new()],
    ] {
        let database = TestDatabase::create(Backend::Sqlite).await;
        let mut config = Config {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database.url.clone(),
            ..Config::default()
        };
        config.web.embed_origins = bad.clone();
        let Err(error) = App::build(config).await else {
            panic!("{bad:?} was accepted");
        };
        assert!(
            error.to_string().contains("`web.embed_origins`"),
            "{bad:?}: {error}"
        );
    }
}
