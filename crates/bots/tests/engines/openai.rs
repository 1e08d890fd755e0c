//! The `openai` engine against a fake chat completions server that streams, breaks
//! off, sends malformed chunks, stalls and fails; each case ends in one stored
//! message, never a hung conversation. A model offered the `handoff` function calls it
//! to put the conversation in the agents' queue.

use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use confab_domain::bot::EngineKind;
use confab_domain::handoff::HandoffState;
use confab_domain::message::Sender;
use futures::StreamExt;
use futures::stream;
use serde_json::{Value, json};

use crate::support::{Chat, SECRET_VAR, secret, serve};

/// One request's body and Authorization header.
type Request = (Value, Option<String>);

/// What the fake received.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<Request>>>);

impl Received {
    fn all(&self) -> Vec<Request> {
        self.0.lock().expect("not poisoned").clone()
    }
}

fn chunk(text: &str) -> Bytes {
    let event =
        json!({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]});
    Bytes::from(format!("data: {event}\n\n"))
}

/// The streamed start of a call of the `handoff` function, then its arguments, the
/// way OpenAI sends them: the name only in the first `tool_calls` delta.
fn handoff_call() -> Vec<Result<Bytes, std::io::Error>> {
    [
        json!({"choices": [{"index": 0, "delta": {"content": null, "tool_calls": [{
            "index": 0, "id": "call_1", "type": "function",
            "function": {"name": "handoff", "arguments": ""},
        }]}, "finish_reason": null}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{
            "index": 0, "function": {"arguments": "{}"},
        }]}, "finish_reason": null}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    ]
    .into_iter()
    .map(|event| Ok(Bytes::from(format!("data: {event}\n\n"))))
    .chain([Ok(Bytes::from("data: [DONE]\n\n"))])
    .collect()
}

fn sse(parts: Vec<Result<Bytes, std::io::Error>>, then_stall: bool) -> Response {
    let body = stream::iter(parts);
    let body = if then_stall {
        Body::from_stream(body.chain(stream::pending()))
    } else {
        Body::from_stream(body)
    };
    ([("content-type", "text/event-stream")], body).into_response()
}

/// Behaves according to the requested model's name.
async fn completions(
    State(received): State<Received>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    received
        .0
        .lock()
        .expect("not poisoned")
        .push((body.clone(), auth));
    let role = Bytes::from(format!(
        "data: {}\n\n",
        json!({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    ));
    let broken = || std::io::Error::other("the fake model crashed");
    match body["model"].as_str().unwrap_or_default() {
        "streams" => {
            // One event split across two writes, to check the reader joins them.
            let whole = chunk("lo ");
            let (left, right) = whole.split_at(10);
            sse(
                vec![
                    Ok(Bytes::from(": keep-alive\n\n")),
                    Ok(role),
                    Ok(chunk("Hel")),
                    Ok(Bytes::copy_from_slice(left)),
                    Ok(Bytes::copy_from_slice(right)),
                    Ok(chunk("there")),
                    Ok(Bytes::from("data: [DONE]\n\n")),
                ],
                false,
            )
        }
        "malformed" => sse(
            vec![
                Ok(chunk("Partial")),
                Ok(Bytes::from("data: {\"choices\": [oops\n\n")),
                Ok(chunk(" never shown")),
                Ok(Bytes::from("data: [DONE]\n\n")),
            ],
            false,
        ),
        "stalls" => sse(vec![Ok(chunk("Let me think"))], true),
        "hands-off" => {
            let mut parts = vec![Ok(chunk("One moment, ")), Ok(chunk("I will get a person."))];
            parts.extend(handoff_call());
            sse(parts, false)
        }
        "hands-off-silently" => sse(handoff_call(), false),
        "silent" => sse(vec![Ok(role)], true),
        "breaks-at-once" => sse(vec![Err(broken())], false),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "the model is overloaded"}})),
        )
            .into_response(),
    }
}

async fn fake_model() -> (String, Received) {
    let received = Received::default();
    let router = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(received.clone());
    (format!("{}/v1", serve(router).await), received)
}

