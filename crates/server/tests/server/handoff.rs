//! Human handoff end to end: a user asks for a person, agents see the queue, the
//! first claim wins, the agent and the user talk over REST and `/ws` while the bot
//! stays silent, and the bot answers again once the agent gives the conversation
//! back; what agents may and may not touch; and the real binary killed -9 during a
//! handoff, after which the conversation is still held and the bot answers none of
//! what the user sent meanwhile.

use confab_domain::user::Role;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Binary, SseReader, TestApp, TestDatabase, admin, spawn_app, token, user,
};
use crate::on_every_backend;

on_every_backend!(
    a_user_asks_for_a_person_an_agent_takes_over_and_gives_it_back,
    agents_see_the_queue_and_their_own_conversations_and_nothing_else,
    the_handoff_frame_asks_and_every_socket_hears_each_change,
    server_sent_events_carry_each_handoff_change,
    a_handoff_survives_kill_9_and_the_bot_answers_nothing_sent_meanwhile,
);

fn agent(name: &str) -> String {
    token(name, Role::Agent)
}

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let got = response.status();
    let text = response.text().await.expect("a body");
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).expect("a JSON body")
}

async fn post(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.http
        .post(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("a POST")
}

/// Starts a conversation of `owner` with the echo bot and one answered message.
async fn answered_conversation(app: &TestApp, owner: &str) -> String {
    let started = app
        .http
        .post(app.url("/conversations/start?wait=true"))
        .bearer_auth(owner)
        .json(&json!({"bot_id": "echo", "initial_message": "hello bot"}))
        .send()
        .await
        .expect("a start");
    let started = json_of(started, 201).await;
    assert_eq!(started["replies"][0]["content"], "hello bot");
    started["conversation_id"]
        .as_str()
        .expect("an id")
        .to_owned()
}

fn senders(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["sender"].as_str().expect("a sender"))
        .collect()
}

fn contents(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["content"].as_str().expect("content"))
        .collect()
}

fn queued_ids(queue: &Value) -> Vec<&str> {
    queue["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .map(|entry| entry["conversation"]["id"].as_str().expect("an id"))
        .collect()
}

async fn a_user_asks_for_a_person_an_agent_takes_over_and_gives_it_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let ana = user("ana");
    let (alice, bob) = (agent("alice"), agent("bob"));
    let id = answered_conversation(&app, &ana).await;

    let asked = json_of(
        post(&app, &ana, &format!("/conversations/{id}/handoff")).await,
        200,
    )
    .await;
    assert_eq!(asked["handoff"], "waiting");
    assert!(asked["handoff_since"].is_string());
    let again = json_of(
        post(&app, &ana, &format!("/conversations/{id}/handoff")).await,
        200,
    )
    .await;
    assert_eq!(
        again["handoff_since"], asked["handoff_since"],
        "asking twice changes nothing"
    );

    let waiting = json_of(
        app.send(&ana, &id, json!({"content": "is anyone there?"}))
            .await,
        201,
    )
    .await;
    let queue = json_of(app.get(&alice, "/agent/queue").await, 200).await;
    assert_eq!(queued_ids(&queue), [id.as_str()]);
    let recent = queue["conversations"][0]["recent_messages"]
        .as_array()
        .expect("recent messages");
    assert_eq!(
        recent.last().expect("the latest")["id"],
        waiting["message_id"]
    );

    let claimed = json_of(
        post(&app, &alice, &format!("/agent/conversations/{id}/claim")).await,
        200,
    )
    .await;
    assert_eq!(claimed["handoff"], "agent");
    assert_eq!(claimed["handoff_agent"], "alice");
    let second = json_of(
        post(&app, &bob, &format!("/agent/conversations/{id}/claim")).await,
        409,
    )
    .await;
    assert_eq!(second["code"], "handoff_taken");
    let queue = json_of(app.get(&alice, "/agent/queue").await, 200).await;
    assert!(queued_ids(&queue).is_empty(), "{queue}");
    let mine = json_of(app.get(&alice, "/agent/conversations").await, 200).await;
    assert_eq!(queued_ids(&mine), [id.as_str()]);

    // Bob may not write to, read or release what Alice holds.
    let refused = app.send(&bob, &id, json!({"content": "me too"})).await;
    assert_eq!(refused.status(), 404);
    let refused = post(&app, &bob, &format!("/agent/conversations/{id}/release")).await;
    assert_eq!(refused.status(), 404);

    let mut alices_socket = app.follower(&alice, &id).await;
    json_of(
        app.send(
            &alice,
            &id,
            json!({"content": "Hi, I am Alice. How can I help?"}),
        )
        .await,
        201,
    )
    .await;
    app.send(&ana, &id, json!({"content": "my order is late"}))
        .await;
    let heard = alices_socket.next_of("message").await;
    assert_eq!(heard["content"], "Hi, I am Alice. How can I help?");
    let heard = alices_socket.next_of("message").await;
    assert_eq!(
        (heard["sender"].as_str(), heard["content"].as_str()),
        (Some("user"), Some("my order is late"))
    );

    let released = json_of(
        post(&app, &alice, &format!("/agent/conversations/{id}/release")).await,
        200,
    )
    .await;
    assert_eq!(released["handoff"], "bot");
    assert!(released["handoff_since"].is_null());
    let answered = json_of(
        app.send_query(&ana, &id, "?wait=true", json!({"content": "thanks"}))
            .await,
        201,
    )
    .await;
    assert_eq!(answered["replies"][0]["content"], "thanks");

    let messages = app.all_messages(&ana, &id).await;
    assert_eq!(
        contents(&messages),
        [
            "hello bot",
            "hello bot",
            "Waiting for a person to join",
            "is anyone there?",
            "alice joined",
            "Hi, I am Alice. How can I help?",
            "my order is late",
            "Back to the bot",
            "thanks",
            "thanks",
        ]
    );
    assert_eq!(
        senders(&messages),
        [
            "user", "bot", "system", "user", "system", "agent", "user", "system", "user", "bot"
        ]
    );
    assert_eq!(messages[2]["metadata"]["handoff"], "waiting");
    assert_eq!(messages[4]["metadata"]["agent_id"], "alice");
    assert_eq!(messages[5]["sender_id"], "alice");
    app.stop().await;
}

