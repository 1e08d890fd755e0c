//! The REST API as a client sees it: [`router`] driven request by request with
//! `tower::ServiceExt::oneshot`, over the domain's in-memory fakes.
//!
//! [`TestApp`] holds the router and handles on the fakes; it has one helper per
//! endpoint, so that each test reads like a line of the contract.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use confab_api_axum::{ApiConfig, AppState, Auth, router};
use confab_domain::error::RepoError;
use confab_domain::ports::MockBotRepository;
use confab_domain::reply::ReplySettings;
use confab_domain::service::ConversationService;
use confab_domain::testing::{ScriptedEngine, TestPorts};
use confab_domain::user::{Role, UserId};
use serde_json::{Value, json};
use tower::ServiceExt as _;

const SECRET: &[u8] = b"test-secret";

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// The API over fakes, with the bots `echo` and `support` registered; both answer
/// with the user's own text.
struct TestApp {
    router: Router,
    ports: TestPorts,
    auth: Arc<Auth>,
}

/// What a request got back.
#[derive(Debug)]
struct TestResponse {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl TestResponse {
    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts that this is a problem details response with `status` and `code`.
    #[track_caller]
    fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(self.content_type(), "application/problem+json");
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["type"], format!("urn:confab:problem:{code}"));
        assert!(self.body["title"].is_string());
        assert!(self.body["detail"].is_string());
    }

    #[track_caller]
    fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        &self.body
    }

    fn str(&self, key: &str) -> String {
        self.body[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key} in {}", self.body))
            .to_owned()
    }
}

async fn spawn_app() -> TestApp {
    spawn_app_with(ApiConfig::default()).await
}

async fn spawn_app_with(config: ApiConfig) -> TestApp {
    let ports = TestPorts::with_engine(ScriptedEngine::echo());
    ports.seed_bot("echo");
    ports.seed_bot("support");
    app_over(ports, config)
}

fn app_over(ports: TestPorts, config: ApiConfig) -> TestApp {
    let service = Arc::new(ConversationService::new(
        ports.ports.clone(),
        ReplySettings::default(),
    ));
    let auth = Arc::new(Auth::new(SECRET));
    let state = AppState {
        service,
        auth: Arc::clone(&auth),
        config,
    };
    TestApp {
        router: router(state),
        ports,
        auth,
    }
}

impl TestApp {
    async fn send_request(&self, request: Request<Body>) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{status}: body is not JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        TestResponse {
            status,
            headers,
            body,
        }
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> TestResponse {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map_or_else(Body::empty, Body::from);
        self.send_request(request.body(body).expect("request"))
            .await
    }

    // --- identity ---------------------------------------------------------

    /// `POST /auth/guest` with `{}`.
    async fn post_guest(&self) -> TestResponse {
        self.call(Method::POST, "/auth/guest", None, Some("{}".into()))
            .await
    }

    /// A guest's token, from `POST /auth/guest`.
    async fn guest_token(&self) -> String {
        let response = self.post_guest().await;
        response.assert_status(201);
        response.str("token")
    }

    /// A token for `user`, signed with the app's secret.
    fn token_for(&self, user: &str) -> String {
        self.auth
            .issue(
                &UserId::parse(user).expect("user id"),
                &Role::User,
                Duration::from_secs(600),
            )
            .expect("token")
            .token
    }

    // --- conversations ----------------------------------------------------

    /// `POST /conversations/start` (`query` is the query string, e.g. `?wait=true`).
    async fn start(&self, token: &str, query: &str, body: Value) -> TestResponse {
        self.call(
            Method::POST,
            &format!("/conversations/start{query}"),
            Some(token),
            Some(body.to_string()),
        )
        .await
    }

    /// Starts a conversation with `echo` and returns its id.
    async fn started(&self, token: &str) -> String {
        let response = self.start(token, "", json!({"bot_id": "echo"})).await;
        response.assert_status(201);
        response.str("conversation_id")
    }