fn settings(base_url: &str, model: &str) -> Value {
    json!({
        "base_url": base_url,
        "model": model,
        "api_key_env": SECRET_VAR,
        "system_prompt": "You are terse.",
        "history_window": 3,
        "temperature": 0.2,
        "max_tokens": 64,
        "stall_timeout_ms": 300,
    })
}

fn chat(base_url: &str, model: &str) -> Chat {
    Chat::with(EngineKind::OpenAi, settings(base_url, model))
}

/// A chat whose bot offers the model the `handoff` function.
fn chat_offering_handoff(base_url: &str, model: &str) -> Chat {
    let mut settings = settings(base_url, model);
    settings["handoff_tool"] = json!(true);
    Chat::with(EngineKind::OpenAi, settings)
}

#[tokio::test]
async fn a_streamed_completion_arrives_as_deltas_then_one_stored_reply() {
    let (base_url, received) = fake_model().await;
    let mut chat = chat(&base_url, "streams");
    let reply = chat.ask("Hi").await;
    assert_eq!(reply.sender, Sender::Bot);
    assert_eq!(reply.content.as_str(), "Hello there");
    assert!(reply.metadata.as_map().is_empty(), "{:?}", reply.metadata);
    assert_eq!(chat.deltas_of(&reply), ["Hel", "lo ", "there"]);

    let requests = received.all();
    assert_eq!(requests.len(), 1);
    let (body, auth) = &requests[0];
    assert_eq!(
        auth.as_deref(),
        Some(format!("Bearer {}", secret()).as_str())
    );
    assert_eq!(body["model"], "streams");
    assert_eq!(body["stream"], true);
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
        ])
    );
}

#[tokio::test]
async fn the_model_sees_a_window_of_history_with_the_bots_own_replies() {
    let (base_url, received) = fake_model().await;
    let mut chat = chat(&base_url, "streams");
    chat.ask("one").await;
    chat.ask("two").await;
    let requests = received.all();
    let (body, _) = requests.last().expect("two requests");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "Hello there"},
            {"role": "user", "content": "two"},
        ])
    );
}

async fn assert_cut(model: &str, text: &str) {
    let (base_url, _) = fake_model().await;
    let mut chat = chat(&base_url, model);
    let reply = chat.ask("Hi").await;
    assert_eq!(reply.sender, Sender::Bot, "{reply:?}");
    assert_eq!(reply.content.as_str(), text);
    assert_eq!(reply.metadata.as_map().get("cut"), Some(&json!(true)));
    assert!(
        reply.metadata.as_map().contains_key("cut_reason"),
        "{:?}",
        reply.metadata
    );
    let streaming = chat
        .service
        .replies()
        .streaming_reply(reply.conversation_id);
    assert_eq!(streaming, None, "the reply still streams");
}

/// A model server on a raw socket that sends part of a streamed answer and then
/// closes the connection before the body's announced end.
async fn model_that_breaks_midway() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a test port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("a connection");
        // Read the whole request first, so closing sends FIN rather than RST.
        let mut request = Vec::new();
        let mut buffer = [0_u8; 4096];
        loop {
            let read = socket.read(&mut buffer).await.expect("reading the request");
            request.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&request).to_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            assert!(read > 0, "the client closed before sending its request");
        }
        let mut body = Vec::new();
        body.extend_from_slice(&chunk("Half an "));
        body.extend_from_slice(&chunk("answ"));
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\n\r\n",
            body.len() + 1000
        );
        socket.write_all(head.as_bytes()).await.expect("writing");
        socket.write_all(&body).await.expect("writing");
        socket.shutdown().await.expect("closing");
    });
    format!("http://{address}/v1")
}

#[tokio::test]
async fn a_stream_that_breaks_midway_is_stored_as_a_cut_reply() {
    let base_url = model_that_breaks_midway().await;
    let mut chat = chat(&base_url, "any");
    let reply = chat.ask("Hi").await;
    assert_eq!(reply.sender, Sender::Bot, "{reply:?}");
    assert_eq!(reply.content.as_str(), "Half an answ");
    assert_eq!(reply.metadata.as_map().get("cut"), Some(&json!(true)));
    assert_eq!(chat.deltas_of(&reply), ["Half an ", "answ"]);
}

