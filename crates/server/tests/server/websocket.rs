//! The WebSocket protocol at `/ws`, with real tokio-tungstenite clients over TCP.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{Backend, Received, WsClient, spawn_app, spawn_app_with};
use crate::on_every_backend;

on_every_backend!(
    the_seeds_client_sends_by_session_and_reads_the_reply_content,
    a_conversation_can_be_started_over_the_socket,
    two_sockets_of_one_user_both_see_each_message_once,
    a_socket_that_unsubscribed_follows_again_live_when_it_sends,
    another_users_socket_sees_nothing_and_gets_not_found,
    resuming_after_a_forced_disconnect_loses_and_duplicates_nothing,
    a_streamed_reply_arrives_as_deltas_then_the_stored_message,
    bad_frames_get_error_frames_keep_the_socket_and_store_nothing,
);

async fn the_seeds_client_sends_by_session_and_reads_the_reply_content(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;
    let conversation = app.started(&token, "echo").await;
    let mut ws = app.ws(&token).await;
    let connected = ws.next_json().await;
    assert_eq!(connected["type"], "status");
    assert_eq!(connected["status"], "connected");

    ws.send_json(json!({
        "type": "message",
        "content": "Hello",
        "session_id": conversation["session_id"],
    }))
    .await;

    let own = ws.next_of("message").await;
    assert_eq!(own["sender"], "user");
    assert_eq!(own["content"], "Hello");
    assert_eq!(own["seq"], 1);
    assert_eq!(own["session_id"], conversation["session_id"]);
    let reply = ws.next_of("message").await;
    assert_eq!(reply["sender"], "bot");
    assert_eq!(reply["content"], "Hello");
    assert_eq!(reply["seq"], 2);
    assert_eq!(reply["reply_to"], own["id"]);
}

async fn a_conversation_can_be_started_over_the_socket(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;
    let mut ws = app.ws(&token).await;
    ws.send_json(json!({ "type": "start", "bot_id": "echo", "initial_message": "hi there" }))
        .await;
    let started = ws.next_of("started").await;
    assert_eq!(started["status"], "active");
    let first = ws.next_of("message").await;
    assert_eq!(
        (first["sender"].as_str(), first["content"].as_str()),
        (Some("user"), Some("hi there"))
    );
    let reply = ws.next_of("message").await;
    assert_eq!(
        (reply["sender"].as_str(), reply["content"].as_str()),
        (Some("bot"), Some("hi there"))
    );
    assert_eq!(reply["conversation_id"], started["conversation_id"]);

    ws.send_json(json!({ "type": "start", "bot_id": "no-such-bot", "ref": "r1" }))
        .await;
    let error = ws.next_of("error").await;
    assert_eq!(error["code"], "not_found");
    assert_eq!(error["ref"], "r1");
}

async fn two_sockets_of_one_user_both_see_each_message_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;
    let conversation = app.started(&token, "echo").await;
    let session = conversation["session_id"].clone();
    let mut tabs = [app.ws(&token).await, app.ws(&token).await];
    for tab in &mut tabs {
        tab.send_json(json!({ "type": "subscribe", "session_id": session, "after_seq": 0 }))
            .await;
        assert_eq!(tab.next_of("subscribed").await["last_seq"], 0);
    }
    for n in 0..5 {
        tabs[0]
            .send_json(
                json!({ "type": "message", "session_id": session, "content": format!("m{n}") }),
            )
            .await;
    }
    for tab in &mut tabs {
        let seqs = collect_message_seqs(tab, 10).await;
        assert_eq!(seqs, (1..=10).collect::<Vec<u64>>());
        // Nothing more: no duplicate arrives before the pong.
        let extra = messages_until_pong(tab).await;
        assert!(extra.is_empty(), "duplicates: {extra:?}");
    }
}

