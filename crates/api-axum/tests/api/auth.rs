//! Identity: bearer tokens (missing, expired, forged, malformed) and guest tokens.

use axum::body::Body;
use axum::http::{Method, Request, header};
use confab_api_axum::ApiConfig;
use confab_domain::user::Role;
use serde_json::json;

use crate::helpers::{SECRET, signed, spawn_app, spawn_app_with, unix_now};

#[tokio::test]
async fn a_request_without_a_token_is_unauthorized_with_a_bearer_challenge() {
    let app = spawn_app().await;
    for (method, uri) in [
        (Method::GET, "/conversations"),
        (Method::POST, "/conversations/start"),
        (Method::GET, "/bots"),
        (Method::GET, "/api/bots/echo"),
    ] {
        let response = app
            .call(
                method,
                uri,
                None,
                Some(json!({"bot_id": "echo"}).to_string()),
            )
            .await;
        response.assert_problem(401, "unauthorized");
        assert_eq!(response.headers[header::WWW_AUTHENTICATE], "Bearer");
    }
    assert_eq!(app.ports.store.message_count(), 0);
}

#[tokio::test]
async fn expired_forged_unsigned_and_malformed_tokens_are_unauthorized() {
    let app = spawn_app().await;
    let owner = app.token_for("alice");
    let id = app.started(&owner).await;
    let now = unix_now();
    let expired = signed(SECRET, &json!({"sub": "alice", "exp": now - 60}));
    let forged = signed(
        b"another secret",
        &json!({"sub": "alice", "exp": now + 600}),
    );
    // {"alg":"none","typ":"JWT"} . {"sub":"alice","exp":4102444800} .
    let unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.\
                    eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.";
    let no_exp = signed(SECRET, &json!({"sub": "alice"}));
    let bad_sub = signed(SECRET, &json!({"sub": "has space", "exp": now + 600}));
    let bad_role = signed(
        SECRET,
        &json!({"sub": "alice", "exp": now + 600, "role": "root"}),
    );
    for token in [
        expired.as_str(),
        forged.as_str(),
        unsigned,
        no_exp.as_str(),
        bad_sub.as_str(),
        bad_role.as_str(),
        "garbage",
    ] {
        let response = app.history(token, &id, "").await;
        response.assert_problem(401, "unauthorized");
        let challenge = response.headers[header::WWW_AUTHENTICATE]
            .to_str()
            .expect("ascii");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        app.send(token, &id, "", json!({"content": "sneaky"}))
            .await
            .assert_problem(401, "unauthorized");
    }
    assert_eq!(app.ports.store.message_count(), 0);
}

#[tokio::test]
async fn a_token_with_another_scheme_is_unauthorized() {
    let app = spawn_app().await;
    let token = app.token_for("alice");
    let request = Request::get("/conversations")
        .header(header::AUTHORIZATION, format!("Basic {token}"))
        .body(Body::empty())
        .expect("request");
    app.send_request(request)
        .await
        .assert_problem(401, "unauthorized");
}

#[tokio::test]
async fn a_guest_token_identifies_a_fresh_guest_user() {
    let app = spawn_app().await;
    let response = app.post_guest().await;
    let body = response.assert_status(201);
    let user_id = response.str("user_id");
    assert!(user_id.starts_with("guest-"), "{user_id}");
    uuid::Uuid::parse_str(&user_id["guest-".len()..]).expect("a uuid after the prefix");
    assert!(
        body["expires_at"]
            .as_str()
            .expect("expires_at")
            .ends_with('Z')
    );
    let caller = app
        .auth
        .verify(&response.str("token"))
        .expect("valid token");
    assert_eq!(caller.user_id.as_str(), user_id);
    assert_eq!(caller.role, Role::User);
    assert_ne!(app.post_guest().await.str("user_id"), user_id);
}

#[tokio::test]
async fn a_guest_token_may_be_asked_for_without_a_body_but_not_with_a_malformed_one() {
    let app = spawn_app().await;
    app.call(Method::POST, "/auth/guest", None, None)
        .await
        .assert_status(201);
    app.call(Method::POST, "/auth/guest", None, Some("{oops".into()))
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn guest_tokens_are_forbidden_when_guests_are_disabled() {
    let app = spawn_app_with(ApiConfig {
        guests_enabled: false,
        ..ApiConfig::default()
    })
    .await;
    app.post_guest().await.assert_problem(403, "forbidden");
}