    /// `POST /conversations/{id}/messages` with a raw body.
    async fn send_raw(&self, token: &str, id: &str, query: &str, body: String) -> TestResponse {
        self.call(
            Method::POST,
            &format!("/conversations/{id}/messages{query}"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// `POST /conversations/{id}/messages`.
    async fn send(&self, token: &str, id: &str, query: &str, body: Value) -> TestResponse {
        self.send_raw(token, id, query, body.to_string()).await
    }

    /// Sends `content` and waits for the bot's replies.
    async fn say(&self, token: &str, id: &str, content: &str) -> TestResponse {
        let response = self
            .send(token, id, "?wait=true", json!({"content": content}))
            .await;
        response.assert_status(201);
        response
    }

    /// `GET /conversations/{id}/history{query}`.
    async fn history(&self, token: &str, id: &str, query: &str) -> TestResponse {
        self.call(
            Method::GET,
            &format!("/conversations/{id}/history{query}"),
            Some(token),
            None,
        )
        .await
    }

    /// The contents of the conversation's whole history, oldest first.
    async fn contents(&self, token: &str, id: &str) -> Vec<String> {
        let response = self.history(token, id, "?limit=100").await;
        response.assert_status(200)["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["content"].as_str().expect("content").to_owned())
            .collect()
    }

    /// `GET /conversations{query}`.
    async fn list(&self, token: &str, query: &str) -> TestResponse {
        self.call(
            Method::GET,
            &format!("/conversations{query}"),
            Some(token),
            None,
        )
        .await
    }

    /// `GET /conversations/{id}`.
    async fn get_conversation(&self, token: &str, id: &str) -> TestResponse {
        self.call(
            Method::GET,
            &format!("/conversations/{id}"),
            Some(token),
            None,
        )
        .await
    }

    /// `PATCH /conversations/{id}`.
    async fn patch(&self, token: &str, id: &str, body: Value) -> TestResponse {
        self.call(
            Method::PATCH,
            &format!("/conversations/{id}"),
            Some(token),
            Some(body.to_string()),
        )
        .await
    }

    /// `DELETE /conversations/{id}`.
    async fn delete(&self, token: &str, id: &str) -> TestResponse {
        self.call(
            Method::DELETE,
            &format!("/conversations/{id}"),
            Some(token),
            None,
        )
        .await
    }

    // --- bots and meta ----------------------------------------------------

    /// `GET /bots`.
    async fn bots(&self, token: &str) -> TestResponse {
        self.call(Method::GET, "/bots", Some(token), None).await
    }

    /// `GET /bots/{id}`.
    async fn bot(&self, token: &str, id: &str) -> TestResponse {
        self.call(Method::GET, &format!("/bots/{id}"), Some(token), None)
            .await
    }

    /// `GET /healthz`.
    async fn healthz(&self) -> TestResponse {
        self.call(Method::GET, "/healthz", None, None).await
    }

    /// `GET /openapi.json`.
    async fn openapi(&self) -> TestResponse {
        self.call(Method::GET, "/openapi.json", None, None).await
    }
}

/// A token signed with `secret` carrying `claims`.
fn signed(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .expect("token")
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

// ---------------------------------------------------------------------------
// The seed flow
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Send and idempotency
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_retry_with_the_same_client_message_id_answers_200_with_the_original() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let body = json!({"content": "once", "client_message_id": "c-1"});

    let first = app.send(&token, &id, "?wait=true", body.clone()).await;
    first.assert_status(201);
    let retry = app.send(&token, &id, "?wait=true", body).await;
    retry.assert_status(200);

    assert_eq!(retry.body["message_id"], first.body["message_id"]);
    assert_eq!(retry.body["seq"], first.body["seq"]);
    assert_eq!(retry.body["timestamp"], first.body["timestamp"]);
    assert_eq!(retry.body["replies"], first.body["replies"]);
    // One user message and one bot reply: the retry triggered no second reply.
    assert_eq!(app.contents(&token, &id).await, ["once", "once"]);
}

#[tokio::test]
async fn the_idempotency_key_header_works_like_client_message_id() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let send = || {
        let request = Request::post(format!("/conversations/{id}/messages?wait=true"))
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header("Idempotency-Key", "key-1")
            .body(Body::from(json!({"content": "hi"}).to_string()))
            .expect("request");
        app.send_request(request)
    };
    let first = send().await;
    first.assert_status(201);
    let retry = send().await;
    retry.assert_status(200);
    assert_eq!(retry.body["message_id"], first.body["message_id"]);

    let history = app.history(&token, &id, "").await;
    assert_eq!(history.body["messages"][0]["client_message_id"], "key-1");
    assert_eq!(
        history.body["messages"].as_array().expect("messages").len(),
        2
    );
}

#[tokio::test]
async fn an_idempotency_key_header_that_contradicts_the_body_is_refused() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let request = Request::post(format!("/conversations/{id}/messages"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("Idempotency-Key", "key-1")
        .body(Body::from(
            json!({"content": "hi", "client_message_id": "key-2"}).to_string(),
        ))
        .expect("request");
    app.send_request(request)
        .await
        .assert_problem(400, "invalid_request");
    assert_eq!(app.ports.store.message_count(), 0);
}

#[tokio::test]
async fn reusing_a_client_message_id_with_different_content_is_an_idempotency_mismatch() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    app.send(
        &token,
        &id,
        "?wait=true",
        json!({"content": "first", "client_message_id": "c-1"}),
    )
    .await
    .assert_status(201);
    let response = app
        .send(
            &token,
            &id,
            "",
            json!({"content": "second", "client_message_id": "c-1"}),
        )
        .await;
    response.assert_problem(409, "idempotency_mismatch");
    assert_eq!(app.contents(&token, &id).await, ["first", "first"]);
}

#[tokio::test]
async fn a_message_may_carry_attachments_and_empty_content() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let attachment = json!({
        "type": "image",
        "url": "https://example.com/cat.png",
        "content_type": "image/png",
        "name": "cat.png",
        "size_bytes": 1234
    });
    app.send(
        &token,
        &id,
        "?wait=true",
        json!({"content": "", "attachments": [attachment.clone()]}),
    )
    .await
    .assert_status(201);
    let history = app.history(&token, &id, "").await;
    assert_eq!(
        history.body["messages"][0]["attachments"],
        json!([attachment])
    );
}

#[tokio::test]
async fn bad_attachments_are_invalid_requests_and_store_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let one = json!({"type": "file", "url": "https://example.com/a"});
    for attachments in [
        json!([{"type": "file", "url": "ftp://example.com/a"}]),
        json!([{"type": "file"}]),
        json!([{"type": "", "url": "https://example.com/a"}]),
        Value::Array(vec![one; 11]),
    ] {
        app.send(
            &token,
            &id,
            "",
            json!({"content": "x", "attachments": attachments}),
        )
        .await
        .assert_problem(400, "invalid_request");
    }
    assert_eq!(app.ports.store.message_count(), 0);
}

#[tokio::test]
async fn waiting_for_a_bot_that_does_not_answer_in_time_returns_no_replies() {
    // No permits: the bot never gets to answer.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let ports = TestPorts::with_engine(ScriptedEngine::echo().gated(gate));
    ports.seed_bot("echo");
    let app = app_over(
        ports,
        ApiConfig {
            wait_timeout: Duration::from_millis(20),
            ..ApiConfig::default()
        },
    );
    let token = app.token_for("alice");
    let started = app
        .start(
            &token,
            "?wait=true",
            json!({"bot_id": "echo", "initial_message": "anyone?"}),
        )
        .await;
    assert_eq!(started.assert_status(201)["replies"], json!([]));
    let id = started.str("conversation_id");
    let sent = app
        .send(&token, &id, "?wait=true", json!({"content": "hello?"}))
        .await;
    assert_eq!(sent.assert_status(201)["replies"], json!([]));
    assert_eq!(app.contents(&token, &id).await, ["anyone?", "hello?"]);
}

#[tokio::test]
async fn without_wait_the_answer_carries_no_replies_member() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    let sent = app.send(&token, &id, "", json!({"content": "hi"})).await;
    assert!(sent.assert_status(201).get("replies").is_none());
    let explicit = app
        .send(&token, &id, "?wait=false", json!({"content": "again"}))
        .await;
    assert!(explicit.assert_status(201).get("replies").is_none());
}

