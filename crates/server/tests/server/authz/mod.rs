//! Authorization on every route, by construction: a table (`table`) with one row per
//! operation of the OpenAPI document, each tried against a fresh victim and attacker
//! (`fixture`) with every credential that must be refused (`credentials`).
//!
//! For every operation, at the root and under `/api`:
//! - each refused credential (none, malformed, expired, another secret, `alg: none`,
//!   another algorithm, a swapped payload), forged for the caller the call would
//!   succeed for, gets 401 `unauthorized` with a `Bearer` challenge;
//! - the calls of two strangers to the victim (a real guest, and a token of a bot
//!   the victim does not talk to) with the victim's conversation, session and
//!   message ids get 404 (a batch answers `not_found` per id, a list omits them),
//!   an administrators' operation called by either or by an end user gets 403
//!   `forbidden`, and no answer holds the victim's text;
//! - everything the victim owns (conversation, history, lists) and the bots are the
//!   same before and after;
//! - then the rightful caller's call succeeds, which shows the refused calls were
//!   well-formed: each refusal is the check's, not a typo's.
//!
//! The table must match the document both ways: the document the server serves
//! (built from the handlers) and `docs/openapi.json`.

mod credentials;
mod fixture;
mod table;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::authz::credentials::{Credential, refused};
use crate::authz::fixture::{Answer, Call, Fixture, call};
use crate::authz::table::{Access, OUTSIDE_THE_DOCUMENT, Row, rows};
use crate::helpers::{Backend, PATIENCE, TestApp, WsClient, spawn_app};
use crate::on_every_backend;

on_every_backend!(
    every_operation_refuses_strangers_and_bad_tokens,
    the_websocket_refuses_bad_tokens_and_strangers,
);

/// The operations of an OpenAPI document, as `METHOD /path`.
fn operations(document: &Value) -> BTreeSet<String> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    document["paths"]
        .as_object()
        .expect("the document has paths")
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .into_iter()
                .filter(|method| item.get(*method).is_some())
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect()
}

fn documents() -> Vec<(&'static str, Value)> {
    let served = serde_json::to_value(confab_api_axum::openapi()).expect("document as JSON");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let text = std::fs::read_to_string(path).expect("docs/openapi.json is readable");
    let written = serde_json::from_str(&text).expect("docs/openapi.json is JSON");
    vec![
        ("the document the server serves", served),
        ("docs/openapi.json", written),
    ]
}

#[test]
fn every_operation_of_the_document_has_a_row_and_every_row_an_operation() {
    let table: BTreeSet<String> = rows().iter().map(Row::name).collect();
    assert_eq!(table.len(), rows().len(), "each operation has one row");
    for (name, document) in documents() {
        let documented = operations(&document);
        let missing: Vec<&String> = documented.difference(&table).collect();
        assert!(
            missing.is_empty(),
            "operations of {name} without a row in tests/server/authz/table.rs: {missing:?}; \
             add a row saying who may call each and what a stranger tries"
        );
        let stale: Vec<&String> = table.difference(&documented).collect();
        assert!(
            stale.is_empty(),
            "rows of tests/server/authz/table.rs for operations {name} lacks: {stale:?}"
        );
        for (method, path) in OUTSIDE_THE_DOCUMENT {
            assert!(
                !documented.contains(&format!("{method} {path}")),
                "{method} {path} is documented now: give it a row in the table"
            );
        }
    }
}

async fn every_operation_refuses_strangers_and_bad_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut checked = 0;
    for row in rows() {
        for prefix in ["", "/api"] {
            // The probes' and scrapers' routes (ops::router_with_operations) are
            // served at the root only.
            if prefix == "/api" && ["/metrics", "/readyz"].contains(&row.path) {
                continue;
            }
            checked += check_row(&app, &row, prefix).await;
        }
    }
    eprintln!("authz: {} rows, {checked} calls checked", rows().len());
    for (_, path) in OUTSIDE_THE_DOCUMENT
        .iter()
        .filter(|(_, path)| *path != "/ws")
    {
        let answer = call(
            &app,
            "",
            Method::GET,
            &Call::new(*path, 200),
            &no_credential(),
        )
        .await;
        assert_eq!(answer.status, 200, "GET {path} is public");
    }
    app.stop().await;
}

