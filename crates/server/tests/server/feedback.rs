//! Feedback on bot replies over real HTTP and WebSocket, on both backends: the user
//! rates a reply, changes the rating and takes it back, every follower hears each
//! change, history and exports carry it; everything else is refused and changes
//! nothing.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, admin, spawn_app, user};
use crate::on_every_backend;

on_every_backend!(
    a_user_rates_a_reply_changes_it_and_takes_it_back_and_followers_hear_it,
    feedback_is_refused_for_anything_but_the_users_own_bot_replies,
);

/// A conversation of `token` with the echo bot, and its first user message and reply.
async fn answered(app: &TestApp, token: &str) -> (String, String, String) {
    let started = app
        .http
        .post(app.url("/conversations/start?wait=true"))
        .bearer_auth(token)
        .json(&json!({"bot_id": "echo", "initial_message": "hello"}))
        .send()
        .await
        .expect("a start");
    assert_eq!(started.status(), 201);
    let started: Value = started.json().await.expect("a start body");
    (
        started["conversation_id"]
            .as_str()
            .expect("an id")
            .to_owned(),
        started["initial_message_id"]
            .as_str()
            .expect("an id")
            .to_owned(),
        started["replies"][0]["id"]
            .as_str()
            .expect("a reply")
            .to_owned(),
    )
}

async fn feedback(
    app: &TestApp,
    token: &str,
    conversation: &str,
    message: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let url = app.url(&format!(
        "/conversations/{conversation}/messages/{message}/feedback"
    ));
    let request = match body {
        Some(body) => app.http.put(url).json(&body),
        None => app.http.delete(url),
    };
    request
        .bearer_auth(token)
        .send()
        .await
        .expect("a feedback request")
}

async fn a_user_rates_a_reply_changes_it_and_takes_it_back_and_followers_hear_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let ana = user("ana");
    let (id, _, reply) = answered(&app, &ana).await;
    let mut follower = app.follower(&ana, &id).await;

    let rated = feedback(&app, &ana, &id, &reply, Some(json!({"rating": "up"}))).await;
    assert_eq!(rated.status(), 200);
    let rated: Value = rated.json().await.expect("the message");
    assert_eq!(rated["id"], reply.as_str());
    assert_eq!(rated["feedback"]["rating"], "up");
    assert!(rated["feedback"]["comment"].is_null());
    let heard = follower.next_of("feedback").await;
    assert_eq!(
        (
            heard["message_id"].as_str(),
            heard["feedback"]["rating"].as_str()
        ),
        (Some(reply.as_str()), Some("up"))
    );

    let changed = feedback(
        &app,
        &ana,
        &id,
        &reply,
        Some(json!({"rating": "down", "comment": "  Not what I asked  "})),
    )
    .await;
    assert_eq!(changed.status(), 200);
    let heard = follower.next_of("feedback").await;
    assert_eq!(heard["feedback"]["comment"], "Not what I asked");
    let messages = app.all_messages(&ana, &id).await;
    assert_eq!(messages[1]["feedback"]["rating"], "down");
    assert!(messages[0]["feedback"].is_null());
    let export = app
        .get(&ana, &format!("/conversations/{id}/export?format=csv"))
        .await
        .text()
        .await
        .expect("an export");
    assert!(export.contains(",down,Not what I asked\r\n"), "{export}");

    assert_eq!(feedback(&app, &ana, &id, &reply, None).await.status(), 204);
    let heard = follower.next_of("feedback").await;
    assert!(heard["feedback"].is_null());
    assert!(app.all_messages(&ana, &id).await[1]["feedback"].is_null());
    // Taking back what is not there is no error.
    assert_eq!(feedback(&app, &ana, &id, &reply, None).await.status(), 204);
    app.stop().await;
}

async fn feedback_is_refused_for_anything_but_the_users_own_bot_replies(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ana, bo) = (user("ana"), user("bo"));
    let (id, question, reply) = answered(&app, &ana).await;
    let up = || Some(json!({"rating": "up"}));
    let cases = [
        (&ana, question.clone(), up(), 409, "not_a_bot_reply"),
        (
            &ana,
            reply.clone(),
            Some(json!({"rating": "meh"})),
            400,
            "invalid_request",
        ),
        (&ana, reply.clone(), Some(json!({})), 400, "invalid_request"),
        (
            &ana,
            reply.clone(),
            Some(json!({"rating": "up", "comment": "x".repeat(1001)})),
            400,
            "invalid_request",
        ),
        (
            &ana,
            uuid::Uuid::now_v7().to_string(),
            up(),
            404,
            "not_found",
        ),
        (&ana, "nope".to_owned(), up(), 400, "invalid_request"),
        (&bo, reply.clone(), up(), 404, "not_found"),
        (&admin(), reply.clone(), up(), 403, "forbidden"),
    ];
    for (token, message, body, status, code) in cases {
        let response = feedback(&app, token, &id, &message, body.clone()).await;
        assert_eq!(response.status(), status, "{message} {body:?}");
        let problem: Value = response.json().await.expect("a problem");
        assert_eq!(problem["code"], code, "{message} {body:?}");
    }
    let messages = app.all_messages(&ana, &id).await;
    assert!(
        messages.iter().all(|m| m["feedback"].is_null()),
        "{messages:#?}"
    );
    app.stop().await;
}