// ---------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------

/// A conversation holding `n` exchanges (user message, echo reply): 2n messages.
async fn conversation_with_exchanges(app: &TestApp, token: &str, n: usize) -> String {
    let id = app.started(token).await;
    for i in 1..=n {
        app.say(token, &id, &format!("m{i}")).await;
    }
    id
}

fn seqs(response: &TestResponse) -> Vec<u64> {
    response.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect()
}

#[tokio::test]
async fn history_pages_back_with_before_and_forward_with_after() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = conversation_with_exchanges(&app, &token, 3).await;

    let newest = app.history(&token, &id, "?limit=2").await;
    assert_eq!(seqs(&newest), [5, 6]);
    assert_eq!(newest.body["has_more"], true);

    let older = app.history(&token, &id, "?limit=2&before=5").await;
    assert_eq!(seqs(&older), [3, 4]);
    assert_eq!(older.body["has_more"], true);

    let oldest = app.history(&token, &id, "?limit=2&before=3").await;
    assert_eq!(seqs(&oldest), [1, 2]);
    assert_eq!(oldest.body["has_more"], false);

    let after = app.history(&token, &id, "?limit=2&after=2").await;
    assert_eq!(seqs(&after), [3, 4]);
    assert_eq!(after.body["has_more"], true);

    let between = app.history(&token, &id, "?after=1&before=4").await;
    assert_eq!(seqs(&between), [2, 3]);
}

