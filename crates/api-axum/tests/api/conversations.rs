//! Conversations from start to delete: the seed flow, starting, listing, and one
//! conversation's get, patch and delete.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{conversation_with_exchanges, spawn_app};

#[tokio::test]
async fn a_guest_starts_talks_lists_archives_and_unarchives_a_conversation() {
    let app = spawn_app().await;
    let token = app.guest_token().await;

    // Start with an initial message and wait for the bot's reply.
    let started = app
        .start(
            &token,
            "?wait=true",
            json!({"bot_id": "echo", "initial_message": "Hello", "title": "Greetings"}),
        )
        .await;
    let body = started.assert_status(201);
    assert_eq!(body["status"], "active");
    assert_eq!(body["bot_id"], "echo");
    assert!(body["session_id"].is_string());
    assert!(
        body["created_at"]
            .as_str()
            .expect("created_at")
            .ends_with('Z')
    );
    let id = started.str("conversation_id");
    let initial = started.str("initial_message_id");
    assert_eq!(body["replies"][0]["content"], "Hello");
    assert_eq!(body["replies"][0]["sender"], "bot");
    assert_eq!(body["replies"][0]["reply_to"], initial.as_str());

    // Send, waiting for the reply.
    let sent = app.say(&token, &id, "How are you?").await;
    assert_eq!(sent.body["status"], "delivered");
    assert_eq!(sent.body["seq"], 3);
    assert_eq!(sent.body["conversation_id"], id.as_str());
    assert_eq!(sent.body["replies"][0]["content"], "How are you?");
    assert_eq!(sent.body["replies"][0]["seq"], 4);

    // History: user and bot messages, oldest first, in seq order.
    let history = app.history(&token, &id, "").await;
    let body = history.assert_status(200);
    assert_eq!(body["conversation_id"], id.as_str());
    assert_eq!(body["has_more"], false);
    let messages = body["messages"].as_array().expect("messages");
    let seen: Vec<(u64, &str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().expect("seq"),
                m["sender"].as_str().expect("sender"),
                m["content"].as_str().expect("content"),
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
    let first = &messages[0];
    assert_eq!(first["id"], initial.as_str());
    assert_eq!(first["attachments"], json!([]));
    assert_eq!(first["suggestions"], json!([]));
    assert_eq!(first["metadata"], json!({}));
    assert!(
        first["sender_id"]
            .as_str()
            .expect("sender_id")
            .starts_with("guest-")
    );
    let timestamp = first["timestamp"].as_str().expect("timestamp");
    assert_eq!(
        timestamp.len(),
        "2026-01-01T00:00:00.000Z".len(),
        "{timestamp}"
    );

    // A second conversation with another bot, to filter the list.
    let other = app
        .start(&token, "", json!({"bot_id": "support"}))
        .await
        .str("conversation_id");
    let all = app.list(&token, "").await;
    assert_eq!(all.assert_status(200)["total"], 2);
    let echo_only = app.list(&token, "?bot_id=echo").await;
    let body = echo_only.assert_status(200);
    assert_eq!(body["total"], 1);
    assert_eq!(body["has_more"], false);
    assert_eq!(body["next_cursor"], Value::Null);
    let item = &body["conversations"][0];
    assert_eq!(item["id"], id.as_str());
    assert_eq!(item["bot_id"], "echo");
    assert_eq!(item["bot_name"], "echo");
    assert_eq!(item["status"], "active");
    assert_eq!(item["title"], "Greetings");
    assert_eq!(item["last_message"], "How are you?");
    assert_eq!(item["message_count"], 4);
    assert!(item["session_id"].is_string());
    assert!(item["last_activity"].is_string());
    assert!(item["created_at"].is_string());

    // Archive: the list filters by status, and sending is refused.
    let archived = app.patch(&token, &id, json!({"status": "archived"})).await;
    assert_eq!(archived.assert_status(200)["status"], "archived");
    let listed = app.list(&token, "?status=archived").await;
    let body = listed.assert_status(200);
    assert_eq!(body["total"], 1);
    assert_eq!(body["conversations"][0]["id"], id.as_str());
    let active = app.list(&token, "?status=active").await;
    assert_eq!(
        active.assert_status(200)["conversations"][0]["id"],
        other.as_str()
    );
    let refused = app
        .send(&token, &id, "", json!({"content": "still there?"}))
        .await;
    refused.assert_problem(409, "conversation_archived");
    assert_eq!(app.contents(&token, &id).await.len(), 4);

    // Unarchive: sending works again.
    let unarchived = app.patch(&token, &id, json!({"status": "active"})).await;
    assert_eq!(unarchived.assert_status(200)["status"], "active");
    let sent = app.say(&token, &id, "back again").await;
    assert_eq!(sent.body["seq"], 5);
    assert_eq!(app.contents(&token, &id).await.len(), 6);
}

#[tokio::test]
async fn every_route_is_also_served_under_the_api_prefix() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let started = app
        .call(
            Method::POST,
            "/api/conversations/start",
            Some(&token),
            Some(json!({"bot_id": "echo"}).to_string()),
        )
        .await;
    let id = started.str("conversation_id");
    let fetched = app
        .call(
            Method::GET,
            &format!("/api/conversations/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(fetched.assert_status(200)["id"], id.as_str());
    let health = app.call(Method::GET, "/api/healthz", None, None).await;
    assert_eq!(health.assert_status(200)["status"], "ok");
    let guest = app.call(Method::POST, "/api/auth/guest", None, None).await;
    guest.assert_status(201);
    let missing = app
        .call(Method::GET, "/api/nothing-here", Some(&token), None)
        .await;
    missing.assert_problem(404, "not_found");
}

#[tokio::test]
async fn starting_without_an_initial_message_stores_nothing_and_has_no_initial_message_id() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let started = app.start(&token, "", json!({"bot_id": "echo"})).await;
    let body = started.assert_status(201);
    assert_eq!(body["initial_message_id"], Value::Null);
    assert!(body.get("replies").is_none());
    assert_eq!(app.ports.store.message_count(), 0);
}

#[tokio::test]
async fn starting_with_an_unknown_bot_is_not_found_and_creates_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let response = app
        .start(
            &token,
            "",
            json!({"bot_id": "nobody", "initial_message": "hi"}),
        )
        .await;
    response.assert_problem(404, "not_found");
    assert_eq!(app.list(&token, "").await.body["total"], 0);
}