fn no_credential() -> Credential {
    Credential {
        name: "no Authorization header",
        header: None,
    }
}

/// Checks one row under `prefix`; returns how many calls it checked.
async fn check_row(app: &TestApp, row: &Row, prefix: &str) -> usize {
    let fixture = Fixture::create(app).await;
    let name = format!("{} {prefix}{}", row.method, row.path);
    let rightful = (row.call)(&fixture);
    if row.access == Access::Public {
        let answer = call(app, prefix, row.method.clone(), &rightful, &no_credential()).await;
        assert_eq!(
            answer.status, rightful.status,
            "{name} is public: {}",
            answer.text
        );
        return 1;
    }

    let before = fixture.snapshot(app).await;
    let claimant = match row.access {
        Access::Admin => &fixture.admin,
        Access::User | Access::Public => &fixture.victim,
    };
    let mut checked = 0;
    for credential in refused(claimant) {
        checked += 1;
        let answer = call(app, prefix, row.method.clone(), &rightful, &credential).await;
        assert_eq!(
            answer.status, 401,
            "{name} with {}: {}",
            credential.name, answer.text
        );
        assert_eq!(answer.json()["code"], "unauthorized", "{name}");
        assert!(
            answer
                .challenge
                .as_deref()
                .is_some_and(|challenge| challenge.starts_with("Bearer")),
            "{name} with {} challenges for a bearer token: {:?}",
            credential.name,
            answer.challenge
        );
    }
    assert_unchanged(app, &fixture, &before, &name, "refused credentials").await;

    // Strangers to the victim: a guest, and a bot whose conversations the victim's
    // is not (a bot token sees its own bot's conversations only).
    let strangers = [
        Credential::bearer("a guest's token", &fixture.attacker_token),
        Credential::bearer("another bot's token", &fixture.other_bot_token),
    ];
    if row.access == Access::Admin {
        let user = Credential::bearer("an end user's token", &fixture.victim_token);
        for who in strangers.iter().chain([&user]) {
            checked += 1;
            let answer = call(app, prefix, row.method.clone(), &rightful, who).await;
            let what = format!("{name} with {}", who.name);
            assert_eq!(answer.status, 403, "{what}: {}", answer.text);
            assert_eq!(answer.json()["code"], "forbidden", "{what}");
        }
    }
    for stranger in &strangers {
        for intrusion in (row.intrusions)(&fixture) {
            checked += 1;
            let answer: Answer =
                call(app, prefix, row.method.clone(), &intrusion.call, stranger).await;
            let what = format!(
                "{name} {} ({}) with {}",
                intrusion.what, intrusion.call.path, stranger.name
            );
            assert_eq!(
                answer.status, intrusion.call.status,
                "{what}: {}",
                answer.text
            );
            assert!(
                !answer.text.contains(&fixture.secret),
                "{what} shows the victim's text: {}",
                answer.text
            );
            match answer.status {
                403 => assert_eq!(answer.json()["code"], "forbidden", "{what}"),
                404 => assert_eq!(answer.json()["code"], "not_found", "{what}"),
                _ => {}
            }
            if let Some(check) = intrusion.check {
                check(&fixture, &answer.json());
            }
        }
    }
    assert_unchanged(app, &fixture, &before, &name, "the attacker's attempts").await;

    let token = match row.access {
        Access::Admin => &fixture.admin_token,
        Access::User | Access::Public => &fixture.victim_token,
    };
    let answer = call(
        app,
        prefix,
        row.method.clone(),
        &rightful,
        &Credential::bearer("the rightful caller", token),
    )
    .await;
    assert_eq!(
        answer.status, rightful.status,
        "{name} by its rightful caller ({}): {}",
        rightful.path, answer.text
    );
    checked + 1
}