#[tokio::test]
async fn history_cursors_may_be_message_ids_or_timestamps() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = conversation_with_exchanges(&app, &token, 2).await;
    let all = app.history(&token, &id, "").await;
    let third = &all.body["messages"][2];

    let by_id = app
        .history(
            &token,
            &id,
            &format!("?before={}", third["id"].as_str().expect("id")),
        )
        .await;
    assert_eq!(seqs(&by_id), [1, 2]);

    let by_time = app
        .history(
            &token,
            &id,
            &format!("?after={}", third["timestamp"].as_str().expect("timestamp")),
        )
        .await;
    assert_eq!(seqs(&by_time), [4]);
}

// ---------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// One conversation
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Bad input: every kind gets a problem, and nothing changes
// ---------------------------------------------------------------------------

/// A conversation with one exchange, and its history as it stands.
async fn settled_conversation(app: &TestApp, token: &str) -> (String, Value) {
    let id = conversation_with_exchanges(app, token, 1).await;
    let history = app.history(token, &id, "").await.body;
    (id, history)
}

#[tokio::test]
async fn malformed_json_is_an_invalid_request_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, before) = settled_conversation(&app, &token).await;
    for body in [r#"{"content": "#, "not json", "[1,2]", r#""text""#, ""] {
        app.send_raw(&token, &id, "", body.to_owned())
            .await
            .assert_problem(400, "invalid_request");
    }
    assert_eq!(app.history(&token, &id, "").await.body, before);
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_invalid_requests_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, before) = settled_conversation(&app, &token).await;
    for body in [
        json!({"content": 5}),
        json!({"content": "x", "attachments": "none"}),
        json!({"content": "x", "client_message_id": 1}),
        json!({"attachments": []}),
        json!({}),
    ] {
        let response = app.send(&token, &id, "", body).await;
        response.assert_problem(400, "invalid_request");
    }
    let missing = app.send(&token, &id, "", json!({})).await;
    assert!(
        missing.str("detail").contains("content"),
        "the detail names the field: {}",
        missing.body
    );
    assert_eq!(app.history(&token, &id, "").await.body, before);
}

#[tokio::test]
async fn content_over_16_kib_is_payload_too_large_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, before) = settled_conversation(&app, &token).await;
    let response = app
        .send(&token, &id, "", json!({"content": "a".repeat(17 * 1024)}))
        .await;
    response.assert_problem(413, "payload_too_large");
    assert_eq!(app.history(&token, &id, "").await.body, before);
}

