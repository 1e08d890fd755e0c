//! The bot registry over HTTP: administrators create, change and delete bots;
//! everyone else gets 403.

use confab_domain::user::Role;
use serde_json::{Value, json};

use crate::helpers::Client;
use crate::helpers::{Backend, TestApp, admin, spawn_app, token, user};

#[tokio::test]
async fn only_administrators_may_create_change_or_delete_bots() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = Client::of(app.address);
    let bot = token(
        "hook",
        Role::Bot(confab_domain::bot::BotId::parse("echo").expect("an id")),
    );
    for caller in [user("alice"), bot] {
        let created = client
            .post(
                &caller,
                "/bots",
                json!({"id": "x", "name": "X", "kind": "echo"}),
            )
            .await;
        assert_eq!(created.status(), 403);
        let problem: Value = created.json().await.expect("a problem");
        assert_eq!(problem["code"], "forbidden");
        assert_eq!(
            client
                .patch(&caller, "/bots/echo", json!({"name": "Y"}))
                .await
                .status(),
            403
        );
        assert_eq!(client.delete(&caller, "/bots/echo").await.status(), 403);
    }
    app.stop().await;
}

#[tokio::test]
async fn an_administrator_creates_changes_and_lists_a_bot() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = Client::of(app.address);
    let rules = "greeting = \"Hi!\"\nfallback = \"Pardon?\"\n";
    let created = client
        .post(
            &admin(),
            "/bots",
            json!({"id": "greeter", "name": "Greeter", "description": "Says hi.",
                   "kind": "script", "settings": {"rules": rules}}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.expect("a bot");
    assert_eq!(
        body,
        json!({"id": "greeter", "name": "Greeter", "description": "Says hi.", "kind": "script"})
    );

    let again = client
        .post(
            &admin(),
            "/bots",
            json!({"id": "greeter", "name": "G", "kind": "echo"}),
        )
        .await;
    assert_eq!(again.status(), 409);

    let conversation = client.start(&user("alice"), "greeter", "hello").await;
    let id = conversation["conversation_id"].as_str().expect("an id");
    let changed = client
        .patch(
            &admin(),
            "/bots/greeter",
            json!({"name": "Greeter 2", "kind": "echo"}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let body: Value = changed.json().await.expect("a bot");
    assert_eq!(body["kind"], "echo");
    assert_eq!(body["name"], "Greeter 2");

    let listed: Value = client
        .get(&user("alice"), "/bots")
        .await
        .json()
        .await
        .expect("a list");
    let ids: Vec<&str> = listed["bots"]
        .as_array()
        .expect("bots")
        .iter()
        .filter_map(|b| b["id"].as_str())
        .collect();
    assert!(ids.contains(&"greeter") && ids.contains(&"demo"), "{ids:?}");
    assert!(!id.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn settings_that_cannot_build_an_engine_are_a_400() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = Client::of(app.address);
    for (body, hint) in [
        (
            json!({"id": "bad", "name": "Bad", "kind": "gpt"}),
            "unknown bot kind",
        ),
        (
            json!({"id": "bad", "name": "Bad", "kind": "script", "settings": {"rules": "fallback = 1"}}),
            "line 1",
        ),
        (
            json!({"id": "bad", "name": "Bad", "kind": "openai",
                   "settings": {"base_url": "http://127.0.0.1:9/v1", "model": "m",
                                "api_key_env": "CONFAB_TEST_SURELY_UNSET"}}),
            "CONFAB_TEST_SURELY_UNSET",
        ),
        (
            json!({"id": "Bad Id", "name": "Bad", "kind": "echo"}),
            "bot id",
        ),
    ] {
        let response = client.post(&admin(), "/bots", body).await;
        assert_eq!(response.status(), 400);
        let problem: Value = response.json().await.expect("a problem");
        assert_eq!(problem["code"], "invalid_request");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(hint), "{hint:?} not in {detail:?}");
    }
    assert_eq!(client.get(&admin(), "/bots/bad").await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_bot_archives_its_conversations_and_keeps_their_history_on_sqlite() {
    deleting_a_bot_archives_its_conversations(spawn_app(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn deleting_a_bot_archives_its_conversations_and_keeps_their_history_on_postgresql() {
    if !crate::helpers::postgres_configured() {
        return;
    }
    deleting_a_bot_archives_its_conversations(spawn_app(Backend::Postgres).await).await;
}

async fn deleting_a_bot_archives_its_conversations(app: TestApp) {
    let client = Client::of(app.address);
    let created = client
        .post(
            &admin(),
            "/bots",
            json!({"id": "temp", "name": "Temp", "kind": "echo"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let alice = user("alice");
    let started = client.start(&alice, "temp", "hello").await;
    let id = started["conversation_id"].as_str().expect("an id");

    assert_eq!(client.delete(&admin(), "/bots/temp").await.status(), 204);
    assert_eq!(client.get(&alice, "/bots/temp").await.status(), 404);
    assert_eq!(client.delete(&admin(), "/bots/temp").await.status(), 404);
    let conversation: Value = client
        .get(&alice, &format!("/conversations/{id}"))
        .await
        .json()
        .await
        .expect("the conversation");
    assert_eq!(conversation["status"], "archived");
    let messages = client.messages(&alice, id).await;
    assert_eq!(messages[0]["content"], "hello");
    let refused = client
        .post(
            &alice,
            &format!("/conversations/{id}/messages"),
            json!({"content": "still there?"}),
        )
        .await;
    assert_eq!(refused.status(), 409);
    app.stop().await;
}
