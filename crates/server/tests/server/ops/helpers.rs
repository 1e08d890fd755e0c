//! The harness: an in-process server on a fresh SQLite file (or a given database),
//! the `confab` binary as a child process, and small HTTP and WebSocket helpers.

#![allow(dead_code)] // Each module uses a different subset of helpers.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use confab_server::{App, Config};
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The signing secret of in-process servers.
pub const SECRET: &str = "ops-test-secret-ops-test-secret-ops";

/// How long a client waits for something it expects before the test fails. A guard
/// against hanging, not a performance assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub fn postgres_url() -> Option<String> {
    std::env::var("CONFAB_TEST_POSTGRES_URL").ok()
}

/// A server running in this process.
pub struct TestApp {
    pub address: SocketAddr,
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
}

/// A server on a fresh SQLite file, configured by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("confab.db").display()
    );
    let mut app = spawn_app_on(&url, configure).await;
    app._dir = Some(dir);
    app
}

/// A server on the database at `url`.
pub async fn spawn_app_on(url: &str, configure: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: url.to_owned(),
        jwt_secret: Some(SECRET.to_owned()),
        ..Config::default()
    };
    configure(&mut config);
    let app = App::build(config).await.expect("server builds");
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
        _dir: None,
    }
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

    pub async fn guest_token(&self) -> String {
        let response = self
            .http
            .post(self.url("/auth/guest"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    pub async fn start(&self, token: &str, bot: &str) -> reqwest::Response {
        self.http
            .post(self.url("/conversations/start"))
            .bearer_auth(token)
            .json(&json!({ "bot_id": bot }))
            .send()
            .await
            .unwrap()
    }

    /// Starts a conversation with the echo bot and returns its id and session id.
    pub async fn started(&self, token: &str) -> (String, String) {
        let response = self.start(token, "echo").await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        (
            body["conversation_id"].as_str().unwrap().to_owned(),
            body["session_id"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn send(&self, token: &str, conversation: &str, content: &str) -> reqwest::Response {
        self.send_query(token, conversation, content, "").await
    }

    pub async fn send_query(
        &self,
        token: &str,
        conversation: &str,
        content: &str,
        query: &str,
    ) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/conversations/{conversation}/messages{query}")))
            .bearer_auth(token)
            .json(&json!({ "content": content }))
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.get("/metrics").await;
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    pub async fn ws(&self, token: &str) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        ws_connect(self.address, token).await
    }
}

pub async fn ws_connect(
    address: SocketAddr,
    token: &str,
) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
    let url = format!("ws://{address}/ws?token={token}");
    let (stream, _) = tokio_tungstenite::connect_async(url).await?;
    Ok(WsClient { stream })
}

/// The value of the sample `name{labels}` in Prometheus text, 0 when absent.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(key, value)| series_labels.contains(&format!("{key}=\"{value}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

/// A WebSocket client speaking JSON frames.
pub struct WsClient {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a socket received next.
#[derive(Debug)]
pub enum Received {
    Frame(Value),
    Closed(Option<u16>),
}

impl WsClient {
    pub async fn send_json(&mut self, frame: Value) {
        use futures::SinkExt as _;
        self.stream
            .send(WsMessage::Text(frame.to_string().into()))
            .await
            .unwrap();
    }

    /// The next text frame or the close, skipping pings.
    pub async fn receive(&mut self) -> Received {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("a frame in time");
            match next {
                Some(Ok(WsMessage::Text(text))) => {
                    return Received::Frame(serde_json::from_str(&text).unwrap());
                }
                Some(Ok(WsMessage::Close(frame))) => {
                    return Received::Closed(frame.map(|frame| u16::from(frame.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Received::Closed(None),
            }
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str) -> Value {
        for _ in 0..1000 {
            match self.receive().await {
                Received::Frame(frame) if frame["type"] == kind => return frame,
                Received::Frame(_) => {}
                Received::Closed(code) => panic!("closed ({code:?}) while waiting for {kind}"),
            }
        }
        panic!("no {kind} frame in 1000 frames");
    }
}

/// The `confab` binary with no `CONFAB_*` variables from the test's environment.
pub fn confab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONFAB_") {
            command.env_remove(key);
        }
    }
    command
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    command
}