#[tokio::test]
async fn a_body_over_64_kib_is_payload_too_large_and_changes_nothing() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, before) = settled_conversation(&app, &token).await;
    let huge = json!({"content": "a", "metadata": {"blob": "b".repeat(70 * 1024)}});
    app.send(&token, &id, "", huge)
        .await
        .assert_problem(413, "payload_too_large");
    let start = app
        .start(
            &token,
            "",
            json!({"bot_id": "echo", "title": "t".repeat(70 * 1024)}),
        )
        .await;
    start.assert_problem(413, "payload_too_large");
    assert_eq!(app.history(&token, &id, "").await.body, before);
    assert_eq!(app.list(&token, "").await.body["total"], 1);
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_an_invalid_request() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    for bad in ["not-a-uuid", "123", "0193a0f0-0000-7000-8000-00000000000z"] {
        app.get_conversation(&token, bad)
            .await
            .assert_problem(400, "invalid_request");
        app.history(&token, bad, "")
            .await
            .assert_problem(400, "invalid_request");
        app.send(&token, bad, "", json!({"content": "hi"}))
            .await
            .assert_problem(400, "invalid_request");
        app.patch(&token, bad, json!({"title": "x"}))
            .await
            .assert_problem(400, "invalid_request");
        app.delete(&token, bad)
            .await
            .assert_problem(400, "invalid_request");
    }
    assert_eq!(app.ports.store.message_count(), 0);
}

#[tokio::test]
async fn a_well_formed_but_unknown_conversation_id_is_not_found() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let unknown = "0193a0f0-0000-7000-8000-000000000001";
    app.get_conversation(&token, unknown)
        .await
        .assert_problem(404, "not_found");
    app.send(&token, unknown, "", json!({"content": "hi"}))
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn history_limits_outside_1_to_100_are_invalid_requests() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, _) = settled_conversation(&app, &token).await;
    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=10000",
        "?limit=-1",
        "?limit=ten",
        "?limit=99999999999999999999999",
    ] {
        app.history(&token, &id, query)
            .await
            .assert_problem(400, "invalid_request");
    }
    app.history(&token, &id, "?limit=100")
        .await
        .assert_status(200);
}

#[tokio::test]
async fn history_cursors_that_are_garbage_are_invalid_requests() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let (id, _) = settled_conversation(&app, &token).await;
    for query in [
        "?before=garbage",
        "?after=garbage",
        "?before=",
        "?after=2026-13-45T99:00:00Z",
        // A message id that is not in this conversation.
        "?before=0193a0f0-0000-7000-8000-000000000009",
    ] {
        app.history(&token, &id, query)
            .await
            .assert_problem(400, "invalid_request");
    }
}

#[tokio::test]
async fn list_parameters_out_of_range_or_unknown_are_invalid_requests() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    app.started(&token).await;
    for query in [
        "?limit=0",
        "?limit=10000",
        "?status=foo",
        "?status=",
        "?bot_id=Not%20A%20Slug",
        "?offset=-1",
        "?cursor=garbage",
        "?offset=0&cursor=1767225600000_0193a0f0000070008000000000000001",
    ] {
        app.list(&token, query)
            .await
            .assert_problem(400, "invalid_request");
    }
}

#[tokio::test]
async fn offset_and_cursor_together_are_refused() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    for _ in 0..3 {
        app.started(&token).await;
    }
    let cursor = app.list(&token, "?limit=1").await.str("next_cursor");
    let response = app
        .list(&token, &format!("?offset=1&cursor={cursor}"))
        .await;
    response.assert_problem(400, "invalid_request");
    assert!(response.str("detail").contains("offset"));
}

#[tokio::test]
async fn wait_must_be_a_boolean() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let id = app.started(&token).await;
    app.send(&token, &id, "?wait=soon", json!({"content": "hi"}))
        .await
        .assert_problem(400, "invalid_request");
    assert_eq!(app.ports.store.message_count(), 0);
}

