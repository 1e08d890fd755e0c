//! A webhook bot asking for a person (issue 17): its answer `"handoff": true` is
//! stored, the conversation goes to the agents' queue with its notice, and the bot is
//! not asked again while people answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use confab_bots::declaration::BotDeclaration;
use confab_domain::conversation::ConversationId;
use confab_domain::ports::ConversationRepository;
use serde_json::{Value, json};

use crate::helpers::{Backend, Client, PATIENCE, TestApp, spawn_app_with, user};
use crate::on_every_backend;

on_every_backend!(a_webhook_answering_handoff_puts_the_conversation_in_the_queue);

/// How long the test gives a reply that must not come before it looks for one.
const GRACE: Duration = Duration::from_millis(500);

/// A webhook bot that answers every message by asking for a person; returns its URL
/// and the count of requests it got.
async fn bot_asking_for_a_person() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let router = Router::new().route(
        "/hook",
        post(move |Json(_): Json<Value>| {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                Json(json!({"content": "Let me find a person", "handoff": true}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a test port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        axum::serve(listener, router)
            .await
            .expect("the fake serves");
    });
    (format!("http://{address}/hook"), calls)
}

async fn spawn_with_bot(backend: Backend, url: &str) -> TestApp {
    spawn_app_with(backend, |config| {
        config.bots = vec![BotDeclaration {
            id: "hook".to_owned(),
            name: "Hook".to_owned(),
            description: String::new(),
            kind: "webhook".to_owned(),
            settings: json!({"url": url})
                .as_object()
                .cloned()
                .expect("settings are an object"),
        }];
    })
    .await
}

/// The conversation's resource once its handoff state is `state`, failing the test
/// if that takes longer than [`PATIENCE`].
async fn conversation_in(client: &Client, token: &str, id: &str, state: &str) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let response = client.get(token, &format!("/conversations/{id}")).await;
        assert_eq!(response.status(), 200);
        let conversation: Value = response.json().await.expect("a conversation");
        if conversation["handoff"] == state {
            return conversation;
        }
        assert!(
            Instant::now() < deadline,
            "the conversation is still {}",
            conversation["handoff"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_webhook_answering_handoff_puts_the_conversation_in_the_queue(backend: Backend) {
    let (url, calls) = bot_asking_for_a_person().await;
    let app = spawn_with_bot(backend, &url).await;
    let client = Client::of(app.address);
    let alice = user("alice");

    let response = client
        .post(
            &alice,
            "/conversations/start?wait=true",
            json!({"bot_id": "hook", "initial_message": "I need help with my order"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let started: Value = response.json().await.expect("a start body");
    assert_eq!(started["replies"][0]["content"], "Let me find a person");
    let id = started["conversation_id"].as_str().expect("an id");

    let conversation = conversation_in(&client, &alice, id, "waiting").await;
    assert_eq!(conversation["handoff_agent"], Value::Null);
    assert!(conversation["handoff_since"].is_string(), "{conversation}");

    let messages = client.messages(&alice, id).await;
    let transcript: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["sender"].as_str().unwrap_or_default(),
                m["content"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        transcript,
        [
            ("user", "I need help with my order"),
            ("bot", "Let me find a person"),
            ("system", "Waiting for a person to join"),
        ]
    );
    assert_eq!(messages[1]["reply_to"], messages[0]["id"]);

    // Waiting for a person, the conversation takes the user's messages for people:
    // stored already answered, so no reply job asks the bot.
    let sent = client
        .post(
            &alice,
            &format!("/conversations/{id}/messages"),
            json!({"content": "Hello? Anyone?"}),
        )
        .await;
    assert_eq!(sent.status(), 201);
    let stored = app
        .store()
        .await
        .get(id.parse::<ConversationId>().expect("a conversation id"))
        .await
        .expect("the conversation");
    assert!(!stored.has_pending_replies(), "{stored:?}");
    tokio::time::sleep(GRACE).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the bot was asked again");
    let messages = client.messages(&alice, id).await;
    assert_eq!(messages.len(), 4, "{messages:#?}");
    assert_eq!(messages[3]["content"], "Hello? Anyone?");
    conversation_in(&client, &alice, id, "waiting").await;
    app.stop().await;
}
