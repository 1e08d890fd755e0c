//! The `webhook` engine against a fake bot service that checks the signature,
//! fails on purpose, answers late and asks for a person.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use confab_domain::bot::EngineKind;
use confab_domain::handoff::HandoffState;
use confab_domain::message::Sender;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{Chat, SECRET_VAR, secret, serve};

/// What the fake bot saw.
#[derive(Clone, Default)]
struct Bot {
    attempts: Arc<AtomicUsize>,
    deliveries: Arc<Mutex<Vec<String>>>,
    payloads: Arc<Mutex<Vec<Value>>>,
}

/// Checks `X-Confab-Signature` the way a bot author would, from the raw body.
fn signed(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers
        .get("x-confab-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(hex_digest) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(digest) = hex::decode(hex_digest) else {
        return false;
    };
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret().as_bytes()).expect("any key length");
    mac.update(body);
    mac.verify_slice(&digest).is_ok()
}

/// The fake bot service; its path says how it behaves.
async fn hook(
    State(bot): State<Bot>,
    axum::extract::Path(behaviour): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let attempt = bot.attempts.fetch_add(1, Ordering::SeqCst) + 1;
    if let Some(delivery) = headers
        .get("x-confab-delivery")
        .and_then(|v| v.to_str().ok())
    {
        bot.deliveries
            .lock()
            .expect("not poisoned")
            .push(delivery.to_owned());
    }
    if !signed(&headers, &body) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let payload: Value = serde_json::from_slice(&body).expect("the payload is JSON");
    bot.payloads
        .lock()
        .expect("not poisoned")
        .push(payload.clone());
    let content = payload["message"]["content"].as_str().unwrap_or_default();
    let answer = || {
        Json(json!({
            "content": format!("You said: {content}"),
            "suggestions": ["more", {"text": "stop"}],
            "context": {"turns": attempt},
            "metadata": {"intent": "repeat"},
        }))
        .into_response()
    };
    match behaviour.as_str() {
        "answers" => answer(),
        "flaky" if attempt < 3 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "flaky" => answer(),
        "slow" if attempt == 1 => {
            // Never answers the first attempt: the engine's per-attempt timeout ends it.
            futures::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
        "slow" => answer(),
        "later" => StatusCode::NO_CONTENT.into_response(),
        "hands-off" => {
            Json(json!({"content": "Let me find a person", "handoff": true})).into_response()
        }
        "hands-off-silently" => Json(json!({"handoff": true})).into_response(),
        "refuses" => StatusCode::BAD_REQUEST.into_response(),
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn fake_bot() -> (String, Bot) {
    let bot = Bot::default();
    let router = Router::new()
        .route("/hooks/{behaviour}", post(hook))
        .with_state(bot.clone());
    (serve(router).await, bot)
}

fn chat(url: String, secret_var: &str) -> Chat {
    Chat::with(
        EngineKind::Webhook,
        json!({
            "url": url,
            "secret_env": secret_var,
            "request_timeout_ms": 300,
            "max_retries": 2,
            "retry_backoff_ms": 10,
        }),
    )
}

#[tokio::test]
async fn a_signed_event_gets_a_synchronous_reply_with_suggestions_and_context() {
    let (base, bot) = fake_bot().await;
    let mut chat = chat(format!("{base}/hooks/answers"), SECRET_VAR);
    let first = chat.ask("hello").await;
    assert_eq!(first.sender, Sender::Bot);
    assert_eq!(first.content.as_str(), "You said: hello");
    let suggestions: Vec<&str> = first.suggestions.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(suggestions, ["more", "stop"]);
    assert_eq!(
        first.metadata.as_map().get("intent"),
        Some(&json!("repeat"))
    );

    let second = chat.ask("again").await;
    assert_eq!(second.content.as_str(), "You said: again");
    let payloads = bot.payloads.lock().expect("not poisoned").clone();
    let last = payloads.last().expect("two payloads");
    assert_eq!(last["type"], "message");
    assert_eq!(last["bot_id"], "bot");
    assert_eq!(last["conversation"]["user_id"], "alice");
    assert_eq!(
        last["session"]["context"],
        json!({"turns": 1}),
        "the context the bot returned comes back"
    );
    assert_eq!(last["message"]["content"], "again");
    assert_eq!(last["message"]["seq"], 3);
    let history: Vec<&str> = last["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(history, ["hello", "You said: hello", "again"]);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_bot_and_yields_a_system_message() {
    let (base, bot) = fake_bot().await;
    let mut chat = chat(format!("{base}/hooks/answers"), "CARGO_PKG_VERSION");
    let reply = chat.ask("hello").await;
    assert_eq!(reply.sender, Sender::System);
    assert_eq!(reply.content.as_str(), "The bot could not answer.");
    assert_eq!(
        bot.attempts.load(Ordering::SeqCst),
        1,
        "a 4xx is not retried"
    );
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_delivery_id() {
    let (base, bot) = fake_bot().await;
    let mut chat = chat(format!("{base}/hooks/flaky"), SECRET_VAR);
    let reply = chat.ask("hello").await;
    assert_eq!(reply.sender, Sender::Bot);
    assert_eq!(bot.attempts.load(Ordering::SeqCst), 3);
    let deliveries = bot.deliveries.lock().expect("not poisoned").clone();
    let question = reply.reply_to.expect("a reply").to_string();
    assert_eq!(deliveries, [question.clone(), question.clone(), question]);
}

#[tokio::test]
async fn a_request_that_times_out_is_retried() {
    let (base, bot) = fake_bot().await;
    let mut chat = chat(format!("{base}/hooks/slow"), SECRET_VAR);
    let reply = chat.ask("hello").await;
    assert_eq!(reply.sender, Sender::Bot);
    assert_eq!(bot.attempts.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn retries_are_bounded_and_end_in_a_system_message() {
    let (base, bot) = fake_bot().await;
    let mut chat = chat(format!("{base}/hooks/down"), SECRET_VAR);
    let reply = chat.ask("hello").await;
    assert_eq!(reply.sender, Sender::System);
    assert_eq!(
        bot.attempts.load(Ordering::SeqCst),
        3,
        "one try and two retries"
    );
}

#[tokio::test]
async fn a_bot_answering_with_no_content_is_left_to_answer_later() {
    let (base, _) = fake_bot().await;
    let mut chat = chat(format!("{base}/hooks/later"), SECRET_VAR);
    let question = chat.send("hello").await;
    assert!(
        chat.service
            .replies()
            .drain(crate::support::REPLY_WAIT)
            .await,
        "the reply job ends"
    );
    // Nothing is stored for it, and the message counts as handed over to the bot.
    assert_eq!(
        chat.ports.store.messages_of(question.conversation_id),
        std::slice::from_ref(&question)
    );
    let conversation = chat
        .ports
        .ports
        .conversations
        .get(question.conversation_id)
        .await
        .expect("the conversation");
    assert_eq!(conversation.replied_seq, question.seq);
    assert!(!conversation.has_pending_replies());
}

#[tokio::test]
async fn a_bot_answering_handoff_puts_the_conversation_in_the_queue_after_its_reply() {
    let (base, bot) = fake_bot().await;
    let mut chat = chat(format!("{base}/hooks/hands-off"), SECRET_VAR);
    let reply = chat.ask("I want a human").await;
    assert_eq!(reply.sender, Sender::Bot);
    assert_eq!(reply.content.as_str(), "Let me find a person");
    chat.settle().await;
    assert_eq!(chat.conversation().await.handoff, HandoffState::Waiting);

    // While the conversation waits for a person, the bot is not asked.
    chat.send("hello?").await;
    chat.settle().await;
    assert_eq!(bot.attempts.load(Ordering::SeqCst), 1);
    assert_eq!(
        chat.transcript(),
        [
            (Sender::User, "I want a human".to_owned()),
            (Sender::Bot, "Let me find a person".to_owned()),
            (Sender::System, "Waiting for a person to join".to_owned()),
            (Sender::User, "hello?".to_owned()),
        ]
    );
    assert!(!chat.conversation().await.has_pending_replies());
}

#[tokio::test]
async fn a_bot_answering_only_handoff_stores_no_message_of_its_own() {
    let (base, _) = fake_bot().await;
    let mut chat = chat(format!("{base}/hooks/hands-off-silently"), SECRET_VAR);
    chat.send("I want a human").await;
    chat.settle().await;
    assert_eq!(
        chat.transcript(),
        [
            (Sender::User, "I want a human".to_owned()),
            (Sender::System, "Waiting for a person to join".to_owned()),
        ]
    );
    let conversation = chat.conversation().await;
    assert_eq!(conversation.handoff, HandoffState::Waiting);
    assert!(!conversation.has_pending_replies());
}
