//! The floors each figure is compared with, measured on the same machine in the same
//! run: what SQLite does with no server around it, and what a WebSocket server that
//! stores nothing does.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt as _;
use futures::{SinkExt as _, StreamExt as _};
use rand::Rng as _;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::report::Report;

/// `rows` message-sized rows inserted into a fresh SQLite file at `path` one
/// transaction each (WAL, `synchronous=NORMAL`, like the server), then `pages` random
/// 50-row pages read back through the `(conversation, seq)` index.
pub async fn sqlite(path: &Path, rows: u64, pages: usize) -> Result<Vec<Report>> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let mut conn = options
        .connect()
        .await
        .context("cannot open the floor database")?;
    sea_orm::sqlx::query(
        "CREATE TABLE messages (id BLOB PRIMARY KEY, conversation_id BLOB NOT NULL, \
         seq INTEGER NOT NULL, sender TEXT NOT NULL, content TEXT NOT NULL, \
         timestamp_ms INTEGER NOT NULL, metadata TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    sea_orm::sqlx::query("CREATE UNIQUE INDEX messages_seq ON messages (conversation_id, seq)")
        .execute(&mut conn)
        .await?;
    let conversation = uuid::Uuid::now_v7();
    let mut latencies = Vec::new();
    let started = Instant::now();
    for seq in 1..=rows {
        let at = Instant::now();
        let mut txn = conn.begin().await?;
        sea_orm::sqlx::query(
            "INSERT INTO messages (id, conversation_id, seq, sender, content, timestamp_ms, metadata) \
             VALUES ($1, $2, $3, 'user', $4, $5, '{}')",
        )
        .bind(uuid::Uuid::now_v7().as_bytes().to_vec())
        .bind(conversation.as_bytes().to_vec())
        .bind(i64::try_from(seq)?)
        .bind(format!("message {seq}"))
        .bind(i64::try_from(seq)?)
        .execute(&mut *txn)
        .await?;
        txn.commit().await?;
        latencies.push(at.elapsed());
    }
    let inserts = Report::new(
        format!("floor: sqlite insert, 1 row/txn, {rows} rows"),
        started.elapsed(),
        latencies,
    );
    let mut latencies = Vec::with_capacity(pages);
    let started = Instant::now();
    for _ in 0..pages {
        let before = i64::try_from(rand::rng().random_range(51..=rows + 1))?;
        let at = Instant::now();
        let page = sea_orm::sqlx::query(
            "SELECT * FROM messages WHERE conversation_id = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT 51",
        )
        .bind(conversation.as_bytes().to_vec())
        .bind(before)
        .fetch_all(&mut conn)
        .await?;
        latencies.push(at.elapsed());
        ensure!(page.len() >= 50, "a floor page held {} rows", page.len());
    }
    let reads = Report::new(
        format!("floor: sqlite 50-row page of {rows}"),
        started.elapsed(),
        latencies,
    );
    conn.close().await?;
    Ok(vec![inserts, reads])
}

/// A bare axum WebSocket echo on a free port, nothing stored: `messages` round trips
/// on one socket, then `clients` sockets each echoing `messages` frames with up to
/// `window` in flight.
pub async fn ws_echo(clients: usize, messages: usize, window: usize) -> Result<Vec<Report>> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let address = listener.local_addr()?;
    let router = Router::new().route("/ws", get(upgrade));
    // Small frames go out at once, as any latency-minded server sends them.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let url = format!("ws://{address}/ws");

    let (mut socket, _) =
        tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await?;
    let mut latencies = Vec::with_capacity(messages);
    let started = Instant::now();
    for i in 0..messages {
        let at = Instant::now();
        socket.send(WsMessage::text(format!("r{i}"))).await?;
        next_text(&mut socket).await?;
        latencies.push(at.elapsed());
    }
    let sequential = Report::new(
        format!("floor: ws echo roundtrip {messages}"),
        started.elapsed(),
        latencies,
    );

    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (url, barrier) = (url.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let (mut socket, _) =
                tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await?;
            barrier.wait().await;
            let mut sent_at = Vec::with_capacity(messages);
            let mut latencies = Vec::with_capacity(messages);
            while latencies.len() < messages {
                while sent_at.len() < messages && sent_at.len() - latencies.len() < window.max(1) {
                    socket
                        .feed(WsMessage::text(sent_at.len().to_string()))
                        .await?;
                    sent_at.push(Instant::now());
                }
                socket.flush().await?;
                let text = next_text(&mut socket).await?;
                let index: usize = text.parse().context("an echo of nothing sent")?;
                let at: &Instant = sent_at.get(index).context("an echo of nothing sent")?;
                latencies.push(at.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let concurrent = Report::new(
        format!("floor: ws echo {clients}x{messages} window {window}"),
        started.elapsed(),
        latencies,
    );
    server.abort();
    Ok(vec![sequential, concurrent])
}

async fn upgrade(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        if matches!(message, Message::Text(_)) && socket.send(message).await.is_err() {
            return;
        }
    }
}

async fn next_text(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Result<String> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .context("timed out waiting for an echo")?
            .context("the echo socket closed")??;
        if let WsMessage::Text(text) = message {
            return Ok(text.as_str().to_owned());
        }
    }
}
