//! The web chat's files as a browser fetches them over TCP from the real server: the
//! page's modules, the agents' page with its script and style, the widget, and the
//! vendored Markdown libraries with their licenses, cached for a year under versioned
//! names; and `web.embed_origins` read from a file under its older name
//! `frame_ancestors` too.

use reqwest::header;

use crate::helpers::{Backend, spawn_app};
use crate::ops::helpers::{confab, printed, run_err, run_ok};

const YEAR: &str = "public, max-age=31536000, immutable";

/// The `./vendor/…` and `./….js` modules a script imports, as absolute paths.
fn imports(script: &str) -> Vec<String> {
    script
        .lines()
        .filter(|line| line.starts_with("import "))
        .filter_map(|line| line.split(" from '").nth(1))
        .filter_map(|rest| rest.split('\'').next())
        .map(|path| path.trim_start_matches('.').to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_module_the_page_imports_is_served_and_the_vendored_ones_are_cached_for_a_year() {
    let app = spawn_app(Backend::Sqlite).await;
    let app_js = app.get_public("/app.js").await.text().await.unwrap();
    let markdown_js = app.get_public("/markdown.js").await.text().await.unwrap();
    let mut modules = imports(&app_js);
    modules.extend(imports(&markdown_js));
    assert!(modules.contains(&"/markdown.js".to_owned()), "{modules:?}");
    let vendored: Vec<&String> = modules
        .iter()
        .filter(|m| m.starts_with("/vendor/"))
        .collect();
    assert_eq!(vendored.len(), 2, "marked and DOMPurify: {modules:?}");
    for module in &modules {
        let response = app.get_public(module).await;
        assert_eq!(response.status(), 200, "{module}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8",
            "{module}"
        );
        let caching = response.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .to_owned();
        if module.starts_with("/vendor/") {
            assert_eq!(caching, YEAR, "{module}");
        } else {
            assert_eq!(caching, "no-cache", "{module}");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_page_its_script_and_style_are_served_with_their_types_and_the_pages_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    let host = app.address.to_string();
    for (path, content_type) in [
        ("/agent", "text/html; charset=utf-8"),
        ("/agent.js", "text/javascript; charset=utf-8"),
        ("/agent.css", "text/css; charset=utf-8"),
    ] {
        let response = app.get_public(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{path}");
        assert!(headers.contains_key(header::ETAG), "{path}");
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        for directive in [
            "default-src 'self'".to_owned(),
            "script-src 'self'".to_owned(),
            "style-src 'self'".to_owned(),
            format!("connect-src 'self' ws://{host} wss://{host}"),
            "object-src 'none'".to_owned(),
            "frame-ancestors 'none'".to_owned(),
        ] {
            assert!(
                policy.split("; ").any(|d| d == directive),
                "{path}: {directive} missing from {policy}"
            );
        }
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer", "{path}");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
    }
    // The page is public; the agents' API beside it is not.
    assert_eq!(app.get_public("/agent/queue").await.status(), 401);
    assert_eq!(app.get_public("/agent.html").await.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_page_runs_only_its_module_has_nothing_inline_and_says_how_to_get_a_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let page = app.get_public("/agent").await.text().await.unwrap();
    assert!(!page.contains("style="), "an inline style attribute");
    assert!(!page.contains("<style"), "an inline style sheet");
    assert_eq!(page.matches("<script").count(), 1, "an inline script");
    assert!(page.contains("<script type=\"module\" src=\"/agent.js\"></script>"));
    let handlers = page.split(" on").skip(1).filter(|rest| {
        let name: String = rest.chars().take_while(char::is_ascii_lowercase).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    });
    assert_eq!(handlers.count(), 0, "an inline event handler attribute");
    for sheet in ["/app.css", "/agent.css"] {
        assert!(
            page.contains(&format!("<link rel=\"stylesheet\" href=\"{sheet}\">")),
            "{sheet}"
        );
    }
    assert!(page.contains("confab token --user NAME --agent"));
    // Its modules are the page's own, served like the chat's.
    let script = app.get_public("/agent.js").await.text().await.unwrap();
    let modules = imports(&script);
    assert_eq!(modules, ["/markdown.js"], "{modules:?}");
    assert_eq!(app.get_public("/markdown.js").await.status(), 200);
    assert!(
        script.contains("sessionStorage"),
        "the token is kept per tab"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vendored_libraries_are_the_pinned_versions_and_ship_their_licenses() {
    let app = spawn_app(Backend::Sqlite).await;
    for (library, first_words, license, license_words) in [
        (
            "/vendor/marked-18.3.0.esm.js",
            "marked v18.3.0",
            "/vendor/marked-18.3.0.LICENSE.txt",
            "Permission is hereby granted, free of charge",
        ),
        (
            "/vendor/dompurify-3.5.0.es.mjs",
            "DOMPurify 3.5.0",
            "/vendor/dompurify-3.5.0.LICENSE.txt",
            "Apache License",
        ),
        (
            "/vendor/dompurify-3.5.0.es.mjs",
            "DOMPurify 3.5.0",
            "/vendor/dompurify-3.5.0.LICENSE-MPL.txt",
            "Mozilla Public License Version 2.0",
        ),
    ] {
        let code = app.get_public(library).await.text().await.unwrap();
        let head: String = code.chars().take(300).collect();
        assert!(head.contains(first_words), "{library}: {head}");
        let response = app.get_public(license).await;
        assert_eq!(response.status(), 200, "{license}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], YEAR);
        assert!(
            response.text().await.unwrap().contains(license_words),
            "{license}"
        );
    }
    assert_eq!(app.get_public("/vendor/").await.status(), 404);
    assert_eq!(app.get_public("/vendor/marked.js").await.status(), 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_widget_is_served_to_any_site_as_a_script_that_keeps_to_one_element() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .http
        .get(app.url("/widget.js"))
        .header(header::ORIGIN, "https://shop.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
    let widget = response.text().await.unwrap();
    // A classic script (the snippet has no type="module"): its own scope is a
    // function, so that none of its names become the host page's globals.
    assert!(widget.contains("\n(() => {\n"), "not wrapped in a function");
    assert!(
        widget.trim_end().ends_with("})();"),
        "not wrapped in a function"
    );
    assert!(widget.contains("document.currentScript"));
    assert!(widget.contains("attachShadow"));
    for global in ["window.", "globalThis.", "customElements.define", "var "] {
        assert!(!widget.contains(global), "the widget touches `{global}`");
    }
    app.stop().await;
}

#[test]
fn frame_ancestors_the_older_name_of_embed_origins_still_loads_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("confab.toml"),
        "[web]\nframe_ancestors = [\"https://shop.example.com\"]\n",
    )
    .unwrap();
    let printed = printed(&run_ok(
        confab().current_dir(dir.path()).args(["config", "print"]),
    ));
    assert_eq!(
        printed["web"]["embed_origins"],
        toml::Value::Array(vec!["https://shop.example.com".into()])
    );
}

#[test]
fn embed_origins_come_from_the_environment_like_any_key() {
    let dir = tempfile::tempdir().unwrap();
    let printed = printed(&run_ok(
        confab()
            .current_dir(dir.path())
            .env("CONFAB_WEB__EMBED_ORIGINS", r#"["http://127.0.0.1:8081"]"#)
            .args(["config", "print"]),
    ));
    assert_eq!(
        printed["web"]["embed_origins"],
        toml::Value::Array(vec!["http://127.0.0.1:8081".into()])
    );
}

#[test]
fn embed_origins_under_both_names_are_joined() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("confab.toml"),
        "[web]\nframe_ancestors = [\"https://shop.example.com\"]\n",
    )
    .unwrap();
    let printed = printed(&run_ok(
        confab()
            .current_dir(dir.path())
            .env(
                "CONFAB_WEB__EMBED_ORIGINS",
                r#"["https://other.example.com"]"#,
            )
            .args(["config", "print"]),
    ));
    assert_eq!(
        printed["web"]["embed_origins"],
        toml::Value::Array(vec![
            "https://other.example.com".into(),
            "https://shop.example.com".into()
        ])
    );
    assert!(
        !printed["web"]
            .as_table()
            .unwrap()
            .contains_key("frame_ancestors"),
        "{printed}"
    );
}

#[test]
fn a_misspelt_key_of_web_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = run_err(
        confab()
            .current_dir(dir.path())
            .env(
                "CONFAB_WEB__EMBED_ORIGIN",
                r#"["https://shop.example.com"]"#,
            )
            .args(["config", "print"]),
    );
    assert!(stderr.contains("embed_origin"), "{stderr}");
}