#[tokio::test]
async fn starting_with_a_malformed_bot_id_or_title_or_metadata_is_an_invalid_request() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    for body in [
        json!({"bot_id": "Not A Slug"}),
        json!({"bot_id": "echo", "title": "   "}),
        json!({"bot_id": "echo", "metadata": [1, 2]}),
        json!({"bot_id": "echo", "initial_message": "   "}),
        json!({"bot_id": 7}),
        json!({}),
    ] {
        app.start(&token, "", body)
            .await
            .assert_problem(400, "invalid_request");
    }
    assert_eq!(app.list(&token, "").await.body["total"], 0);
}

#[tokio::test]
async fn start_keeps_title_and_metadata() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app
        .start(
            &token,
            "",
            json!({"bot_id": "echo", "title": "Trip", "metadata": {"source": "web"}}),
        )
        .await
        .str("conversation_id");
    let body = app.get_conversation(&token, &id).await;
    let body = body.assert_status(200);
    assert_eq!(body["title"], "Trip");
    assert_eq!(body["metadata"], json!({"source": "web"}));
    assert_eq!(body["message_count"], 0);
    assert_eq!(body["last_message"], Value::Null);
}

#[tokio::test]
async fn the_list_pages_with_cursors_and_offsets_newest_activity_first() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(app.started(&token).await);
    }
    // The oldest conversation becomes the most recently active.
    app.say(&token, &ids[0], "bump").await;

    let first = app.list(&token, "?limit=2").await;
    let body = first.assert_status(200);
    assert_eq!(body["total"], 3);
    assert_eq!(body["has_more"], true);
    assert_eq!(body["conversations"][0]["id"], ids[0].as_str());
    assert_eq!(body["conversations"][1]["id"], ids[2].as_str());
    let cursor = first.str("next_cursor");

    let second = app.list(&token, &format!("?limit=2&cursor={cursor}")).await;
    let body = second.assert_status(200);
    assert_eq!(body["conversations"][0]["id"], ids[1].as_str());
    assert_eq!(body["has_more"], false);
    assert_eq!(body["next_cursor"], Value::Null);

    let offset = app.list(&token, "?limit=2&offset=2").await;
    assert_eq!(
        offset.assert_status(200)["conversations"][0]["id"],
        ids[1].as_str()
    );
}

#[tokio::test]
async fn a_user_lists_only_their_own_conversations() {
    let app = spawn_app().await;
    let alice = app.token_for("alice");
    let bob = app.token_for("bob");
    app.started(&alice).await;
    let body = app.list(&bob, "").await;
    assert_eq!(body.assert_status(200)["total"], 0);
    assert_eq!(body.body["conversations"], json!([]));
}

#[tokio::test]
async fn a_conversation_can_be_renamed_and_retagged() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let patched = app
        .patch(
            &token,
            &id,
            json!({"title": "Renamed", "metadata": {"k": 1}}),
        )
        .await;
    let body = patched.assert_status(200);
    assert_eq!(body["title"], "Renamed");
    assert_eq!(body["metadata"], json!({"k": 1}));
    assert_eq!(body["status"], "active");
    assert_eq!(
        app.get_conversation(&token, &id).await.body["title"],
        "Renamed"
    );
}

#[tokio::test]
async fn a_patch_that_changes_nothing_or_names_an_unknown_status_is_refused() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    for body in [json!({}), json!({"status": "deleted"}), json!({"title": 5})] {
        app.patch(&token, &id, body)
            .await
            .assert_problem(400, "invalid_request");
    }
    assert_eq!(
        app.get_conversation(&token, &id).await.body["status"],
        "active"
    );
}

#[tokio::test]
async fn a_deleted_conversation_is_gone_with_its_messages() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = conversation_with_exchanges(&app, &token, 1).await;
    let deleted = app.delete(&token, &id).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);
    app.get_conversation(&token, &id)
        .await
        .assert_problem(404, "not_found");
    app.history(&token, &id, "")
        .await
        .assert_problem(404, "not_found");
    app.delete(&token, &id)
        .await
        .assert_problem(404, "not_found");
    assert_eq!(app.ports.store.message_count(), 0);
}

#[tokio::test]
async fn someone_elses_conversation_is_not_found_and_stays_untouched() {
    let app = spawn_app().await;
    let alice = app.token_for("alice");
    let bob = app.token_for("bob");
    let id = conversation_with_exchanges(&app, &alice, 1).await;

    app.get_conversation(&bob, &id)
        .await
        .assert_problem(404, "not_found");
    app.history(&bob, &id, "")
        .await
        .assert_problem(404, "not_found");
    app.send(&bob, &id, "", json!({"content": "intrusion"}))
        .await
        .assert_problem(404, "not_found");
    app.patch(&bob, &id, json!({"status": "archived"}))
        .await
        .assert_problem(404, "not_found");
    app.delete(&bob, &id).await.assert_problem(404, "not_found");

    assert_eq!(app.contents(&alice, &id).await, ["m1", "m1"]);
    assert_eq!(
        app.get_conversation(&alice, &id).await.body["status"],
        "active"
    );
}