async fn a_socket_that_unsubscribed_follows_again_live_when_it_sends(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;
    let conversation = app.started(&token, "echo").await;
    let id = conversation["conversation_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let session = conversation["session_id"].clone();
    let mut ws = app.ws(&token).await;
    ws.send_json(json!({ "type": "subscribe", "session_id": session, "after_seq": 0 }))
        .await;
    ws.next_of("subscribed").await;
    ws.send_json(json!({ "type": "message", "session_id": session, "content": "one" }))
        .await;
    assert_eq!(collect_message_seqs(&mut ws, 2).await, [1, 2]);

    ws.send_json(json!({ "type": "unsubscribe", "session_id": session }))
        .await;
    // Frames are handled in order: once the pong is back, the socket follows nothing.
    assert!(messages_until_pong(&mut ws).await.is_empty());
    let sent = app
        .send_query(&token, &id, "?wait=true", json!({ "content": "two" }))
        .await;
    assert_eq!(sent.status(), 201);
    let sent: Value = sent.json().await.expect("sent body");
    assert_eq!(sent["replies"].as_array().map(Vec::len), Some(1), "{sent}");
    // Seq 3 and 4 may still be on their way to a socket that wrongly follows; the seq
    // of the next acknowledgement below tells for sure.
    let unfollowed = messages_until_pong(&mut ws).await;
    assert!(
        unfollowed.is_empty(),
        "sent while unsubscribed: {unfollowed:?}"
    );

    // Sending follows again, live from there: the socket's own message comes back as
    // its acknowledgement, then the reply, and nothing of what it missed.
    ws.send_json(json!({ "type": "message", "session_id": session, "content": "three" }))
        .await;
    let own = ws.next_of("message").await;
    assert_eq!(
        (own["seq"].as_u64(), own["content"].as_str()),
        (Some(5), Some("three"))
    );
    let reply = ws.next_of("message").await;
    assert_eq!(
        (reply["seq"].as_u64(), reply["reply_to"].clone()),
        (Some(6), own["id"].clone())
    );
    let extra = messages_until_pong(&mut ws).await;
    assert!(extra.is_empty(), "duplicates or missed messages: {extra:?}");
}

async fn another_users_socket_sees_nothing_and_gets_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = app.guest_token().await;
    let stranger = app.guest_token().await;
    let conversation = app.started(&owner, "echo").await;
    let session = conversation["session_id"].clone();
    let mut watcher = app.ws(&stranger).await;
    watcher.next_of("status").await;

    watcher
        .send_json(json!({ "type": "subscribe", "session_id": session, "after_seq": 0 }))
        .await;
    assert_eq!(watcher.next_of("error").await["code"], "not_found");
    watcher
        .send_json(json!({ "type": "message", "session_id": session, "content": "intrude" }))
        .await;
    assert_eq!(watcher.next_of("error").await["code"], "not_found");
    watcher
        .send_json(json!({ "type": "message", "conversation_id": conversation["conversation_id"], "content": "intrude" }))
        .await;
    assert_eq!(watcher.next_of("error").await["code"], "not_found");

    let mut own = app.ws(&owner).await;
    own.send_json(json!({ "type": "message", "session_id": session, "content": "private" }))
        .await;
    collect_message_seqs(&mut own, 2).await;
    let seen = watcher.frames_until_pong().await;
    assert!(seen.is_empty(), "the stranger saw {seen:?}");
    let stored = app
        .all_messages(&owner, conversation["conversation_id"].as_str().unwrap())
        .await;
    assert_eq!(
        stored.len(),
        2,
        "only the owner's message and its reply are stored"
    );
}

async fn resuming_after_a_forced_disconnect_loses_and_duplicates_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;
    let conversation = app.started(&token, "echo").await;
    let id = conversation["conversation_id"].as_str().unwrap().to_owned();
    let session = conversation["session_id"].clone();

    let mut reader = app.ws(&token).await;
    reader
        .send_json(json!({ "type": "subscribe", "session_id": session, "after_seq": 0 }))
        .await;
    reader.next_of("subscribed").await;

    // A second client keeps sending over REST while the reader drops and comes back.
    let writer = {
        let http = app.http.clone();
        let url = app.url(&format!("/conversations/{id}/messages"));
        let token = token.clone();
        tokio::spawn(async move {
            for n in 0..40 {
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "content": format!("message {n}") }))
                    .send()
                    .await
                    .expect("send");
                assert_eq!(response.status(), 201);
                tokio::task::yield_now().await;
            }
        })
    };

    let mut seen: Vec<u64> = collect_message_seqs(&mut reader, 10).await;
    // Forced disconnect: the TCP connection goes away without a close handshake.
    drop(reader);
    let mut resumed = app.ws(&token).await;
    let last = *seen.last().unwrap();
    resumed
        .send_json(json!({ "type": "subscribe", "session_id": session, "after_seq": last }))
        .await;
    writer.await.expect("writer finished");
    // 40 user messages and 40 replies.
    let remaining = 80 - seen.len();
    seen.extend(collect_message_seqs(&mut resumed, remaining).await);
    assert_eq!(seen, (1..=80).collect::<Vec<u64>>());
    let extra = messages_until_pong(&mut resumed).await;
    assert!(extra.is_empty(), "duplicates after resume: {extra:?}");
}

