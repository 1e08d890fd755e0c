//! The harness: `spawn_app` starts a server on a fresh database and a free port; one
//! helper per endpoint keeps the tests reading like the API's description.

#![allow(dead_code)] // Each test binary module uses a different subset of helpers.

use std::net::SocketAddr;
use std::time::Duration;

mod process;
mod sse;

pub use process::{Binary, Client};
pub use sse::SseReader;

use confab_api_axum::Auth;
use confab_domain::user::{Role, UserId};
use confab_server::{App, Config};
use confab_storage_seaorm::SeaOrmStore;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The token signing secret of every test server.
pub const SECRET: &str = "test-secret-test-secret-test-secret";

/// A token for `user` with `role`, signed with [`SECRET`].
pub fn token(user: &str, role: Role) -> String {
    Auth::new(SECRET.as_bytes())
        .issue(
            &UserId::parse(user).expect("a valid user id"),
            &role,
            Duration::from_secs(3600),
        )
        .expect("a token")
        .token
}

/// An administrator's token.
pub fn admin() -> String {
    token("root", Role::Admin)
}

/// An end user's token.
pub fn user(name: &str) -> String {
    token(name, Role::User)
}

/// The databases a test runs on.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one scenario on SQLite and, in a second test, on PostgreSQL.
#[macro_export]
macro_rules! on_every_backend {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    if !$crate::helpers::postgres_configured() {
                        return;
                    }
                    super::$scenario($crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}

pub fn postgres_url() -> Option<String> {
    std::env::var("CONFAB_TEST_POSTGRES_URL").ok()
}

/// Whether the PostgreSQL variants can run. Without `CONFAB_TEST_POSTGRES_URL` they
/// say so and pass, as README.md describes for a machine without PostgreSQL;
/// `.ci/run` always sets it and fails when PostgreSQL does not answer.
pub fn postgres_configured() -> bool {
    let configured = postgres_url().is_some();
    if !configured {
        eprintln!("CONFAB_TEST_POSTGRES_URL is not set; PostgreSQL not tested");
    }
    configured
}

/// A running server and a client for it.
pub struct TestApp {
    pub address: SocketAddr,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    config: Config,
    database: Option<TestDatabase>,
    store: tokio::sync::OnceCell<SeaOrmStore>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on(TestDatabase::create(backend).await, configure).await
}

/// A server on `database`, for a test that needs to own what the database is.
pub async fn spawn_app_on(database: TestDatabase, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: database.url.clone(),
        jwt_secret: Some(SECRET.to_owned()),
        ..Config::default()
    };
    configure(&mut config);
    serve(config, database).await
}

