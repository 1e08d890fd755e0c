//! Graceful shutdown of the real binary: on SIGTERM open WebSockets are closed with
//! 1001, an in-flight `?wait=true` request completes with its reply, the process
//! exits 0, and what was sent is stored.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Backend, PATIENCE, Received, SECRET, TestDatabase, WsClient, spawn_app_on};
use crate::ops::helpers::confab;

/// Starts `confab serve` on port 0 and reads the bound address from its JSON log; the
/// rest of the log is drained by a thread so the child never blocks on a full pipe.
fn spawn_confab(database_url: &str) -> (Running, SocketAddr, std::sync::mpsc::Receiver<String>) {
    let child = confab()
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--database-url", database_url])
        .env("CONFAB_JWT_SECRET", SECRET)
        .env("CONFAB_SHUTDOWN_GRACE", "20s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let stderr = child.0.stderr.take().unwrap();
    let (lines, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + PATIENCE;
    loop {
        let line = log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("confab logs that it listens");
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            panic!("a log line that is not JSON: {line}");
        };
        if entry["fields"]["message"] == "confab is listening" {
            let address = entry["fields"]["address"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            return (child, address, log);
        }
    }
}

/// The child process; killed and reaped if the test ends before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_for_exit(child: &mut Running) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "confab did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_1001_finishes_requests_and_exits_cleanly() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let (mut child, address, log) = spawn_confab(&database.url);
    let http = reqwest::Client::new();
    let base = format!("http://{address}");

    let guest: Value = http
        .post(format!("{base}/auth/guest"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = guest["token"].as_str().unwrap().to_owned();
    let started: Value = http
        .post(format!("{base}/conversations/start"))
        .bearer_auth(&token)
        .json(&json!({ "bot_id": "echo-stream" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conversation = started["conversation_id"].as_str().unwrap().to_owned();
    let session = started["session_id"].clone();

    let mut socket = WsClient::connect(address, &token).await.unwrap();
    socket
        .send_json(json!({ "type": "subscribe", "session_id": session }))
        .await;
    socket.next_of("subscribed").await;

    // A reply that streams for a while (40 ms a word), awaited by the request.
    let content = vec!["word"; 30].join(" ");
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = format!("{base}/conversations/{conversation}/messages?wait=true");
        let token = token.clone();
        let content = content.clone();
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({ "content": content }))
                .send()
                .await
        }
    });
    // The request is in flight once its message is stored and the bot streams.
    socket.next_of("message").await;
    socket.next_of("delta").await;

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    let close = loop {
        match socket.receive().await {
            Received::Frame(_) => {}
            Received::Closed(frame) => break frame.map(|frame| u16::from(frame.code)),
        }
    };
    assert_eq!(close, Some(1001));

    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    let replies = body["replies"].as_array().unwrap();
    assert_eq!(replies.len(), 1, "{body}");
    assert_eq!(replies[0]["content"].as_str(), Some(content.as_str()));

    let status = tokio::task::spawn_blocking(move || wait_for_exit(&mut child))
        .await
        .unwrap();
    let log: Vec<String> = log.try_iter().collect();
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        log.join("\n")
    );

    // What was sent and answered is stored: a new server on the file shows it.
    let restarted = spawn_app_on(database, |_| {}).await;
    let history: Value = restarted
        .history(&token, &conversation, "")
        .await
        .json()
        .await
        .unwrap();
    let stored: Vec<(&str, &str)> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["sender"].as_str().unwrap(),
                m["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        stored,
        vec![("user", content.as_str()), ("bot", content.as_str())]
    );
    restarted.stop().await;
}
