//! Servers for the bot tests: in process on a temporary SQLite file, or the real
//! `confab` binary; tokens minted with the test secret; a few HTTP helpers.

#![allow(dead_code)] // Each module uses a different subset of helpers.

use std::net::SocketAddr;
use std::time::Duration;

use confab_api_axum::Auth;
use confab_domain::user::{Role, UserId};
use confab_server::{App, Config};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The token signing secret of every test server.
pub(crate) const SECRET: &str = "bots-test-secret-bots-test-secret";

/// How long a test waits for something it expects before failing: a guard against
/// hanging, not a performance assertion.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// A server running in this process on a temporary SQLite file.
pub(crate) struct TestApp {
    pub(crate) address: SocketAddr,
    pub(crate) http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    _postgres: Option<confab_storage_seaorm::testing::PostgresTemp>,
}

/// Starts a server; `configure` changes its configuration first.
pub(crate) async fn spawn_app(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("confab.db").display()
        ),
        jwt_secret: Some(SECRET.to_owned()),
        ..Config::default()
    };
    configure(&mut config);
    serve(config, dir, None).await
}

/// Starts a server on a fresh PostgreSQL database of the server named by
/// `CONFAB_TEST_POSTGRES_URL`; `None` (and a note) when it is not set.
pub(crate) async fn spawn_app_on_postgres(configure: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let Ok(admin_url) = std::env::var("CONFAB_TEST_POSTGRES_URL") else {
        eprintln!("CONFAB_TEST_POSTGRES_URL is not set; PostgreSQL not tested");
        return None;
    };
    let database = confab_storage_seaorm::testing::postgres_temp(&admin_url)
        .await
        .expect("a test database");
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: database.url().to_owned(),
        jwt_secret: Some(SECRET.to_owned()),
        ..Config::default()
    };
    configure(&mut config);
    let dir = tempfile::tempdir().expect("a temp dir");
    Some(serve(config, dir, Some(database)).await)
}

async fn serve(
    config: Config,
    dir: tempfile::TempDir,
    postgres: Option<confab_storage_seaorm::testing::PostgresTemp>,
) -> TestApp {
    let app = App::build(config).await.expect("the server builds");
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
        _dir: dir,
        _postgres: postgres,
    }
}

/// A token for `user` with `role`.
pub(crate) fn token(user: &str, role: Role) -> String {
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
pub(crate) fn admin() -> String {
    token("root", Role::Admin)
}

/// An end user's token.
pub(crate) fn user(name: &str) -> String {
    token(name, Role::User)
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Stops the server gracefully.
    pub(crate) async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task")
                .expect("the server stops cleanly");
        }
    }

    pub(crate) async fn ws(&self, token: &str) -> WsClient {
        WsClient::connect(self.address, token).await
    }
}

/// HTTP helpers shared by the in-process server and the binary.
pub(crate) struct Client {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
}

impl Client {
    pub(crate) fn of(address: SocketAddr) -> Self {
        Self {
            base: format!("http://{address}"),
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn post(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("a POST")
    }

    pub(crate) async fn patch(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("a PATCH")
    }

    pub(crate) async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("a GET")
    }

    pub(crate) async fn delete(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("a DELETE")
    }

    /// Starts a conversation with `bot` and a first message; returns its JSON.
    pub(crate) async fn start(&self, token: &str, bot: &str, text: &str) -> Value {
        let response = self
            .post(
                token,
                "/conversations/start",
                json!({"bot_id": bot, "initial_message": text}),
            )
            .await;
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        response.json().await.expect("a start body")
    }

    /// Every message of a conversation, oldest first (at most 100).
    pub(crate) async fn messages(&self, token: &str, conversation: &str) -> Vec<Value> {
        let response = self
            .get(
                token,
                &format!("/conversations/{conversation}/history?limit=100"),
            )
            .await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.expect("a history body");
        page["messages"].as_array().expect("messages").clone()
    }
}

/// A WebSocket client speaking JSON frames.
pub(crate) struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl WsClient {
    pub(crate) async fn connect(address: SocketAddr, token: &str) -> Self {
        let (stream, _) =
            tokio_tungstenite::connect_async(format!("ws://{address}/ws?token={token}"))
                .await
                .expect("the WebSocket connects");
        Self { stream }
    }

    pub(crate) async fn send_json(&mut self, frame: Value) {
        self.stream
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .expect("a frame sent");
    }

    /// The next JSON frame; fails the test when the socket closes or is silent.
    pub(crate) async fn next_json(&mut self) -> Value {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a frame arrives in time");
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    return serde_json::from_str(&text).expect("a JSON frame");
                }
                Some(Ok(WsMessage::Close(frame))) => panic!("the socket closed: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("the socket failed: {error}"),
                None => panic!("the socket ended"),
            }
        }
    }

    /// Frames until (and including) the first stored message sent by the bot.
    pub(crate) async fn until_bot_message(&mut self) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next_json().await;
            let done = frame["type"] == "message" && frame["sender"] == "bot";
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }
}

/// A real `confab` process on a SQLite file, killed when dropped.
pub(crate) struct Binary {
    pub(crate) child: std::process::Child,
    pub(crate) address: SocketAddr,
}

impl Binary {
    /// Starts the binary on `database_url` with a free port, and waits until its log
    /// says where it listens.
    pub(crate) fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    /// Starts the binary as [`Binary::start`] does, with `env` added.
    pub(crate) fn start_with(database_url: &str, env: &[(&str, &str)]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
            .envs(env.iter().copied())
            .env("CONFAB_LISTEN", "127.0.0.1:0")
            .env("CONFAB_DATABASE_URL", database_url)
            .env("CONFAB_JWT_SECRET", SECRET)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (found, address) = std::sync::mpsc::channel();
        // The log may go to stdout or stderr; both are read until the process ends,
        // so a full pipe never blocks it.
        for pipe in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let found = found.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    if line.contains("confab is listening")
                        && let Some(at) = line.find("127.0.0.1:")
                    {
                        let port: String = line[at + 10..]
                            .chars()
                            .take_while(char::is_ascii_digit)
                            .collect();
                        if let Ok(port) = port.parse::<u16>() {
                            let _ = found.send(SocketAddr::from(([127, 0, 0, 1], port)));
                        }
                    }
                }
            });
        }
        let address = address
            .recv_timeout(PATIENCE)
            .expect("the binary logs its address");
        Self { child, address }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub(crate) fn kill(mut self) {
        self.child.kill().expect("the process is killed");
        self.child.wait().expect("the process ends");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
