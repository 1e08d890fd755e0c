//! The harness, trimmed from `tests/api/helpers.rs`: `spawn_app_with` starts a server
//! on a fresh database and a free port; tokens are issued with the test secret, and
//! `Seed` writes conversations and messages with chosen times through the storage
//! adapter.

#![allow(dead_code)] // Each module uses a different subset of helpers.

use std::net::SocketAddr;
use std::time::Duration;

use confab_api_axum::Auth;
use confab_domain::bot::BotId;
use confab_domain::conversation::{
    Conversation, ConversationChange, ConversationId, ConversationStatus, Metadata,
};
use confab_domain::message::{
    Attachments, Message, MessageContent, MessageId, NewMessage, ReplyTo, Sender, Seq,
};
use confab_domain::ports::{
    ConversationRepository, IdGenerator, MessageRepository, UuidV7Generator,
};
use confab_domain::session::{Session, SessionId};
use confab_domain::timestamp::Timestamp;
use confab_domain::user::{Role, UserId};
use confab_server::{App, Config};
use confab_storage_seaorm::SeaOrmStore;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const SECRET: &str = "test-secret-test-secret-test-secret";

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
                    if $crate::helpers::postgres_url().is_none() {
                        eprintln!("CONFAB_TEST_POSTGRES_URL is not set; PostgreSQL not tested");
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

/// A running server, a client for it, and direct access to its database.
pub struct TestApp {
    pub address: SocketAddr,
    pub http: reqwest::Client,
    pub store: SeaOrmStore,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _database: TestDatabase,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    let database = TestDatabase::create(backend).await;
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: database.url.clone(),
        jwt_secret: Some(SECRET.to_owned()),
        ..Config::default()
    };
    configure(&mut config);
    let app = App::build(config).await.expect("server builds");
    let address = app.local_addr();
    let db = confab_storage_seaorm::connect(&database.url)
        .await
        .expect("second connection to the test database");
    let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stop.await;
    }));
    TestApp {
        address,
        http: reqwest::Client::new(),
        store: SeaOrmStore::new(db),
        shutdown: Some(shutdown),
        server: Some(server),
        _database: database,
    }
}

/// A token for `user`, an administrator when `admin`.
pub fn token(user: &str, admin: bool) -> String {
    let role = if admin { Role::Admin } else { Role::User };
    Auth::new(SECRET.as_bytes())
        .issue(
            &UserId::parse(user).unwrap(),
            &role,
            Duration::from_secs(3600),
        )
        .unwrap()
        .token
}

/// A time given as RFC 3339.
pub fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// `base` plus `millis` milliseconds.
pub fn plus(base: Timestamp, millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(base.unix_millis() + millis).unwrap()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
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

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET request")
    }

    pub async fn batch(&self, token: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/conversations/batch"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("batch request")
    }

    /// Starts a conversation with the echo bot over the API and returns its JSON.
    pub async fn started(&self, token: &str) -> Value {
        let response = self
            .http
            .post(self.url("/conversations/start"))
            .bearer_auth(token)
            .json(&json!({ "bot_id": "echo" }))
            .send()
            .await
            .expect("start request");
        assert_eq!(response.status(), 201);
        response.json().await.expect("start body")
    }

    /// A conversation's status as its user sees it, or `None` when it is gone.
    pub async fn status_of(&self, token: &str, id: &str) -> Option<String> {
        let response = self.get(token, &format!("/conversations/{id}")).await;
        if response.status() == 404 {
            return None;
        }
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        Some(body["status"].as_str().unwrap().to_owned())
    }

    /// Stores a conversation of `user` with `bot`, created (and last active) at
    /// `created`.
    pub async fn seed_conversation(
        &self,
        user: &str,
        bot: &str,
        created: Timestamp,
    ) -> Conversation {
        let conversation = Conversation {
            id: ConversationId::from_uuid(UuidV7Generator.new_id()),
            session_id: SessionId::from_uuid(UuidV7Generator.new_id()),
            user_id: UserId::parse(user).unwrap(),
            bot_id: BotId::parse(bot).unwrap(),
            status: ConversationStatus::Active,
            title: None,
            metadata: Metadata::default(),
            created_at: created,
            last_activity: created,
            last_message: None,
            message_count: 0,
            last_seq: Seq::ZERO,
            last_user_seq: Seq::ZERO,
            replied_seq: Seq::ZERO,
        };
        let session = Session {
            id: conversation.session_id,
            conversation_id: conversation.id,
            user_id: conversation.user_id.clone(),
            bot_id: conversation.bot_id.clone(),
            context: serde_json::Map::new(),
            created_at: created,
            updated_at: created,
        };
        self.store.create(&conversation, &session).await.unwrap();
        conversation
    }

    /// Appends a message at `time`, answering `reply_to` when given.
    pub async fn seed_message(
        &self,
        conversation: &Conversation,
        sender: Sender,
        content: &str,
        time: Timestamp,
        reply_to: Option<&Message>,
    ) -> Message {
        let sender_id = match sender {
            Sender::User => conversation.user_id.to_string(),
            Sender::Bot => conversation.bot_id.to_string(),
            Sender::System => "confab".to_owned(),
        };
        let message = NewMessage {
            id: MessageId::from_uuid(UuidV7Generator.new_id()),
            conversation_id: conversation.id,
            sender,
            sender_id,
            content: MessageContent::trusted(content),
            attachments: Attachments::none(),
            suggestions: Vec::new(),
            client_message_id: None,
            reply_to: reply_to.map(|m| ReplyTo {
                message_id: m.id,
                seq: m.seq,
            }),
            timestamp: time,
            metadata: Metadata::default(),
        };
        self.store.append(&message).await.unwrap().into_message()
    }

    /// Archives a conversation in storage.
    pub async fn seed_archive(&self, conversation: &Conversation) {
        let change = ConversationChange {
            status: Some(ConversationStatus::Archived),
            ..ConversationChange::default()
        };
        self.store.update(conversation.id, &change).await.unwrap();
    }

    pub async fn ws(&self, token: &str) -> WsClient {
        let url = format!("ws://{}/ws?token={token}", self.address);
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("websocket connects");
        WsClient { stream }
    }
}

/// How long a client waits for a frame it expects before the test fails. A guard
/// against hanging, not a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A WebSocket client speaking JSON frames.
pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub async fn send_json(&mut self, frame: Value) {
        self.stream
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .expect("frame sent");
    }

    /// The next JSON frame; fails the test if the socket closed.
    pub async fn next_json(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a frame arrives in time");
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    return serde_json::from_str(&text).expect("JSON frame");
                }
                Some(Ok(WsMessage::Close(frame))) => panic!("socket closed: {frame:?}"),
                Some(Ok(_)) => continue,
                Some(Err(error)) => panic!("socket failed: {error}"),
                None => panic!("socket ended"),
            }
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

    /// Subscribes to a conversation by session id and waits for the acknowledgement.
    pub async fn subscribe(&mut self, session_id: &str) {
        self.send_json(json!({ "type": "subscribe", "session_id": session_id }))
            .await;
        let subscribed = self.next_of("subscribed").await;
        assert_eq!(subscribed["session_id"], session_id);
    }
}

/// A database that exists for one test and is removed after it.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _postgres: Option<confab_storage_seaorm::testing::PostgresTemp>,
}

impl TestDatabase {
    async fn create(backend: Backend) -> Self {
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
                    _postgres: None,
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
                    _postgres: Some(database),
                }
            }
        }
    }
}
