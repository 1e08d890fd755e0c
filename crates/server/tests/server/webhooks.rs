//! Outgoing webhooks end to end: a receiver on 127.0.0.1 sees every event of a
//! scripted conversation, in order and signed; and with the receiver refusing for a
//! while and the real binary killed (SIGKILL) meanwhile, every event still arrives
//! after both are back, duplicates carrying the same delivery id.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Binary, Client, PATIENCE, TestDatabase, admin, spawn_app_with, user,
};
use crate::on_every_backend;

on_every_backend!(
    a_receiver_sees_every_event_of_a_conversation_in_order_and_signed,
    bad_subscriptions_are_refused_with_problem_codes,
);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    event: String,
    signature: String,
    body: Bytes,
    accepted: bool,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<Received>>>,
    /// While set, every request is answered 503, as a receiver that is down would
    /// fail them.
    down: Arc<AtomicBool>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let accepted = !receiver.down.load(Ordering::SeqCst);
    receiver.requests.lock().unwrap().push(Received {
        delivery: header("x-confab-delivery"),
        event: header("x-confab-event"),
        signature: header("x-confab-signature"),
        body,
        accepted,
    });
    if accepted {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

impl Receiver {
    async fn start() -> (Self, SocketAddr) {
        let receiver = Self::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, address)
    }

    fn requests(&self) -> Vec<Received> {
        self.requests.lock().unwrap().clone()
    }

    /// The accepted deliveries, each once, in the order first accepted; waits until
    /// there are `count`, failing the test after [`PATIENCE`].
    async fn accepted(&self, count: usize) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut seen = HashSet::new();
            let accepted: Vec<Received> = self
                .requests()
                .into_iter()
                .filter(|request| request.accepted && seen.insert(request.delivery.clone()))
                .collect();
            if accepted.len() >= count {
                return accepted;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} deliveries accepted: {:?}",
                accepted.len(),
                accepted.iter().map(|r| &r.event).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Checks a request's signature, headers and body against its delivery.
fn assert_signed(request: &Received, secret: &[u8], conversation: &str) {
    assert_eq!(
        request.signature,
        confab_bots::webhook::signature(secret, &request.body),
        "{request:?}"
    );
    let body = request.json();
    assert_eq!(body["id"], request.delivery.as_str());
    assert_eq!(body["type"], request.event.as_str());
    assert_eq!(body["conversation_id"], conversation);
    assert!(body["created_at"].is_string(), "{body}");
    assert!(body["data"].is_object(), "{body}");
}

const ALL_EVENTS: [&str; 7] = [
    "conversation.started",
    "message.created",
    "conversation.archived",
    "conversation.unarchived",
    "conversation.deleted",
    "feedback.created",
    "handoff.changed",
];

/// Starts a conversation with `echo`, waits for its reply, rates it, archives,
/// unarchives and deletes it; returns its id.
async fn script(client: &Client, token: &str) -> String {
    let started = client
        .post(
            token,
            "/conversations/start?wait=true",
            json!({"bot_id": "echo", "initial_message": "hello hooks"}),
        )
        .await;
    assert_eq!(started.status(), 201);
    let started: Value = started.json().await.unwrap();
    let conversation = started["conversation_id"].as_str().unwrap().to_owned();
    let reply = started["replies"][0]["id"].as_str().unwrap().to_owned();
    let rated = client
        .http
        .put(format!(
            "{}/conversations/{conversation}/messages/{reply}/feedback",
            client.base
        ))
        .bearer_auth(token)
        .json(&json!({"rating": "up", "comment": "quick"}))
        .send()
        .await
        .unwrap();
    assert!(rated.status().is_success(), "{rated:?}");
    for status in ["archived", "active"] {
        let path = format!("/conversations/{conversation}");
        let changed = client.patch(token, &path, json!({"status": status})).await;
        assert_eq!(changed.status(), 200);
    }
    let deleted = client
        .delete(token, &format!("/conversations/{conversation}"))
        .await;
    assert_eq!(deleted.status(), 204);
    conversation
}

const SCRIPTED: [&str; 7] = [
    "conversation.started",
    "message.created",
    "message.created",
    "feedback.created",
    "conversation.archived",
    "conversation.unarchived",
    "conversation.deleted",
];

async fn subscribe(client: &Client, url: &str, secret_env: &str) -> String {
    let created = client
        .post(
            &admin(),
            "/webhooks",
            json!({"url": url, "events": ALL_EVENTS, "secret_env": secret_env}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    created["id"].as_str().unwrap().to_owned()
}

async fn a_receiver_sees_every_event_of_a_conversation_in_order_and_signed(backend: Backend) {
    let (receiver, address) = Receiver::start().await;
    let app = spawn_app_with(backend, |config| {
        config.webhooks.poll_interval = Duration::from_millis(20);
        config.webhooks.initial_backoff = Duration::from_millis(50);
    })
    .await;
    let client = Client {
        base: app.url(""),
        http: app.http.clone(),
    };
    // The in-process server reads the same environment as the test: `PATH` is a
    // variable every test process has.
    let secret = std::env::var("PATH").unwrap();
    let webhook = subscribe(&client, &format!("http://{address}/hook"), "PATH").await;
    let conversation = script(&client, &user("hook-user")).await;

    let accepted = receiver.accepted(SCRIPTED.len()).await;
    let events: Vec<&str> = accepted.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(events, SCRIPTED);
    for request in &accepted {
        assert_signed(request, secret.as_bytes(), &conversation);
    }
    let bodies: Vec<Value> = accepted.iter().map(Received::json).collect();
    assert_eq!(bodies[1]["data"]["sender"], "user");
    assert_eq!(bodies[1]["data"]["content"], "hello hooks");
    assert_eq!(bodies[2]["data"]["sender"], "bot");
    assert_eq!(bodies[3]["data"]["id"], bodies[2]["data"]["id"]);
    assert_eq!(bodies[3]["data"]["feedback"]["rating"], "up");
    assert_eq!(bodies[4]["data"]["status"], "archived");
    assert_eq!(bodies[6]["data"]["id"], conversation.as_str());

    // The list shows them delivered, once the last outcome (recorded after the
    // receiver answered) is in.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let path = format!("/webhooks/{webhook}/deliveries?state=delivered");
        let listed = client.get(&admin(), &path).await;
        assert_eq!(listed.status(), 200);
        let listed: Value = listed.json().await.unwrap();
        let delivered = listed["deliveries"].as_array().unwrap().len();
        if delivered == SCRIPTED.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{delivered} recorded as delivered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = app.get_public("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("confab_webhook_attempts_total{outcome=\"delivered\"}"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_after_a_receiver_outage_and_a_kill_9() {
    const SECRET_ENV: &str = "HOOK_TEST_SECRET";
    const SECRET: &str = "hook-test-secret";
    let env = [
        (SECRET_ENV, SECRET),
        ("CONFAB_WEBHOOKS__MAX_ATTEMPTS", "100000"),
        ("CONFAB_WEBHOOKS__INITIAL_BACKOFF", "50ms"),
        ("CONFAB_WEBHOOKS__MAX_BACKOFF", "200ms"),
        ("CONFAB_WEBHOOKS__TIMEOUT", "1s"),
        ("CONFAB_WEBHOOKS__CLAIM", "2s"),
        ("CONFAB_WEBHOOKS__POLL_INTERVAL", "20ms"),
    ];
    let database = TestDatabase::create(Backend::Sqlite).await;
    let (receiver, address) = Receiver::start().await;
    receiver.down.store(true, Ordering::SeqCst);

    let first = Binary::start_with(&database.url, &env);
    let client = first.client();
    subscribe(&client, &format!("http://{address}/hook"), SECRET_ENV).await;
    let conversation = script(&client, &user("hook-user")).await;
    // The first event was tried and refused: the outage is real.
    let deadline = Instant::now() + PATIENCE;
    while receiver.requests().is_empty() {
        assert!(Instant::now() < deadline, "no attempt reached the receiver");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill();

    receiver.down.store(false, Ordering::SeqCst);
    let second = Binary::start_with(&database.url, &env);
    let accepted = receiver.accepted(SCRIPTED.len()).await;
    let events: Vec<&str> = accepted.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(events, SCRIPTED);
    for request in receiver.requests() {
        assert_signed(&request, SECRET.as_bytes(), &conversation);
    }
    // A delivery sent twice is the same delivery: the same id, the same body.
    for request in receiver.requests() {
        let first = accepted
            .iter()
            .find(|r| r.delivery == request.delivery)
            .expect("every delivery tried is accepted in the end");
        assert_eq!(first.body, request.body);
    }
    drop(second);
}

async fn bad_subscriptions_are_refused_with_problem_codes(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let client = Client {
        base: app.url(""),
        http: app.http.clone(),
    };
    let good = json!({"url": "http://127.0.0.1:9/hook", "events": ["message.created"], "secret_env": "PATH"});
    let mut cases = Vec::new();
    for (member, value) in [
        ("url", json!("ftp://127.0.0.1/hook")),
        ("events", json!([])),
        ("events", json!(["message.sent"])),
        ("secret_env", json!("1BAD")),
        ("secret_env", json!("CONFAB_HOOK_SECRET_THAT_IS_NOT_SET")),
        ("description", json!("x".repeat(1001))),
    ] {
        let mut body = good.clone();
        body[member] = value;
        cases.push(body);
    }
    for body in cases {
        let answer = client.post(&admin(), "/webhooks", body.clone()).await;
        assert_eq!(answer.status(), 400, "{body}");
        let problem: Value = answer.json().await.unwrap();
        assert_eq!(problem["code"], "invalid_request", "{body}: {problem}");
    }
    let forbidden = client.post(&user("ana"), "/webhooks", good.clone()).await;
    assert_eq!(forbidden.status(), 403);
    let created: Value = client
        .post(&admin(), "/webhooks", good)
        .await
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let empty = client
        .patch(&admin(), &format!("/webhooks/{id}"), json!({}))
        .await;
    assert_eq!(empty.status(), 400);
    for (path, status) in [
        ("/webhooks/not-a-uuid".to_owned(), 400),
        (format!("/webhooks/{id}/deliveries?limit=0"), 400),
        (format!("/webhooks/{id}/deliveries?before=nope"), 400),
        (format!("/webhooks/{id}/deliveries?state=lost"), 400),
        (
            "/webhooks/00000000-0000-4000-8000-000000000000".to_owned(),
            404,
        ),
    ] {
        let answer = client.get(&admin(), &path).await;
        assert_eq!(answer.status(), status, "{path}");
    }
    let unknown = client
        .post(
            &admin(),
            &format!("/webhooks/{id}/deliveries/00000000-0000-4000-8000-000000000000/redeliver"),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    app.stop().await;
}
