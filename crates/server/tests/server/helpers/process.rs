//! The real `confab` binary as a child process, and HTTP helpers that speak to it
//! and to an in-process server alike.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use crate::helpers::{PATIENCE, SECRET};

/// HTTP helpers shared by the in-process server and the binary.
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

/// The longest any one request of these helpers may take: past it the test fails with
/// a timeout instead of hanging the suite. Twice the server's own request time limit,
/// so that every answer the server gives arrives first.
const REQUEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Client {
    pub fn of(address: SocketAddr) -> Self {
        Self {
            base: format!("http://{address}"),
            http: reqwest::Client::builder()
                .timeout(REQUEST_LIMIT)
                .build()
                .expect("an HTTP client"),
        }
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("a POST")
    }

    pub async fn patch(&self, token: &str, path: &str, body: Value) -> reqwest::Response {
        self.http
            .patch(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("a PATCH")
    }

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("a GET")
    }

    pub async fn delete(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("a DELETE")
    }

    /// Starts a conversation with `bot` and a first message; returns its JSON.
    pub async fn start(&self, token: &str, bot: &str, text: &str) -> Value {
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

    /// Every message of a conversation, oldest first, read page by page.
    pub async fn messages(&self, token: &str, conversation: &str) -> Vec<Value> {
        let mut messages = Vec::new();
        let mut after = 0;
        loop {
            let response = self
                .get(
                    token,
                    &format!("/conversations/{conversation}/history?limit=100&after={after}"),
                )
                .await;
            assert_eq!(response.status(), 200);
            let page: Value = response.json().await.expect("a history body");
            let batch = page["messages"].as_array().expect("messages").clone();
            if let Some(last) = batch.last() {
                after = last["seq"].as_u64().expect("a seq");
            }
            messages.extend(batch);
            if !page["has_more"].as_bool().expect("has_more") {
                return messages;
            }
        }
    }

    /// The conversation's messages once every user message in it has an answer,
    /// failing the test if that takes longer than [`PATIENCE`].
    pub async fn answered_messages(&self, token: &str, conversation: &str) -> Vec<Value> {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let messages = self.messages(token, conversation).await;
            let questions = messages.iter().filter(|m| m["sender"] == "user").count();
            let answers = messages.iter().filter(|m| m["sender"] != "user").count();
            if answers >= questions {
                return messages;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {questions} messages still unanswered in {conversation}",
                questions - answers
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// A real `confab` process, killed when dropped.
pub struct Binary {
    pub child: std::process::Child,
    pub address: SocketAddr,
    /// The last [`LOG_TAIL`] lines the process logged, printed should the test fail
    /// while it runs: a fault test's failure is often explained only there.
    log_tail: Arc<Mutex<VecDeque<String>>>,
    /// The threads reading the process's stdout and stderr into `log_tail`.
    log_readers: Vec<std::thread::JoinHandle<()>>,
}

/// How many of its last log lines a [`Binary`] keeps.
const LOG_TAIL: usize = 500;

impl Binary {
    /// Starts the binary on `database_url` with a free port, and waits until its log
    /// says where it listens.
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[])
    }

    /// Starts the binary as [`Binary::start`] does, with `env` added.
    pub fn start_with(database_url: &str, env: &[(&str, &str)]) -> Self {
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
        let log_tail = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL)));
        let mut log_readers = Vec::new();
        // The log may go to stdout or stderr; both are read until the process ends,
        // so a full pipe never blocks it.
        for pipe in [
            Box::new(stdout) as Box<dyn std::io::Read + Send>,
            Box::new(stderr),
        ] {
            let found = found.clone();
            let log_tail = Arc::clone(&log_tail);
            log_readers.push(std::thread::spawn(move || {
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
                    let mut tail = log_tail.lock().unwrap_or_else(PoisonError::into_inner);
                    if tail.len() == LOG_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }));
        }
        let address = address
            .recv_timeout(PATIENCE)
            .expect("the binary logs its address");
        Self {
            child,
            address,
            log_tail,
            log_readers,
        }
    }

    /// The HTTP helpers for this process.
    pub fn client(&self) -> Client {
        Client::of(self.address)
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        self.child.kill().expect("the process is killed");
        self.child.wait().expect("the process ends");
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            // The pipes close with the process: the last lines are read once the
            // readers end.
            for reader in self.log_readers.drain(..) {
                let _ = reader.join();
            }
            let tail = self.log_tail.lock().unwrap_or_else(PoisonError::into_inner);
            eprintln!("--- the last {} lines of confab's log ---", tail.len());
            for line in tail.iter() {
                eprintln!("{line}");
            }
        }
    }
}