async fn assert_unchanged(
    app: &TestApp,
    fixture: &Fixture,
    before: &[(String, u16, String)],
    name: &str,
    after_what: &str,
) {
    let after = fixture.snapshot(app).await;
    for (was, is) in before.iter().zip(&after) {
        assert_eq!(was, is, "{name}: {after_what} changed what {} shows", was.0);
    }
}

/// `/ws` is outside the document: it refuses the same credentials before the
/// upgrade, and a stranger's socket gets `not_found` for every frame naming the
/// victim's conversation, session or messages, with nothing changed.
async fn the_websocket_refuses_bad_tokens_and_strangers(backend: Backend) {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let app = spawn_app(backend).await;
    let fixture = Fixture::create(&app).await;
    let before = fixture.snapshot(&app).await;

    for credential in refused(&fixture.victim) {
        let mut request = format!("ws://{}/ws", app.address)
            .into_client_request()
            .expect("request");
        if let Some(header) = &credential.header {
            request
                .headers_mut()
                .insert("authorization", header.parse().expect("header value"));
        }
        let refused = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(request))
            .await
            .expect("answered in time");
        match refused {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), 401, "/ws with {}", credential.name);
            }
            other => panic!(
                "/ws with {} in the header: {:?}",
                credential.name,
                other.map(|_| ())
            ),
        }
        let Some(token) = credential
            .header
            .as_deref()
            .and_then(|header| header.strip_prefix("Bearer "))
            .filter(|token| !token.is_empty())
        else {
            continue;
        };
        match tokio::time::timeout(PATIENCE, app.try_ws(token))
            .await
            .expect("answered in time")
        {
            Err(WsError::Http(response)) => {
                assert_eq!(
                    response.status(),
                    401,
                    "/ws?token= with {}",
                    credential.name
                );
            }
            other => panic!(
                "/ws?token= with {}: {:?}",
                credential.name,
                other.map(|_| ())
            ),
        }
    }

    let mut socket: WsClient = app.ws(&fixture.attacker_token).await;
    assert_eq!(socket.next_json().await["status"], "connected");
    let mut frames = Vec::new();
    for (what, id) in fixture.foreign_ids() {
        for target in ["session_id", "conversation_id"] {
            frames.push((
                format!("subscribe with {what} as {target}"),
                json!({ "type": "subscribe", target: id, "after_seq": 0 }),
            ));
            frames.push((
                format!("message with {what} as {target}"),
                json!({ "type": "message", target: id, "content": fixture.secret,
                        "client_message_id": fixture.victim.user }),
            ));
            frames.push((
                format!("typing with {what} as {target}"),
                json!({ "type": "typing", target: id }),
            ));
            frames.push((
                format!("unsubscribe with {what} as {target}"),
                json!({ "type": "unsubscribe", target: id }),
            ));
        }
    }
    for (n, (what, mut frame)) in frames.into_iter().enumerate() {
        let reference = format!("intrusion-{n}");
        frame["ref"] = json!(reference);
        socket.send_json(frame).await;
        let answers = socket.frames_until_pong().await;
        assert!(
            answers
                .iter()
                .any(|a| a["type"] == "error" && a["code"] == "not_found" && a["ref"] == reference),
            "{what}: {answers:?}"
        );
        assert!(
            answers.iter().all(|a| a["type"] == "error"),
            "{what} only gets its error: {answers:?}"
        );
        assert!(
            !answers
                .iter()
                .any(|a| a.to_string().contains(&fixture.secret)),
            "{what} shows the victim's text: {answers:?}"
        );
    }
    assert_unchanged(&app, &fixture, &before, "/ws", "the attacker's frames").await;
    // Nothing is followed: the victim's next message reaches no socket of the
    // attacker's.
    let sent = call(
        &app,
        "",
        Method::POST,
        &Call::new(
            format!("/conversations/{}/messages", fixture.conversation),
            201,
        )
        .with_body(json!({ "content": "after the attempts" })),
        &Credential::bearer("victim", &fixture.victim_token),
    )
    .await;
    assert_eq!(sent.status, 201, "{}", sent.text);
    let seen = socket.frames_until_pong().await;
    assert!(seen.is_empty(), "the attacker's socket saw {seen:?}");
    app.stop().await;
}
