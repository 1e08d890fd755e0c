//! Bots declared in the configuration answering through real engines: an OpenAI-
//! compatible model streamed over `/ws`, a webhook answering ten quick messages in
//! order, and the built-in demo script.

use confab_bots::declaration::BotDeclaration;
use serde_json::{Value, json};

use crate::bots::fakes::{WebhookBot, model};
use crate::helpers::Client;
use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_with, user};

fn declared(id: &str, kind: &str, settings: Value) -> BotDeclaration {
    BotDeclaration {
        id: id.to_owned(),
        name: id.to_owned(),
        description: String::new(),
        kind: kind.to_owned(),
        settings: settings
            .as_object()
            .cloned()
            .expect("settings are an object"),
    }
}

#[tokio::test]
async fn a_configured_openai_bot_streams_its_reply_over_the_websocket() {
    let base_url = model("Hello from the model").await;
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.bots = vec![declared(
            "llm",
            "openai",
            json!({"base_url": base_url, "model": "tiny"}),
        )];
    })
    .await;
    let alice = user("alice");
    let mut socket = app.ws(&alice).await;
    assert_eq!(socket.next_json().await["status"], "connected");
    socket
        .send_json(json!({"type": "start", "bot_id": "llm", "initial_message": "Hi"}))
        .await;
    let frames = socket.until_bot_message().await;
    let reply = frames.last().expect("the reply");
    assert_eq!(reply["content"], "Hello from the model");
    let deltas: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] == "delta" && f["reply_id"] == reply["id"])
        .filter_map(|f| f["content"].as_str())
        .collect();
    assert_eq!(deltas, ["Hello ", "from ", "the ", "model"]);
    app.stop().await;
}

#[tokio::test]
async fn ten_quick_messages_to_a_webhook_bot_get_ten_replies_in_order_on_sqlite() {
    let (bot, url) = WebhookBot::start(false).await;
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.bots = vec![declared("hook", "webhook", json!({"url": url}))];
    })
    .await;
    ten_quick_messages_get_ten_replies_in_order(app, bot).await;
}

#[tokio::test]
async fn ten_quick_messages_to_a_webhook_bot_get_ten_replies_in_order_on_postgresql() {
    if !crate::helpers::postgres_configured() {
        return;
    }
    let (bot, url) = WebhookBot::start(false).await;
    let app = spawn_app_with(Backend::Postgres, |config| {
        config.bots = vec![declared("hook", "webhook", json!({"url": url}))];
    })
    .await;
    ten_quick_messages_get_ten_replies_in_order(app, bot).await;
}

async fn ten_quick_messages_get_ten_replies_in_order(app: TestApp, bot: WebhookBot) {
    let client = Client::of(app.address);
    let alice = user("alice");
    let started = client.start(&alice, "hook", "question 0").await;
    let id = started["conversation_id"].as_str().expect("an id");
    for n in 1..10 {
        let query = if n == 9 { "?wait=true" } else { "" };
        let sent = client
            .post(
                &alice,
                &format!("/conversations/{id}/messages{query}"),
                json!({"content": format!("question {n}")}),
            )
            .await;
        assert_eq!(sent.status(), 201);
    }
    let messages = client.messages(&alice, id).await;
    assert_eq!(messages.len(), 20, "{messages:#?}");
    let questions: Vec<&Value> = messages.iter().filter(|m| m["sender"] == "user").collect();
    let replies: Vec<&Value> = messages.iter().filter(|m| m["sender"] == "bot").collect();
    assert_eq!(replies.len(), 10);
    for (n, (question, reply)) in questions.iter().zip(&replies).enumerate() {
        assert_eq!(reply["reply_to"], question["id"]);
        assert_eq!(reply["content"], format!("re: question {n}"));
    }
    let asked: Vec<String> = bot.requests().into_iter().map(|(_, text)| text).collect();
    let expected: Vec<String> = (0..10).map(|n| format!("question {n}")).collect();
    assert_eq!(asked, expected, "the bot was asked out of order or twice");
    app.stop().await;
}

#[tokio::test]
async fn the_built_in_demo_bot_remembers_a_name_without_any_configuration() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = Client::of(app.address);
    let alice = user("alice");
    let response = client
        .post(
            &alice,
            "/conversations/start?wait=true",
            json!({"bot_id": "demo", "initial_message": "Hello, my name is Ana"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("a start body");
    assert_eq!(body["replies"][0]["content"], "Nice to meet you, Ana!");
    app.stop().await;
}