#[tokio::test]
async fn a_malformed_chunk_cuts_the_reply_at_what_came_before() {
    assert_cut("malformed", "Partial").await;
}

#[tokio::test]
async fn a_stalled_stream_is_cut_after_the_stall_timeout() {
    assert_cut("stalls", "Let me think").await;
}

async fn assert_system(model: &str) {
    let (base_url, _) = fake_model().await;
    let mut chat = chat(&base_url, model);
    let reply = chat.ask("Hi").await;
    assert_eq!(reply.sender, Sender::System, "{reply:?}");
    assert_eq!(reply.content.as_str(), "The bot could not answer.");
}

#[tokio::test]
async fn an_error_status_yields_a_system_message() {
    assert_system("overloaded").await;
}

#[tokio::test]
async fn a_stream_stalled_before_any_text_yields_a_system_message() {
    assert_system("silent").await;
}

#[tokio::test]
async fn a_stream_broken_before_any_text_yields_a_system_message() {
    assert_system("breaks-at-once").await;
}

#[tokio::test]
async fn an_unreachable_model_yields_a_system_message() {
    // A port that was free a moment ago: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = listener.local_addr().expect("an address");
    drop(listener);
    let mut chat = chat(&format!("http://{address}/v1"), "streams");
    let reply = chat.ask("Hi").await;
    assert_eq!(reply.sender, Sender::System);
}

#[tokio::test]
async fn a_model_calling_the_handoff_function_queues_the_conversation_after_its_text() {
    let (base_url, received) = fake_model().await;
    let mut chat = chat_offering_handoff(&base_url, "hands-off");
    let reply = chat.ask("Can I talk to someone?").await;
    assert_eq!(reply.sender, Sender::Bot);
    assert_eq!(reply.content.as_str(), "One moment, I will get a person.");
    assert_eq!(
        chat.deltas_of(&reply),
        ["One moment, ", "I will get a person."]
    );
    chat.settle().await;
    assert_eq!(chat.conversation().await.handoff, HandoffState::Waiting);

    let requests = received.all();
    let (body, _) = &requests[0];
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "handoff",
            "description": body["tools"][0]["function"]["description"],
            "parameters": {"type": "object", "properties": {}},
        }}])
    );
    assert!(
        body["tools"][0]["function"]["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "the model is told what the function is for"
    );

    // While the conversation waits for a person, the model is not asked.
    chat.send("hello?").await;
    chat.settle().await;
    assert_eq!(received.all().len(), 1);
    let senders: Vec<Sender> = chat.transcript().into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        senders,
        [Sender::User, Sender::Bot, Sender::System, Sender::User]
    );
}

#[tokio::test]
async fn a_model_that_only_calls_the_handoff_function_stores_no_message_of_its_own() {
    let (base_url, _) = fake_model().await;
    let mut chat = chat_offering_handoff(&base_url, "hands-off-silently");
    chat.send("A person, please").await;
    chat.settle().await;
    assert_eq!(
        chat.transcript(),
        [
            (Sender::User, "A person, please".to_owned()),
            (Sender::System, "Waiting for a person to join".to_owned()),
        ]
    );
    assert_eq!(chat.conversation().await.handoff, HandoffState::Waiting);
}

#[tokio::test]
async fn without_handoff_tool_the_function_is_not_offered_and_a_call_is_ignored() {
    let (base_url, received) = fake_model().await;
    let mut chat = chat(&base_url, "hands-off");
    let reply = chat.ask("Can I talk to someone?").await;
    assert_eq!(reply.content.as_str(), "One moment, I will get a person.");
    chat.settle().await;
    assert_eq!(chat.conversation().await.handoff, HandoffState::Bot);
    let requests = received.all();
    assert!(requests[0].0.get("tools").is_none(), "{:?}", requests[0].0);
}
