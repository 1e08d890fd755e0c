//! The SQLite file's file system fills up under sends and empties again: sends are
//! refused with 503 `unavailable` (REST) or an `unavailable` error frame (WebSocket),
//! reads keep working, nothing refused is half written, and once space is back the
//! same process stores and answers again, without a restart.
//!
//! The full disk is a real one: a small tmpfs mounted for the test and filled with a
//! file, so that SQLite meets `ENOSPC` as it would on a full volume. Mounting needs
//! root (CI runs as root); elsewhere the test says loudly that it did not run.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait as _, DbBackend, Statement};
use serde_json::{Value, json};

use super::{Answers, Written, assert_intact, start_binary};
use crate::helpers::{Client, PATIENCE, WsClient, user};

/// The tmpfs: room for the migrated database and a few hundred messages.
const DISK_SIZE: &str = "8m";

/// Conversations written to.
const CONVERSATIONS: usize = 3;

/// Large sends tried at most before the disk must refuse them; 400 of 12 KiB are
/// more than the whole tmpfs.
const SENDS_UNTIL_FULL: usize = 400;

/// Refused sends in a row that show the disk is full.
const REFUSALS_IN_A_ROW: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_sends_with_503_keeps_what_was_stored_and_recovers_when_space_is_back()
{
    let Some(disk) = Tmpfs::mount(DISK_SIZE) else {
        return;
    };
    let url = format!(
        "sqlite://{}?mode=rwc",
        disk.path().join("confab.db").display()
    );
    let server = start_binary(&url).await;
    let client = server.client();
    let token = user("filler");
    let mut conversations = Vec::new();
    for n in 0..CONVERSATIONS {
        let started = client.start(&token, "echo", &format!("c{n} hello")).await;
        let id = started["conversation_id"].as_str().expect("an id");
        conversations.push((id.to_owned(), Written::default()));
    }
    for round in 0..3 {
        for (n, (conversation, written)) in conversations.iter_mut().enumerate() {
            let content = format!("c{n} before {round}");
            let sent = send(&client, &token, conversation, &content).await;
            assert_eq!(sent.0, 201, "{sent:?}");
            written.acknowledged.push((content, sent.1));
        }
    }

    let filler = disk.fill();
    // A full file system still takes a write that fits in space SQLite already
    // holds (the WAL is reused after each checkpoint), so sends are refused only
    // once that is used up: they go on until several in a row are.
    let padding = "x".repeat(12 * 1024);
    let mut refused = Vec::new();
    let mut refused_in_a_row = 0;
    for k in 0..SENDS_UNTIL_FULL {
        let n = k % CONVERSATIONS;
        let (conversation, written) = &mut conversations[n];
        let content = format!("c{n} big {k} {padding}");
        let (status, answer) = send(&client, &token, conversation, &content).await;
        if status == 201 {
            written.acknowledged.push((content, answer));
            refused_in_a_row = 0;
        } else {
            assert_eq!((status, answer.as_str()), (503, "unavailable"));
            refused.push(content);
            refused_in_a_row += 1;
            if refused_in_a_row == REFUSALS_IN_A_ROW {
                break;
            }
        }
    }
    assert_eq!(refused_in_a_row, REFUSALS_IN_A_ROW, "the disk never filled");
    // Reads need no space.
    for (conversation, _) in &conversations {
        client.messages(&token, conversation).await;
    }
    let mut socket = WsClient::connect(server.address, &token)
        .await
        .expect("a socket");
    socket.next_of("status").await;
    // Space SQLite holds comes free again when a checkpoint has copied the WAL back
    // (the writer has one run in the background), so the socket may store a few more
    // before the disk refuses it too.
    let mut socket_refused = false;
    for k in 0..SENDS_UNTIL_FULL {
        let content = format!("c0 by socket {k} {padding}");
        let client_id = format!("by-socket-{k}");
        socket
            .send_json(
                json!({"type": "message", "conversation_id": conversations[0].0,
                              "content": content, "client_message_id": client_id}),
            )
            .await;
        let answer = loop {
            let frame = socket.next_json().await;
            if frame["type"] == "error" || frame["client_message_id"] == client_id.as_str() {
                break frame;
            }
        };
        if answer["type"] == "error" {
            assert_eq!(answer["code"], "unavailable", "{answer}");
            assert_eq!(answer["ref"], client_id.as_str(), "{answer}");
            refused.push(content);
            socket_refused = true;
            break;
        }
        let id = answer["id"].as_str().expect("an id").to_owned();
        conversations[0].1.acknowledged.push((content, id));
    }
    assert!(socket_refused, "the socket's sends were all stored");

    drop(filler);
    // The same process stores again: each conversation takes a message, and the
    // work that waited (replies to messages stored just before the disk filled)
    // resumes behind it.
    for (n, (conversation, written)) in conversations.iter_mut().enumerate() {
        let content = format!("c{n} after");
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (status, answer) = send(&client, &token, conversation, &content).await;
            if status == 201 {
                written.acknowledged.push((content, answer));
                break;
            }
            assert_eq!((status, answer.as_str()), (503, "unavailable"));
            assert!(Instant::now() < deadline, "sends are still refused");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for (conversation, written) in &conversations {
        let messages = client.answered_messages(&token, conversation).await;
        assert_intact(&messages, written, Answers::ByTheBot);
        for content in &refused {
            assert!(
                messages.iter().all(|m| m["content"] != content.as_str()),
                "a refused message is stored: {}",
                &content[..20]
            );
        }
    }
    drop(server);
    assert_eq!(integrity_check(&url).await, "ok");
}

/// Sends `content`, with its first 24 bytes as the `client_message_id` so that a
/// retry stores nothing twice; answers the status and the stored message's id (201)
/// or the problem's code.
async fn send(client: &Client, token: &str, conversation: &str, content: &str) -> (u16, String) {
    let client_id = &content[..content.len().min(24)];
    let response = client
        .post(
            token,
            &format!("/conversations/{conversation}/messages"),
            json!({"content": content, "client_message_id": client_id}),
        )
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON body");
    let answer = if status == 201 {
        body["message_id"].as_str().expect("an id")
    } else {
        body["code"].as_str().expect("a problem code")
    };
    (status, answer.to_owned())
}

/// SQLite's own check of the file, once the server is gone.
async fn integrity_check(url: &str) -> String {
    let db = confab_storage_seaorm::connect(url)
        .await
        .expect("the file opens");
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA integrity_check",
        ))
        .await
        .expect("the check runs")
        .expect("a row");
    let verdict: String = row.try_get("", "integrity_check").expect("the verdict");
    db.close().await.expect("closed");
    verdict
}

/// A tmpfs of the test's own, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of `size` (as `mount -o size=` reads it) on a fresh directory;
    /// `None`, with a note, when not running as root.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a mount point");
        let root = std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == 0);
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            assert!(!root, "running as root, yet a tmpfs could not be mounted");
            eprintln!(
                "NOTE: not root, so no tmpfs could be mounted: the full-disk test did NOT run"
            );
            return None;
        }
        Some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the file system has no room left; removing the file
    /// (dropping the guard) gives the room back.
    fn fill(&self) -> Filler {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("the filler");
        // Large chunks first, then pages, until each is refused; the tmpfs bounds
        // the loop, the count only guards against a file system that never fills.
        for chunk in [64 * 1024, 4 * 1024, 512] {
            let bytes = vec![0_u8; chunk];
            for _ in 0..100_000 {
                if file.write_all(&bytes).and_then(|()| file.flush()).is_err() {
                    break;
                }
            }
        }
        Filler(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            // Still busy (a process that has not quite ended): detach it now, the
            // kernel frees it once the last file closes.
            let _ = Command::new("umount")
                .arg("--lazy")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// The file that fills the disk; removed when dropped.
struct Filler(PathBuf);

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
