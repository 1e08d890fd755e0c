//! Direct Line 3.0 under `/v3/directline`, driven the way Bot Framework clients drive
//! it: a secret generates a token, the token starts the conversation and opens the
//! stream, activities go in by REST and come back over the stream or by polling.
//! (`cargo xtask e2e` runs Microsoft's own Web Chat and directlinejs against it.)

use std::time::Duration;

use confab_server::config::{Config, DirectLineSecretSource};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::helpers::{Backend, PATIENCE, TestApp, spawn_app_with, user};
use crate::on_every_backend;

const ECHO_SECRET: &str = "echo-secret-0123456789abcdef";
const DEMO_SECRET: &str = "demo-secret-0123456789abcdef";

/// A server with a Direct Line secret for `echo` and one for `demo`, read from files.
async fn spawn_directline(backend: Backend) -> (TestApp, tempfile::TempDir) {
    spawn_with_secrets(backend, &[("echo", ECHO_SECRET), ("demo", DEMO_SECRET)]).await
}

/// A server with a Direct Line secret, read from a file, for each `(bot, secret)`.
async fn spawn_with_secrets(
    backend: Backend,
    secrets: &[(&str, &str)],
) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut sources = Vec::new();
    for (bot, secret) in secrets {
        let path = dir.path().join(bot);
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        sources.push(DirectLineSecretSource {
            bot_id: (*bot).to_owned(),
            secret_env: None,
            secret_file: Some(path),
        });
    }
    let app = spawn_app_with(backend, |config: &mut Config| {
        config.directline.secrets = sources;
    })
    .await;
    (app, dir)
}

fn url(app: &TestApp, path: &str) -> String {
    app.url(&format!("/v3/directline{path}"))
}