async fn serve(config: Config, database: TestDatabase) -> TestApp {
    let app = App::build(config.clone()).await.expect("server builds");
    let address = app.local_addr();
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stop.await;
    }));
    TestApp {
        address,
        http: reqwest::Client::new(),
        shutdown: Some(shutdown),
        server: Some(server),
        config,
        database: Some(database),
        store: tokio::sync::OnceCell::new(),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The URL of the server's database, for a second connection to it.
    pub fn database_url(&self) -> &str {
        &self.config.database_url
    }

    /// A second connection to the server's database, opened on first use, for
    /// seeding what the API cannot make (chosen timestamps, for one).
    pub async fn store(&self) -> &SeaOrmStore {
        self.store
            .get_or_init(|| async {
                let db = confab_storage_seaorm::connect(self.database_url())
                    .await
                    .expect("second connection to the test database");
                SeaOrmStore::new(db)
            })
            .await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.stop_server().await;
    }

    async fn stop_server(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stops cleanly");
        }
    }

    /// Stops the server and starts a new one on the same database and address kind.
    pub async fn restart(mut self) -> TestApp {
        self.stop_server().await;
        let database = self.database.take().expect("database");
        serve(self.config.clone(), database).await
    }

    pub async fn guest_token(&self) -> String {
        let response = self
            .http
            .post(self.url("/auth/guest"))
            .send()
            .await
            .expect("guest request");
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("guest body");
        body["token"].as_str().expect("token").to_owned()
    }

    pub async fn start(&self, token: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/conversations/start"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("start request")
    }

    /// Starts a conversation with `bot` and returns its JSON.
    pub async fn started(&self, token: &str, bot: &str) -> Value {
        let response = self.start(token, json!({ "bot_id": bot })).await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("start body")
    }

    pub async fn send(&self, token: &str, conversation: &str, body: Value) -> reqwest::Response {
        self.send_query(token, conversation, "", body).await
    }

    /// [`TestApp::send`] with `query` (such as `?wait=true`) added to the path.
    pub async fn send_query(
        &self,
        token: &str,
        conversation: &str,
        query: &str,
        body: Value,
    ) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/conversations/{conversation}/messages{query}")))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("send request")
    }

    pub async fn history(&self, token: &str, conversation: &str, query: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/conversations/{conversation}/history{query}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("history request")
    }

    /// Every message of a conversation, oldest first.
    pub async fn all_messages(&self, token: &str, conversation: &str) -> Vec<Value> {
        let mut messages = Vec::new();
        let mut after = 0;
        loop {
            let response = self
                .history(token, conversation, &format!("?limit=100&after={after}"))
                .await;
            assert_eq!(response.status(), 200);
            let page: Value = response.json().await.expect("history body");
            let batch = page["messages"].as_array().expect("messages").clone();
            if let Some(last) = batch.last() {
                after = last["seq"].as_u64().expect("seq");
            }
            messages.extend(batch);
            if !page["has_more"].as_bool().expect("has_more") {
                return messages;
            }
        }
    }

    pub async fn list(&self, token: &str, query: &str) -> reqwest::Response {
        self.http
            .get(self.url(&format!("/conversations{query}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("list request")
    }

    pub async fn patch(&self, token: &str, conversation: &str, body: Value) -> reqwest::Response {
        self.http
            .patch(self.url(&format!("/conversations/{conversation}")))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("patch request")
    }

    pub async fn delete(&self, token: &str, conversation: &str) -> reqwest::Response {
        self.http
            .delete(self.url(&format!("/conversations/{conversation}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("delete request")
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET request")
    }

    /// A GET without a token, as probes and scrapers send it.
    pub async fn get_public(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .send()
            .await
            .expect("GET request")
    }

    pub async fn ws(&self, token: &str) -> WsClient {
        self.try_ws(token).await.expect("websocket connects")
    }

    /// A socket of `token`'s that follows `conversation` (by id) from now on, its
    /// `status` and `subscribed` frames read.
    pub async fn follower(&self, token: &str, conversation: &str) -> WsClient {
        let mut socket = self.ws(token).await;
        socket.next_of("status").await;
        socket
            .send_json(serde_json::json!({"type": "subscribe", "conversation_id": conversation}))
            .await;
        socket.next_of("subscribed").await;
        socket
    }

    /// A socket, or the server's refusal of it.
    pub async fn try_ws(
        &self,
        token: &str,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        WsClient::connect(self.address, token).await
    }
}

/// How long a client waits for a frame it expects before the test fails. A guard
/// against hanging, not a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A WebSocket client speaking JSON frames.
pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a socket received next.
#[derive(Debug)]
pub enum Received {
    Frame(Value),
    Closed(Option<CloseFrame>),
}

impl WsClient {
    /// A socket to the server at `address`, which may be a process of its own.
    pub async fn connect(
        address: SocketAddr,
        token: &str,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let url = format!("ws://{address}/ws?token={token}");
        let (stream, _) = tokio_tungstenite::connect_async(url).await?;
        Ok(Self { stream })
    }

    pub async fn send_json(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream
            .send(WsMessage::Text(text.into()))
            .await
            .expect("frame sent");
    }

    /// The next JSON frame or the close, skipping pings.
    pub async fn receive(&mut self) -> Received {
        // One deadline for the whole wait: the server's heartbeat pings would restart
        // a timeout taken per frame, and a frame that never comes would hang the test.
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("a frame arrives in time");
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    return Received::Frame(serde_json::from_str(&text).expect("JSON frame"));
                }
                Some(Ok(WsMessage::Close(frame))) => return Received::Closed(frame),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// The next JSON frame; fails the test if the socket closed.
    pub async fn next_json(&mut self) -> Value {
        match self.receive().await {
            Received::Frame(frame) => frame,
            Received::Closed(frame) => panic!("socket closed: {frame:?}"),
        }
    }

    /// The next frame of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next_json().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Sends a ping and returns every frame received before its pong.
    pub async fn frames_until_pong(&mut self) -> Vec<Value> {
        self.send_json(json!({ "type": "ping" })).await;
        let mut frames = Vec::new();
        loop {
            let frame = self.next_json().await;
            if frame["type"] == "pong" {
                return frames;
            }
            frames.push(frame);
        }
    }
}

/// A database that exists for one test and is removed after it.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<confab_storage_seaorm::testing::PostgresTemp>,
}

impl TestDatabase {
    /// A database the test made itself and removes itself.
    pub fn at(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            _dir: None,
            postgres: None,
        }
    }

    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("confab.db").display()
                );
                Self {
                    url,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
            Backend::Postgres => {
                let admin = postgres_url().expect("CONFAB_TEST_POSTGRES_URL");
                let database = confab_storage_seaorm::testing::postgres_temp(&admin)
                    .await
                    .expect("test database created");
                Self {
                    url: database.url().to_owned(),
                    _dir: None,
                    postgres: Some(database),
                }
            }
        }
    }
}

/// Who may answer a user message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    /// The echo bot, echoing it.
    ByTheBot,
    /// The echo bot, or a `system` message saying the bot could not answer: the
    /// pipeline gives a reply up when storage fails while it works on it.
    ByTheBotOrAFailureNotice,
}

/// Asserts that every user message of `messages`, a whole history, has exactly one
/// reply, as `answers` allows, and that nothing else is there.
pub fn assert_each_answered_once(messages: &[Value], answers: Answers) {
    let questions: Vec<&Value> = messages.iter().filter(|m| m["sender"] == "user").collect();
    for question in &questions {
        let replies: Vec<&Value> = messages
            .iter()
            .filter(|m| m["reply_to"] == question["id"])
            .collect();
        assert_eq!(
            replies.len(),
            1,
            "message {} got {} replies: {replies:?}",
            question["seq"],
            replies.len()
        );
        let reply = replies[0];
        let echoed = reply["sender"] == "bot" && reply["content"] == question["content"];
        let failure_notice =
            answers == Answers::ByTheBotOrAFailureNotice && reply["sender"] == "system";
        assert!(echoed || failure_notice, "{question} got {reply}");
    }
    assert_eq!(
        messages.len(),
        questions.len() * 2,
        "replies without a question: {messages:?}"
    );
}