async fn agents_see_the_queue_and_their_own_conversations_and_nothing_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ana, bo) = (user("ana"), user("bo"));
    let alice = agent("alice");
    let quiet = answered_conversation(&app, &bo).await;
    let id = answered_conversation(&app, &ana).await;

    // Before anyone asks for a person, an agent sees nothing of the conversation.
    for path in [
        format!("/conversations/{quiet}"),
        format!("/conversations/{quiet}/history"),
    ] {
        assert_eq!(app.get(&alice, &path).await.status(), 404, "{path}");
    }
    let unseen = post(&app, &alice, &format!("/agent/conversations/{quiet}/claim")).await;
    assert_eq!(unseen.status(), 404);
    // An admin sees every conversation, and why it cannot be claimed.
    let not_waiting = json_of(
        post(
            &app,
            &admin(),
            &format!("/agent/conversations/{quiet}/claim"),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(not_waiting["code"], "handoff_not_waiting");
    // Users are no agents; agents ask for no one else.
    for path in ["/agent/queue", "/agent/conversations"] {
        let refused = json_of(app.get(&ana, path).await, 403).await;
        assert_eq!(refused["code"], "forbidden");
    }
    assert_eq!(
        post(&app, &alice, &format!("/conversations/{quiet}/handoff"))
            .await
            .status(),
        404
    );

    json_of(
        post(&app, &ana, &format!("/conversations/{id}/handoff")).await,
        200,
    )
    .await;
    let refused = json_of(
        post(&app, &ana, &format!("/agent/conversations/{id}/claim")).await,
        403,
    )
    .await;
    assert_eq!(refused["code"], "forbidden");
    // Waiting: readable by agents, writable by none until claimed.
    assert_eq!(app.history(&alice, &id, "").await.status(), 200);
    let refused = json_of(app.send(&alice, &id, json!({"content": "hi"})).await, 403).await;
    assert_eq!(refused["code"], "forbidden");

    json_of(
        post(&app, &alice, &format!("/agent/conversations/{id}/claim")).await,
        200,
    )
    .await;
    let refused = json_of(app.delete(&alice, &id).await, 403).await;
    assert_eq!(refused["code"], "forbidden");
    let refused = json_of(app.patch(&alice, &id, json!({"title": "mine"})).await, 403).await;
    assert_eq!(refused["code"], "forbidden");
    let listed = json_of(app.list(&alice, "").await, 200).await;
    assert_eq!(
        listed["total"], 0,
        "an agent's own list holds only their own"
    );

    // Closing by archiving gives the conversation back to the bot first.
    let archived = json_of(
        app.patch(&alice, &id, json!({"status": "archived"})).await,
        200,
    )
    .await;
    assert_eq!(archived["status"], "archived");
    assert_eq!(archived["handoff"], "bot");
    let messages = app.all_messages(&ana, &id).await;
    assert_eq!(contents(&messages).last(), Some(&"Back to the bot"));
    assert_eq!(
        app.get(&alice, &format!("/conversations/{id}"))
            .await
            .status(),
        404
    );

    // An admin may move any conversation to the queue and out of an agent's hands.
    json_of(
        post(&app, &admin(), &format!("/conversations/{quiet}/handoff")).await,
        200,
    )
    .await;
    json_of(
        post(&app, &alice, &format!("/agent/conversations/{quiet}/claim")).await,
        200,
    )
    .await;
    let requeued = json_of(
        post(&app, &admin(), &format!("/conversations/{quiet}/handoff")).await,
        200,
    )
    .await;
    assert_eq!(requeued["handoff"], "waiting");
    let released = json_of(
        post(
            &app,
            &admin(),
            &format!("/agent/conversations/{quiet}/release"),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(released["handoff"], "bot");
    app.stop().await;
}

async fn the_handoff_frame_asks_and_every_socket_hears_each_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let ana = user("ana");
    let alice = agent("alice");
    let id = answered_conversation(&app, &ana).await;
    let mut socket = app.follower(&ana, &id).await;

    socket
        .send_json(json!({"type": "handoff", "conversation_id": id}))
        .await;
    let changed = socket.next_of("handoff").await;
    assert_eq!(changed["handoff"], "waiting");
    assert_eq!(changed["conversation_id"], id.as_str());

    post(&app, &alice, &format!("/agent/conversations/{id}/claim")).await;
    let changed = socket.next_of("handoff").await;
    assert_eq!(
        (changed["handoff"].as_str(), changed["agent_id"].as_str()),
        (Some("agent"), Some("alice"))
    );

    let mut alices_socket = app.follower(&alice, &id).await;
    alices_socket
        .send_json(json!({"type": "typing", "conversation_id": id}))
        .await;
    let typing = socket.next_of("typing").await;
    assert_eq!(typing["sender"], "agent");
    alices_socket
        .send_json(json!({"type": "message", "conversation_id": id, "content": "Alice here"}))
        .await;
    let said = socket.next_of("message").await;
    assert_eq!(
        (said["sender"].as_str(), said["content"].as_str()),
        (Some("agent"), Some("Alice here"))
    );

    // An agent asking for another person is refused with an error frame.
    alices_socket
        .send_json(json!({"type": "handoff", "conversation_id": id, "ref": "r1"}))
        .await;
    let refused = alices_socket.next_of("error").await;
    assert_eq!(
        (refused["code"].as_str(), refused["ref"].as_str()),
        (Some("forbidden"), Some("r1"))
    );

    post(&app, &alice, &format!("/agent/conversations/{id}/release")).await;
    let changed = socket.next_of("handoff").await;
    assert_eq!(changed["handoff"], "bot");
    assert!(changed.get("agent_id").is_none());
    app.stop().await;
}

async fn a_handoff_survives_kill_9_and_the_bot_answers_nothing_sent_meanwhile(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let ana = user("ana");
    let alice = agent("alice");
    let first = Binary::start(&database.url);
    let client = first.client();
    let started = client.start(&ana, "echo", "hello bot").await;
    let id = started["conversation_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    client.answered_messages(&ana, &id).await;
    let asked = client
        .post(&ana, &format!("/conversations/{id}/handoff"), json!({}))
        .await;
    assert_eq!(asked.status(), 200);
    let claimed = client
        .post(
            &alice,
            &format!("/agent/conversations/{id}/claim"),
            json!({}),
        )
        .await;
    assert_eq!(claimed.status(), 200);
    for text in ["one", "two", "three"] {
        let sent = client
            .post(
                &ana,
                &format!("/conversations/{id}/messages"),
                json!({"content": text}),
            )
            .await;
        assert_eq!(sent.status(), 201);
    }
    first.kill();

    let second = Binary::start(&database.url);
    let client = second.client();
    let held = client.get(&ana, &format!("/conversations/{id}")).await;
    let held: Value = held.json().await.expect("a conversation");
    assert_eq!(held["handoff"], "agent");
    assert_eq!(held["handoff_agent"], "alice");
    let sent = client
        .post(
            &alice,
            &format!("/conversations/{id}/messages"),
            json!({"content": "still here"}),
        )
        .await;
    assert_eq!(
        sent.status(),
        201,
        "the agent still holds it after the restart"
    );
    let released = client
        .post(
            &alice,
            &format!("/agent/conversations/{id}/release"),
            json!({}),
        )
        .await;
    assert_eq!(released.status(), 200);
    // Replies come in seq order: had the bot owed anything for "one" to "three", it
    // would answer them before "back".
    let back = client
        .post(
            &ana,
            &format!("/conversations/{id}/messages?wait=true"),
            json!({"content": "back"}),
        )
        .await;
    let back: Value = back.json().await.expect("a sent message");
    assert_eq!(back["replies"][0]["content"], "back");
    let messages = client.messages(&ana, &id).await;
    let answered: Vec<&str> = messages
        .iter()
        .filter(|m| m["sender"] == "bot")
        .map(|m| m["content"].as_str().expect("content"))
        .collect();
    assert_eq!(answered, ["hello bot", "back"], "{messages:#?}");
    drop(second);
}

async fn server_sent_events_carry_each_handoff_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let ana = user("ana");
    let id = answered_conversation(&app, &ana).await;
    let mut events = SseReader::open(app.address, &ana, &id, None).await;
    json_of(
        post(&app, &ana, &format!("/conversations/{id}/handoff")).await,
        200,
    )
    .await;
    let (seq, notice) = events.next_message().await;
    assert_eq!((seq, notice["sender"].as_str()), (3, Some("system")));
    let (_, changed) = events.next_event("handoff").await;
    assert_eq!(changed["handoff"], "waiting");
    json_of(
        post(
            &app,
            &agent("alice"),
            &format!("/agent/conversations/{id}/claim"),
        )
        .await,
        200,
    )
    .await;
    let (_, changed) = events.next_event("handoff").await;
    assert_eq!(changed["agent_id"], "alice");
    app.stop().await;
}