async fn a_streamed_reply_arrives_as_deltas_then_the_stored_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;
    let conversation = app.started(&token, "echo-stream").await;
    let mut ws = app.ws(&token).await;
    ws.send_json(json!({
        "type": "message",
        "session_id": conversation["session_id"],
        "content": "one two three four",
    }))
    .await;
    let mut deltas = Vec::new();
    let mut typing = Vec::new();
    let reply = loop {
        let frame = ws.next_json().await;
        match frame["type"].as_str() {
            Some("delta") => deltas.push(frame),
            Some("typing") => typing.push(frame["active"].as_bool().unwrap()),
            Some("message") if frame["sender"] == "bot" => break frame,
            _ => {}
        }
    };
    assert_eq!(reply["content"], "one two three four");
    assert_eq!(deltas.len(), 4);
    let text: String = deltas
        .iter()
        .map(|d| d["content"].as_str().unwrap())
        .collect();
    assert_eq!(text, "one two three four");
    for (index, delta) in deltas.iter().enumerate() {
        assert_eq!(delta["index"], index);
        assert_eq!(delta["reply_id"], reply["id"]);
    }
    assert_eq!(typing, [true]);
    assert_eq!(ws.next_of("typing").await["active"], false);
}

async fn bad_frames_get_error_frames_keep_the_socket_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.guest_token().await;
    let stranger = app.guest_token().await;
    let conversation = app.started(&token, "echo").await;
    let foreign = app.started(&stranger, "echo").await;
    let session = conversation["session_id"].clone();
    let mut ws = app.ws(&token).await;
    ws.next_of("status").await;

    let cases: Vec<(String, &str)> = vec![
        (json!({ "type": "message", "session_id": session, "content": "x".repeat(65 * 1024) }).to_string(), "payload_too_large"),
        ("{not json".to_owned(), "invalid_request"),
        (json!({ "type": "dance" }).to_string(), "invalid_request"),
        (json!({ "type": "message", "content": 5, "session_id": session }).to_string(), "invalid_request"),
        (json!({ "type": "message", "content": "no target" }).to_string(), "invalid_request"),
        (json!({ "type": "message", "session_id": "not-a-uuid", "content": "x" }).to_string(), "invalid_request"),
        (json!({ "type": "message", "session_id": "0193a0f0-0000-7000-8000-000000000001", "content": "x" }).to_string(), "not_found"),
        (json!({ "type": "message", "session_id": foreign["session_id"], "content": "x" }).to_string(), "not_found"),
        (json!({ "type": "message", "session_id": session, "content": "   " }).to_string(), "invalid_request"),
        (json!({ "type": "message", "session_id": session, "content": "x", "attachments": [{ "type": "file", "url": "ftp://example.com/a" }] }).to_string(), "invalid_request"),
    ];
    for (frame, code) in cases {
        ws.send_text(frame.clone()).await;
        let error = ws.next_of("error").await;
        assert_eq!(
            error["code"],
            code,
            "for frame {}",
            &frame[..frame.len().min(120)]
        );
        // The socket stays open and usable.
        assert!(ws.frames_until_pong().await.is_empty());
    }
    for id in [&conversation, &foreign] {
        let owner = if std::ptr::eq(id, &conversation) {
            &token
        } else {
            &stranger
        };
        let stored = app
            .all_messages(owner, id["conversation_id"].as_str().unwrap())
            .await;
        assert!(stored.is_empty(), "bad frames stored {stored:?}");
    }
}

