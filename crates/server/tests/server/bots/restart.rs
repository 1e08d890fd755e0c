//! The real binary killed (SIGKILL) after the user's message is stored and while
//! the bot works on the reply; started again, it finishes the reply exactly once.

use serde_json::{Value, json};

use crate::bots::fakes::WebhookBot;
use crate::helpers::{Backend, TestDatabase, WsClient, admin, user};
use crate::helpers::{Binary, Client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_reply_answers_once_after_restart() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let (bot, url) = WebhookBot::start(true).await;

    let first = Binary::start(&database.url);
    let client = Client::of(first.address);
    let created = client
        .post(
            &admin(),
            "/bots",
            json!({"id": "hook", "name": "Hook", "kind": "webhook", "settings": {"url": url}}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let alice = user("alice");
    let started = client.start(&alice, "hook", "are you there?").await;
    let id = started["conversation_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    // The bot holds this first request: the reply is in progress when the server dies.
    bot.wait_for_requests(1).await;
    first.kill();

    let second = Binary::start(&database.url);
    let mut socket = WsClient::connect(second.address, &alice)
        .await
        .expect("the WebSocket connects");
    assert_eq!(socket.next_json().await["status"], "connected");
    socket
        .send_json(json!({"type": "subscribe", "conversation_id": id, "after_seq": 0}))
        .await;
    let frames = socket.until_bot_message().await;
    let reply = frames.last().expect("the reply");
    assert_eq!(reply["content"], "re: are you there?");

    let client = Client::of(second.address);
    let messages = client.messages(&alice, &id).await;
    let senders: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["sender"].as_str())
        .collect();
    assert_eq!(senders, ["user", "bot"], "{messages:#?}");
    let question: &Value = &messages[0];
    assert_eq!(messages[1]["reply_to"], question["id"]);
    let requests = bot.requests();
    assert_eq!(
        requests.len(),
        2,
        "asked once before the crash and once after"
    );
    assert_eq!(requests[0].0, requests[1].0, "the same delivery both times");
    drop(second);
}
