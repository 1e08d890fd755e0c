//! The chat page's security headers as the server sends them: a Content-Security-
//! Policy that allows only the page's own scripts, styles and socket, framing as
//! `web.frame_ancestors` says (no one by default), `nosniff`, a referrer policy, and
//! no CORS unless configured. A bad `web.frame_ancestors` stops the start.

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
    for path in ["/", "/app.js", "/app.css"] {
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
async fn a_site_named_in_frame_ancestors_may_frame_the_page() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.web.frame_ancestors =
            vec!["'self'".to_owned(), "https://shop.example.com".to_owned()];
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
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_ancestor_that_is_not_a_source_stops_the_start() {
    for bad in [
        vec!["https://shop.example.com; script-src *".to_owned()],
        vec!["'none'".to_owned(), "'self'".to_owned()],
        vec!["'unsafe-inline'".to_owned()],
        vec![String::new()],
    ] {
        let database = TestDatabase::create(Backend::Sqlite).await;
        let mut config = Config {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            database_url: database.url.clone(),
            ..Config::default()
        };
        config.web.frame_ancestors = bad.clone();
        let Err(error) = App::build(config).await else {
            panic!("{bad:?} was accepted");
        };
        assert!(
            error.to_string().contains("`web.frame_ancestors`"),
            "{bad:?}: {error}"
        );
    }
}