// ---------------------------------------------------------------------------
// Identity
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Bots, health, routing, OpenAPI
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bots_are_listed_and_fetched_by_id() {
    let app = spawn_app().await;
    let token = app.guest_token().await;
    let list = app.bots(&token).await;
    let body = list.assert_status(200);
    let ids: Vec<&str> = body["bots"]
        .as_array()
        .expect("bots")
        .iter()
        .map(|b| b["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["echo", "support"]);
    assert_eq!(body["bots"][0]["kind"], "echo");
    assert_eq!(body["bots"][0]["name"], "echo");
    assert!(body["bots"][0]["description"].is_string());

    let one = app.bot(&token, "support").await;
    assert_eq!(one.assert_status(200)["id"], "support");
    app.bot(&token, "nobody")
        .await
        .assert_problem(404, "not_found");
    app.bot(&token, "Bad%20Id")
        .await
        .assert_problem(400, "invalid_request");
}

#[tokio::test]
async fn healthz_needs_no_token() {
    let app = spawn_app().await;
    let response = app.healthz().await;
    assert_eq!(response.assert_status(200), &json!({"status": "ok"}));
}

#[tokio::test]
async fn an_unknown_route_is_a_not_found_problem() {
    let app = spawn_app().await;
    app.call(Method::GET, "/nothing/here", None, None)
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_known_path_with_the_wrong_method_is_a_method_not_allowed_problem() {
    let app = spawn_app().await;
    for uri in ["/conversations/start", "/api/conversations/start"] {
        let response = app.call(Method::GET, uri, None, None).await;
        response.assert_problem(405, "method_not_allowed");
        assert_eq!(response.headers[header::ALLOW], "POST");
    }
}

#[tokio::test]
async fn storage_that_is_down_answers_503_unavailable() {
    let ports = TestPorts::with_engine(ScriptedEngine::echo());
    let mut mock = MockBotRepository::new();
    mock.expect_list()
        .returning(|| Err(RepoError::Unavailable("connection refused".into())));
    let mut ports_with_mock = ports.clone();
    ports_with_mock.ports.bots = Arc::new(mock);
    let app = app_over(ports_with_mock, ApiConfig::default());
    let token = app.token_for("alice");
    let response = app.bots(&token).await;
    response.assert_problem(503, "unavailable");
    assert!(!response.str("detail").contains("connection refused"));
}

#[tokio::test]
async fn a_storage_failure_answers_500_saying_only_internal_error() {
    let ports = TestPorts::with_engine(ScriptedEngine::echo());
    let mut mock = MockBotRepository::new();
    mock.expect_list()
        .returning(|| Err(RepoError::Internal("no such table: bots".into())));
    let mut ports_with_mock = ports.clone();
    ports_with_mock.ports.bots = Arc::new(mock);
    let app = app_over(ports_with_mock, ApiConfig::default());
    let token = app.token_for("alice");
    let response = app.bots(&token).await;
    response.assert_problem(500, "internal");
    assert_eq!(response.body["detail"], "internal error");
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_with_bearer_security() {
    let app = spawn_app().await;
    let response = app.openapi().await;
    let doc = response.assert_status(200);
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let expected = [
        ("/conversations/start", "post"),
        ("/conversations/{id}/messages", "post"),
        ("/conversations/{id}/history", "get"),
        ("/conversations", "get"),
        ("/conversations/{id}", "get"),
        ("/conversations/{id}", "patch"),
        ("/conversations/{id}", "delete"),
        ("/bots", "get"),
        ("/bots/{id}", "get"),
        ("/auth/guest", "post"),
        ("/healthz", "get"),
        ("/openapi.json", "get"),
    ];
    let public = ["/auth/guest", "/healthz", "/openapi.json"];
    for (path, method) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let secured = operation["security"] == json!([{"bearer": []}]);
        assert_eq!(secured, !public.contains(&path), "{method} {path} security");
        if secured {
            assert_eq!(
                operation["responses"]["401"]["$ref"], "#/components/responses/Unauthorized",
                "{method} {path}"
            );
        }
    }
    let problem =
        &doc["components"]["responses"]["NotFound"]["content"]["application/problem+json"];
    assert_eq!(problem["schema"]["$ref"], "#/components/schemas/Problem");
    assert_eq!(
        doc,
        &serde_json::to_value(confab_api_axum::openapi()).expect("json")
    );
}
