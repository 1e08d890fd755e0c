//! `[[bots]]` tables of `confab.toml`, read by the real binary: created at the first
//! start, updated at the next.

use serde_json::{Value, json};

use crate::helpers::user;
use crate::helpers::{Binary, Client};

fn write_config(path: &std::path::Path, greeting: &str) {
    std::fs::write(
        path,
        format!(
            r#"
[[bots]]
id = "hello"
name = "Hello"
description = "Greets you."
kind = "script"
settings = {{ rules = "greeting = \"{greeting}\"\nfallback = \"Pardon?\"\n", timeout_ms = 5000 }}
"#
        ),
    )
    .expect("writing confab.toml");
}

async fn first_reply(client: &Client) -> Value {
    let response = client
        .post(
            &user("alice"),
            "/conversations/start?wait=true",
            json!({"bot_id": "hello", "initial_message": "hi"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("a start body");
    body["replies"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_declared_in_the_file_is_created_then_updated_at_the_next_start() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("confab.db").display()
    );
    let config = dir.path().join("confab.toml");
    let config_path = config.to_str().expect("a UTF-8 path");

    write_config(&config, "Hello from the file");
    let first = Binary::start_with(&database_url, &[("CONFAB_CONFIG", config_path)]);
    let client = Client::of(first.address);
    let bot: Value = client
        .get(&user("alice"), "/bots/hello")
        .await
        .json()
        .await
        .expect("the bot");
    assert_eq!(
        bot,
        json!({"id": "hello", "name": "Hello", "description": "Greets you.", "kind": "script"})
    );
    assert_eq!(first_reply(&client).await["content"], "Hello from the file");
    first.kill();

    write_config(&config, "Hello again");
    let second = Binary::start_with(&database_url, &[("CONFAB_CONFIG", config_path)]);
    let client = Client::of(second.address);
    assert_eq!(first_reply(&client).await["content"], "Hello again");
    drop(second);
}