#[tokio::test]
async fn a_bad_token_is_refused_with_401_before_the_upgrade() {
    let app = spawn_app(Backend::Sqlite).await;
    for url in [
        format!("ws://{}/ws?token=forged", app.address),
        format!("ws://{}/ws", app.address),
    ] {
        let error = tokio_tungstenite::connect_async(url)
            .await
            .expect_err("refused");
        match error {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                assert_eq!(response.status(), 401);
            }
            other => panic!("expected an HTTP 401, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_keeps_sending_garbage_is_closed_with_1008() {
    let app = spawn_app(Backend::Sqlite).await;
    let token = app.guest_token().await;
    let mut ws = app.ws(&token).await;
    for _ in 0..10 {
        ws.send_text("garbage".to_owned()).await;
    }
    let close = loop {
        match ws.receive().await {
            Received::Frame(_) => continue,
            Received::Closed(frame) => break frame,
        }
    };
    assert_eq!(close.expect("close frame").code, CloseCode::Policy);
}

#[tokio::test]
async fn a_silent_peer_is_dropped_after_the_idle_timeout() {
    let app = spawn_app_with(Backend::Sqlite, |config| {
        config.ws.idle_timeout = Duration::from_millis(300);
        config.ws.ping_interval = Duration::from_secs(3600);
    })
    .await;
    let token = app.guest_token().await;
    let mut ws = app.ws(&token).await;
    ws.next_of("status").await;
    match ws.receive().await {
        Received::Closed(frame) => assert_eq!(frame.expect("close frame").code, CloseCode::Away),
        Received::Frame(frame) => panic!("expected a close, got {frame}"),
    }
}

#[tokio::test]
async fn a_stalled_reader_is_closed_and_fast_readers_get_everything() {
    const SEND_TIMEOUT: Duration = Duration::from_secs(2);
    let app = spawn_app_with(Backend::Sqlite, |config| {
        // Generous for the fast readers on a busy machine; the stalled one never reads.
        config.ws.queue_capacity = 16;
        config.ws.send_timeout = SEND_TIMEOUT;
        // The stalled peer cannot take the close frame: its socket goes soon after.
        config.ws.close_grace = Duration::from_millis(100);
        // The stalled socket and the two fast ones. A fourth is let in only once the
        // server has dropped the stalled one, which tells the test when to read.
        config.limits.sockets_per_user = 3;
    })
    .await;
    let token = app.guest_token().await;
    let conversation = app.started(&token, "echo").await;
    let session = conversation["session_id"].clone();

    let mut stalled = stalled_client(&app, &token).await;
    stalled
        .send_json(json!({ "type": "subscribe", "session_id": session, "after_seq": 0 }))
        .await;
    // Fast clients read as they go, each in a task of its own.
    const SENT: usize = 300;
    let mut readers = Vec::new();
    for _ in 0..2 {
        let mut client = app.ws(&token).await;
        client
            .send_json(json!({ "type": "subscribe", "session_id": session, "after_seq": 0 }))
            .await;
        client.next_of("subscribed").await;
        // Each reader hands its socket back, so that it keeps its slot.
        readers.push(tokio::spawn(async move {
            let seqs = collect_message_seqs(&mut client, 2 * SENT).await;
            (seqs, client)
        }));
    }
    // Large messages, more than loopback's socket buffers hold (they grow to a few
    // MiB), so the stalled client's queue must overflow.
    let content = "z".repeat(16 * 1024);
    let id = conversation["conversation_id"].as_str().unwrap();
    for _ in 0..SENT {
        let response = app.send(&token, id, json!({ "content": content })).await;
        assert_eq!(response.status(), 201);
    }
    let mut fast = Vec::new();
    for reader in readers {
        let (seqs, client) = reader.await.expect("reader");
        assert_eq!(seqs, (1..=2 * SENT as u64).collect::<Vec<u64>>());
        fast.push(client);
    }
    // The stalled socket's queue filled during the sends, which can end before the
    // server's send timeout runs out. Reading now would drain the queue and keep the
    // socket open, so stay stalled until the server gave up on it: the send timeout,
    // then `close_grace`, after which its slot is free again.
    let probe = socket_when_a_slot_frees(&app, &token).await;
    drop(probe);
    // The stalled client now reads: it finds some frames, then the server's close.
    let mut closed_with = None;
    let mut frames = 0;
    while let Some(item) = tokio::time::timeout(crate::helpers::PATIENCE, stalled.stream.next())
        .await
        .expect("the stalled socket ends in time")
    {
        match item {
            Ok(tokio_tungstenite::tungstenite::Message::Close(frame)) => {
                closed_with = frame.map(|f| f.code);
                break;
            }
            Ok(_) => frames += 1,
            Err(_) => break,
        }
    }
    assert!(frames < 2 * SENT, "the stalled client was not cut off");
    if let Some(code) = closed_with {
        assert_eq!(code, CloseCode::Again);
    }
    drop(fast);
}

/// A socket of the token's user, opened as soon as the server lets one in: each try
/// is refused with 429 while the user holds every slot.
async fn socket_when_a_slot_frees(app: &crate::helpers::TestApp, token: &str) -> WsClient {
    let deadline = tokio::time::Instant::now() + crate::helpers::PATIENCE;
    loop {
        match app.try_ws(token).await {
            Ok(socket) => return socket,
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 429, "only the slot limit refuses");
            }
            Err(other) => panic!("cannot open a socket: {other}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stalled socket was never dropped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A client whose receive buffer is tiny, so that a peer that stops reading is
/// noticed after a few frames rather than megabytes.
async fn stalled_client(app: &crate::helpers::TestApp, token: &str) -> WsClient {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("small buffer");
    let stream = socket.connect(app.address).await.expect("connect");
    let url = format!("ws://{}/ws?token={token}", app.address);
    let (stream, _) =
        tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("upgrade");
    WsClient { stream }
}

/// The `message` frames that arrive before the pong to a ping sent now.
async fn messages_until_pong(ws: &mut WsClient) -> Vec<Value> {
    let mut frames = ws.frames_until_pong().await;
    frames.retain(|frame| frame["type"] == "message");
    frames
}

/// Reads until `count` message frames arrived; returns their seqs in arrival order.
pub async fn collect_message_seqs(ws: &mut WsClient, count: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(count);
    while seqs.len() < count {
        let frame = ws.next_json().await;
        if frame["type"] == "message" {
            seqs.push(frame["seq"].as_u64().expect("seq"));
        }
    }
    let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(distinct.len(), seqs.len(), "duplicate seqs: {seqs:?}");
    seqs
}