async fn post(app: &TestApp, bearer: &str, path: &str, body: Option<Value>) -> reqwest::Response {
    let request = app.http.post(url(app, path)).bearer_auth(bearer);
    match body {
        Some(body) => request.json(&body),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

async fn get(app: &TestApp, bearer: &str, path: &str) -> reqwest::Response {
    app.http
        .get(url(app, path))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

/// Asserts Direct Line's error shape and returns its code.
async fn error_code(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"]["code"].as_str().unwrap().to_owned()
}

/// `tokens/generate` then `POST /conversations` with the token, as Web Chat does.
async fn begin(app: &TestApp, secret: &str, user_id: Option<&str>) -> Value {
    let body = user_id.map(|id| json!({ "user": { "id": id } }));
    let generated = post(app, secret, "/tokens/generate", body).await;
    assert_eq!(generated.status(), 200);
    let generated: Value = generated.json().await.unwrap();
    assert!(generated["expires_in"].as_u64().unwrap() > 0);
    let token = generated["token"].as_str().unwrap();
    let started = post(app, token, "/conversations", None).await;
    assert_eq!(started.status(), 201);
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["conversationId"], generated["conversationId"]);
    assert!(
        started["streamUrl"].as_str().unwrap().starts_with(&format!(
            "ws://{}/v3/directline/conversations/",
            app.address
        )),
        "{started}"
    );
    started
}

fn message(text: &str, client_id: &str) -> Value {
    json!({
        "type": "message",
        "from": { "id": "ignored", "role": "user" },
        "text": text,
        "channelData": { "clientActivityID": client_id },
    })
}

/// Posts a message activity to conversation `id` and returns the answer.
async fn say(
    app: &TestApp,
    token: &str,
    id: &str,
    text: &str,
    client_id: &str,
) -> reqwest::Response {
    post(
        app,
        token,
        &format!("/conversations/{id}/activities"),
        Some(message(text, client_id)),
    )
    .await
}

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_stream(stream_url: &str) -> Stream {
    tokio_tungstenite::connect_async(stream_url)
        .await
        .unwrap()
        .0
}

/// The next activity set with activities, skipping heartbeats and pings.
async fn next_set(stream: &mut Stream) -> Value {
    loop {
        let frame = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("an activity set in time")
            .expect("the stream is open")
            .unwrap();
        if let WsMessage::Text(text) = frame
            && !text.is_empty()
        {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

/// Message activities from the stream until `count` have come, with their watermarks.
async fn next_messages(stream: &mut Stream, count: usize) -> Vec<(Value, String)> {
    let mut messages = Vec::new();
    while messages.len() < count {
        let set = next_set(stream).await;
        for activity in set["activities"].as_array().unwrap() {
            if activity["type"] == "message" {
                let watermark = set["watermark"].as_str().unwrap().to_owned();
                messages.push((activity.clone(), watermark));
            }
        }
    }
    messages
}

async fn a_web_chat_session_round_trips_over_the_stream(backend: Backend) {
    let (app, _secrets) = spawn_directline(backend).await;
    let started = begin(&app, ECHO_SECRET, Some("dl_alice")).await;
    let id = started["conversationId"].as_str().unwrap();
    let token = started["token"].as_str().unwrap();
    let mut stream = open_stream(started["streamUrl"].as_str().unwrap()).await;

    let sent = say(&app, token, id, "hello there", "client-1").await;
    assert_eq!(sent.status(), 200);
    let sent: Value = sent.json().await.unwrap();
    let sent_id = sent["id"].as_str().unwrap();

    let messages = next_messages(&mut stream, 2).await;
    let (mine, first_watermark) = &messages[0];
    assert_eq!(mine["id"], sent_id);
    assert_eq!(mine["from"]["id"], "dl_alice");
    assert_eq!(mine["from"]["role"], "user");
    assert_eq!(mine["channelData"]["clientActivityID"], "client-1");
    assert_eq!(mine["channelId"], "directline");
    assert_eq!(mine["conversation"]["id"], id);
    let (reply, last_watermark) = &messages[1];
    assert_eq!(reply["from"]["role"], "bot");
    assert_eq!(reply["from"]["id"], "echo");
    assert_eq!(reply["replyToId"], sent_id);
    assert_eq!(reply["text"], "hello there");
    assert!(first_watermark.parse::<u64>().unwrap() < last_watermark.parse::<u64>().unwrap());

    // Polling from the start returns both, and its watermark is the stream's.
    let polled: Value = get(&app, token, &format!("/conversations/{id}/activities"))
        .await
        .json()
        .await
        .unwrap();
    let polled_ids: Vec<&Value> = polled["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|activity| &activity["id"])
        .collect();
    assert_eq!(polled_ids, vec![&mine["id"], &reply["id"]]);
    assert_eq!(polled["watermark"].as_str(), Some(last_watermark.as_str()));
    let after: Value = get(
        &app,
        token,
        &format!("/conversations/{id}/activities?watermark={last_watermark}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(after["activities"], json!([]));

    // Reconnecting after the first message's watermark repeats nothing and misses
    // nothing: the reply comes again, alone, then what is new.
    drop(stream);
    let resumed: Value = get(
        &app,
        token,
        &format!("/conversations/{id}?watermark={first_watermark}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(resumed["conversationId"], id);
    let mut stream = open_stream(resumed["streamUrl"].as_str().unwrap()).await;
    let again = next_messages(&mut stream, 1).await;
    assert_eq!(again[0].0["id"], reply["id"]);
    say(&app, token, id, "second", "client-2").await;
    let next = next_messages(&mut stream, 2).await;
    assert_eq!(next[0].0["text"], "second");
    assert_eq!(next[1].0["text"], "second");
    assert_eq!(next[1].0["from"]["role"], "bot");

    // The conversation is an ordinary one: its user sees it in the REST API.
    let history = app.all_messages(&user("dl_alice"), id).await;
    assert_eq!(history.len(), 4);
    app.stop().await;
}

async fn a_retried_activity_is_stored_once(backend: Backend) {
    let (app, _secrets) = spawn_directline(backend).await;
    let started = begin(&app, ECHO_SECRET, None).await;
    let id = started["conversationId"].as_str().unwrap();
    let token = started["token"].as_str().unwrap();
    let path = format!("/conversations/{id}/activities");
    let first: Value = post(&app, token, &path, Some(message("once", "retry-me")))
        .await
        .json()
        .await
        .unwrap();
    let second: Value = post(&app, token, &path, Some(message("once", "retry-me")))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["id"], second["id"]);
    let polled: Value = get(&app, token, &path).await.json().await.unwrap();
    let users: Vec<&Value> = polled["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|activity| activity["from"]["role"] == "user")
        .collect();
    assert_eq!(users.len(), 1, "{polled}");
    let user_id = users[0]["from"]["id"].as_str().unwrap();
    assert!(user_id.starts_with("dl_"), "{user_id}");
    app.stop().await;
}

on_every_backend!(
    a_web_chat_session_round_trips_over_the_stream,
    a_retried_activity_is_stored_once
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_bot_offers_its_suggestions_as_suggested_actions() {
    let (app, _secrets) = spawn_directline(Backend::Sqlite).await;
    let started = begin(&app, DEMO_SECRET, None).await;
    let id = started["conversationId"].as_str().unwrap();
    let token = started["token"].as_str().unwrap();
    let mut stream = open_stream(started["streamUrl"].as_str().unwrap()).await;
    say(&app, token, id, "I'd like a pizza", "p1").await;
    let replies = next_messages(&mut stream, 2).await;
    assert_eq!(replies[1].0["from"]["name"], "Demo");
    let actions = &replies[1].0["suggestedActions"]["actions"];
    assert_eq!(
        actions[2],
        json!({ "type": "imBack", "title": "large", "value": "large" }),
        "{actions}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_bot_is_typing_on_the_stream_before_it_answers() {
    let (app, _secrets) =
        spawn_with_secrets(Backend::Sqlite, &[("echo-stream", ECHO_SECRET)]).await;
    let started = begin(&app, ECHO_SECRET, None).await;
    let id = started["conversationId"].as_str().unwrap();
    let token = started["token"].as_str().unwrap();
    let mut stream = open_stream(started["streamUrl"].as_str().unwrap()).await;
    say(&app, token, id, "one two three four five", "t1").await;
    let mut kinds = Vec::new();
    while kinds.iter().filter(|kind| *kind == "message").count() < 2 {
        let set = next_set(&mut stream).await;
        for activity in set["activities"].as_array().unwrap() {
            if activity["type"] == "typing" {
                assert_eq!(activity["from"]["role"], "bot");
                assert!(set.get("watermark").is_none(), "{set}");
            }
            kinds.push(activity["type"].as_str().unwrap().to_owned());
        }
    }
    let reply_at = kinds.iter().rposition(|kind| kind == "message").unwrap();
    assert!(
        kinds[..reply_at].contains(&"typing".to_owned()),
        "{kinds:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_open_only_what_they_were_given_for() {
    let (app, _secrets) = spawn_directline(Backend::Sqlite).await;
    let echo = begin(&app, ECHO_SECRET, Some("dl_alice")).await;
    let other = begin(&app, ECHO_SECRET, Some("dl_bob")).await;
    let echo_id = echo["conversationId"].as_str().unwrap();
    let token = echo["token"].as_str().unwrap();
    let other_path = format!(
        "/conversations/{}/activities",
        other["conversationId"].as_str().unwrap()
    );

    let no_auth = app
        .http
        .post(url(&app, "/tokens/generate"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(no_auth, 401).await, "Unauthorized");
    let wrong = post(
        &app,
        "not-a-secret-and-not-a-token",
        "/tokens/generate",
        None,
    )
    .await;
    assert_eq!(error_code(wrong, 403).await, "Forbidden");
    let token_generates = post(&app, token, "/tokens/generate", None).await;
    assert_eq!(error_code(token_generates, 403).await, "Forbidden");
    let elsewhere = get(&app, token, &other_path).await;
    assert_eq!(error_code(elsewhere, 403).await, "Forbidden");
    // The demo bot's secret does not open the echo bot's conversations.
    let other_bot = get(
        &app,
        DEMO_SECRET,
        &format!("/conversations/{echo_id}/activities"),
    )
    .await;
    assert_eq!(error_code(other_bot, 404).await, "NotFound");
    // The echo bot's secret does, as the conversation's user.
    let secret_reads = get(
        &app,
        ECHO_SECRET,
        &format!("/conversations/{echo_id}/activities"),
    )
    .await;
    assert_eq!(secret_reads.status(), 200);
    // A conversation token opens nothing of the confab API.
    let rest = app
        .http
        .get(app.url("/conversations"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 401);
    // A stream URL with another conversation's token is refused before the upgrade.
    let stream_url = format!(
        "ws://{}/v3/directline/conversations/{}/stream?t={token}",
        app.address,
        other["conversationId"].as_str().unwrap()
    );
    assert!(tokio_tungstenite::connect_async(stream_url).await.is_err());
    // A refreshed token works like the first.
    let refreshed: Value = post(&app, token, "/tokens/refresh", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refreshed["conversationId"], echo_id);
    let with_refreshed = get(
        &app,
        refreshed["token"].as_str().unwrap(),
        &format!("/conversations/{echo_id}/activities"),
    )
    .await;
    assert_eq!(with_refreshed.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_direct_line_errors_and_change_nothing() {
    let (app, _secrets) = spawn_directline(Backend::Sqlite).await;
    let started = begin(&app, ECHO_SECRET, None).await;
    let id = started["conversationId"].as_str().unwrap();
    let token = started["token"].as_str().unwrap();
    let path = format!("/conversations/{id}/activities");

    let not_json = app
        .http
        .post(url(&app, &path))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(not_json, 400).await, "BadArgument");
    let empty = post(
        &app,
        token,
        &path,
        Some(json!({ "type": "message", "text": " " })),
    )
    .await;
    assert_eq!(error_code(empty, 400).await, "BadArgument");
    let card = post(
        &app,
        token,
        &path,
        Some(json!({
            "type": "message",
            "text": "card",
            "attachments": [{ "contentType": "application/vnd.microsoft.card.adaptive", "content": {} }]
        })),
    )
    .await;
    assert_eq!(error_code(card, 400).await, "BadArgument");
    let bad_watermark = get(&app, token, &format!("{path}?watermark=abc")).await;
    assert_eq!(error_code(bad_watermark, 400).await, "BadArgument");
    let upload = post(&app, token, &format!("/conversations/{id}/upload"), None).await;
    assert_eq!(error_code(upload, 400).await, "BadArgument");
    let unknown = get(&app, token, "/nowhere").await;
    assert_eq!(error_code(unknown, 404).await, "NotFound");
    let wrong_method = get(&app, ECHO_SECRET, "/tokens/generate").await;
    assert_eq!(error_code(wrong_method, 405).await, "MethodNotAllowed");
    let bad_id = get(&app, token, "/conversations/not-a-uuid/activities").await;
    assert_eq!(error_code(bad_id, 404).await, "NotFound");
    let bad_user = post(
        &app,
        ECHO_SECRET,
        "/tokens/generate",
        Some(json!({ "user": { "id": "has space" } })),
    )
    .await;
    assert_eq!(error_code(bad_user, 400).await, "BadArgument");
    // Events and other activity types are acknowledged and not stored.
    let event = post(
        &app,
        token,
        &path,
        Some(json!({ "type": "event", "name": "webchat/join" })),
    )
    .await;
    assert_eq!(event.status(), 200);
    let typing = post(&app, token, &path, Some(json!({ "type": "typing" }))).await;
    assert_eq!(typing.status(), 200);

    let polled: Value = get(&app, token, &path).await.json().await.unwrap();
    assert_eq!(polled["activities"], json!([]), "{polled}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_on_other_sites_may_call_direct_line_but_not_the_rest_of_the_api() {
    let (app, _secrets) = spawn_directline(Backend::Sqlite).await;
    let preflight = |path: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url(path))
            .header("origin", "http://127.0.0.1:1")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-ms-bot-agent",
            )
            .send()
    };
    let directline = preflight("/v3/directline/conversations").await.unwrap();
    assert_eq!(
        directline.headers()["access-control-allow-origin"],
        "http://127.0.0.1:1"
    );
    let allowed = directline.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allowed.contains("x-ms-bot-agent"), "{allowed}");
    let api = preflight("/conversations").await.unwrap();
    assert!(api.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_ignores_client_heartbeats_and_ends_when_the_conversation_is_deleted() {
    let (app, _secrets) = spawn_directline(Backend::Sqlite).await;
    let started = begin(&app, ECHO_SECRET, Some("dl_carol")).await;
    let id = started["conversationId"].as_str().unwrap();
    let mut stream = open_stream(started["streamUrl"].as_str().unwrap()).await;
    // directlinejs sends an empty text message every 20 s to notice a dead link.
    stream.send(WsMessage::Text("".into())).await.unwrap();
    stream.send(WsMessage::Text("{}".into())).await.unwrap();
    assert_eq!(app.delete(&user("dl_carol"), id).await.status(), 204);
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.next().await {
                Some(Ok(WsMessage::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("the stream closes");
    assert_eq!(closed, Some(1000));
    let gone = get(
        &app,
        started["token"].as_str().unwrap(),
        &format!("/conversations/{id}/activities"),
    )
    .await;
    assert_eq!(error_code(gone, 404).await, "NotFound");
    // Waiting a moment would not change it: the answer is final.
    tokio::time::sleep(Duration::from_millis(10)).await;
    app.stop().await;
}
