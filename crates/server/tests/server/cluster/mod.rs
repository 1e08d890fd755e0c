//! Several real `confab` processes on one PostgreSQL database and NATS, as a
//! deployer runs them behind a load balancer: what one instance stores or streams
//! reaches sockets and SSE streams held by another, in order and once; an instance
//! killed with SIGKILL loses no acknowledged message and its unanswered messages
//! are answered exactly once by another after the lease; NATS stopping for a while
//! loses nothing either.
//!
//! # Layout
//! - `delivery`: a socket on A and SSE on B see what B stores and C streams.
//! - `bots`: a bot changed on one instance is read anew by the others.
//! - `failover`: kill -9 under load, and in the middle of a slow reply.
//! - `outage`: a NATS server of the test's own, stopped and started again.

mod bots;
mod delivery;
mod failover;
mod outage;

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    Backend, Binary, Client, PATIENCE, TestDatabase, WsClient, postgres_configured,
};

/// The NATS every cluster test uses unless it starts its own.
pub fn nats_url() -> String {
    std::env::var("CONFAB_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A short lease, so that a takeover after a kill happens within the test's
/// patience; the sweep runs four times per lease.
pub const TEST_LEASE: &str = "2s";

/// Instances of `confab` on one fresh PostgreSQL database, each with
/// `CONFAB_EVENTS__URL` set; killed when dropped.
pub struct Cluster {
    instances: Vec<Option<Binary>>,
    _database: TestDatabase,
}

impl Cluster {
    /// Starts `size` instances on the shared NATS; `None` (with a note) where
    /// PostgreSQL is not configured, as the other PostgreSQL tests do.
    pub async fn start(size: usize) -> Option<Self> {
        Self::start_on(size, &nats_url()).await
    }

    /// Starts `size` instances on the shared NATS, each with `extra` added to its
    /// environment.
    pub async fn start_with(size: usize, extra: &[(&str, &str)]) -> Option<Self> {
        Self::launch(size, &nats_url(), extra).await
    }

    /// Starts `size` instances using the NATS server at `nats`.
    pub async fn start_on(size: usize, nats: &str) -> Option<Self> {
        Self::launch(size, nats, &[]).await
    }

    async fn launch(size: usize, nats: &str, extra: &[(&str, &str)]) -> Option<Self> {
        if !postgres_configured() {
            return None;
        }
        let database = TestDatabase::create(Backend::Postgres).await;
        let url = database.url.clone();
        let nats = nats.to_owned();
        // The first start migrates the database; the rest start together, as the
        // replicas of a deployment do.
        let mut env: Vec<(String, String)> = vec![
            ("CONFAB_EVENTS__URL".to_owned(), nats),
            ("CONFAB_REPLY_LEASE".to_owned(), TEST_LEASE.to_owned()),
        ];
        env.extend(
            extra
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        );
        let instances = tokio::task::spawn_blocking(move || {
            let start = move |url: &str, env: &[(String, String)]| {
                let env: Vec<(&str, &str)> = env
                    .iter()
                    .map(|(key, value)| (key.as_str(), value.as_str()))
                    .collect();
                Binary::start_with(url, &env)
            };
            let mut instances = vec![Some(start(&url, &env))];
            let rest: Vec<_> = (1..size)
                .map(|_| {
                    let (url, env) = (url.clone(), env.clone());
                    std::thread::spawn(move || start(&url, &env))
                })
                .collect();
            for instance in rest {
                instances.push(Some(instance.join().expect("an instance starts")));
            }
            instances
        })
        .await
        .expect("instances start");
        let cluster = Self {
            instances,
            _database: database,
        };
        for index in 0..size {
            cluster.wait_until_ready(index, true).await;
        }
        Some(cluster)
    }

    /// Instance `index`'s address.
    pub fn address(&self, index: usize) -> SocketAddr {
        self.instances[index]
            .as_ref()
            .expect("the instance runs")
            .address
    }

    /// HTTP helpers for instance `index`.
    pub fn client(&self, index: usize) -> Client {
        Client::of(self.address(index))
    }

    /// A socket on instance `index`, past its `connected` status frame.
    pub async fn socket(&self, index: usize, token: &str) -> WsClient {
        let mut socket = WsClient::connect(self.address(index), token)
            .await
            .expect("a socket");
        socket.next_of("status").await;
        socket
    }

    /// A socket on instance `index` that follows the conversation of `session` from
    /// its first message, past the `subscribed` frame.
    pub async fn follower(&self, index: usize, token: &str, session: &str) -> WsClient {
        let mut socket = self.socket(index, token).await;
        socket
            .send_json(json!({"type": "subscribe", "session_id": session, "after_seq": 0}))
            .await;
        socket.next_of("subscribed").await;
        socket
    }

    /// Kills instance `index` with SIGKILL, as a crash would.
    pub fn kill(&mut self, index: usize) {
        self.instances[index]
            .take()
            .expect("the instance runs")
            .kill();
    }

    /// Waits until instance `index`'s `/readyz` says `ready` (200) or not (503).
    pub async fn wait_until_ready(&self, index: usize, ready: bool) {
        let url = format!("http://{}/readyz", self.address(index));
        let deadline = Instant::now() + PATIENCE;
        loop {
            let status = reqwest::get(&url).await.map(|r| r.status().as_u16()).ok();
            if status == Some(if ready { 200 } else { 503 }) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "instance {index} did not become {} (last: {status:?})",
                if ready { "ready" } else { "unready" }
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The Prometheus text of instance `index`.
    pub async fn metrics(&self, index: usize) -> String {
        reqwest::get(format!("http://{}/metrics", self.address(index)))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }
}

/// Starts a conversation of `token`'s user with `bot` on `client`'s instance;
/// returns `(conversation_id, session_id)`.
pub async fn start(client: &Client, token: &str, bot: &str) -> (String, String) {
    let response = client
        .post(token, "/conversations/start", json!({"bot_id": bot}))
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("a start body");
    (
        body["conversation_id"].as_str().expect("an id").to_owned(),
        body["session_id"].as_str().expect("a session").to_owned(),
    )
}

/// Sends `content` on `client`'s instance and returns the stored message's id.
pub async fn send(client: &Client, token: &str, conversation: &str, content: &str) -> String {
    let response = client
        .post(
            token,
            &format!("/conversations/{conversation}/messages"),
            json!({"content": content}),
        )
        .await;
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
    let body: Value = response.json().await.expect("a send body");
    body["message_id"].as_str().expect("an id").to_owned()
}

/// A NATS server of the test's own on a free port of 127.0.0.1, which the test may
/// stop and start again on the same port; killed when dropped.
pub struct NatsServer {
    port: u16,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self { port, child: None };
        server.resume();
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills it; clients see the connection drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn resume(&mut self) {
        let child = Command::new(nats_server_binary())
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (Debian package nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn nats_server_binary() -> &'static str {
    if std::path::Path::new("/usr/sbin/nats-server").exists() {
        "/usr/sbin/nats-server"
    } else {
        "nats-server"
    }
}
