//! The REST API end to end: the README's walk-through of the seed's flow, over real
//! HTTP, on every backend.

use serde_json::{Value, json};

use crate::helpers::{Backend, spawn_app};
use crate::on_every_backend;

on_every_backend!(
    the_seed_flow_runs_as_the_readme_tells_it,
    a_server_restarted_on_the_same_database_keeps_everything,
);

async fn the_seed_flow_runs_as_the_readme_tells_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;

    let response = app
        .http
        .post(app.url("/conversations/start?wait=true"))
        .bearer_auth(&token)
        .json(&json!({ "bot_id": "echo", "initial_message": "Hello" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let started: Value = response.json().await.unwrap();
    assert_eq!(started["status"], "active");
    assert_eq!(started["bot_id"], "echo");
    let id = started["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(started["replies"][0]["content"], "Hello");

    let response = app
        .http
        .post(app.url(&format!("/conversations/{id}/messages?wait=true")))
        .bearer_auth(&token)
        .json(&json!({ "content": "How are you?" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let sent: Value = response.json().await.unwrap();
    assert_eq!(sent["status"], "delivered");
    assert_eq!(sent["seq"], 3);
    assert_eq!(sent["replies"][0]["sender"], "bot");
    assert_eq!(sent["replies"][0]["content"], "How are you?");

    let history: Value = app
        .history(&token, &id, "?limit=50")
        .await
        .json()
        .await
        .unwrap();
    let messages = history["messages"].as_array().unwrap();
    let seen: Vec<(u64, &str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["sender"].as_str().unwrap(),
                m["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "user", "Hello"),
            (2, "bot", "Hello"),
            (3, "user", "How are you?"),
            (4, "bot", "How are you?"),
        ]
    );
    assert_eq!(history["has_more"], false);

    let listed: Value = app
        .list(&token, "?bot_id=echo&status=active")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["conversations"][0]["id"], id.as_str());
    assert_eq!(listed["conversations"][0]["message_count"], 4);
    assert_eq!(listed["conversations"][0]["bot_name"], "Echo");

    let archived = app
        .patch(&token, &id, json!({ "status": "archived" }))
        .await;
    assert_eq!(archived.status(), 200);
    let refused = app
        .send(&token, &id, json!({ "content": "still there?" }))
        .await;
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "conversation_archived");
    let listed: Value = app
        .list(&token, "?status=archived")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1);

    let unarchived = app.patch(&token, &id, json!({ "status": "active" })).await;
    assert_eq!(unarchived.status(), 200);
    assert_eq!(
        app.send(&token, &id, json!({ "content": "back" }))
            .await
            .status(),
        201
    );

    assert_eq!(app.delete(&token, &id).await.status(), 204);
    assert_eq!(app.history(&token, &id, "").await.status(), 404);
    app.stop().await;
}

async fn a_server_restarted_on_the_same_database_keeps_everything(backend: Backend) {
    // The same database under a second server: the signing secret (kept in the
    // database) and the conversations survive.
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;
    let started = app.started(&token, "echo").await;
    let id = started["conversation_id"].as_str().unwrap().to_owned();
    let sent = app
        .http
        .post(app.url(&format!("/conversations/{id}/messages?wait=true")))
        .bearer_auth(&token)
        .json(&json!({ "content": "kept" }))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    let before = app.all_messages(&token, &id).await;
    let again = app.restart().await;
    let after = again.all_messages(&token, &id).await;
    assert_eq!(before.len(), 2, "the message and its reply");
    assert_eq!(before, after);
    again.stop().await;
}
