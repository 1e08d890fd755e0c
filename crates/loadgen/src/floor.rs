//! The floors each figure is compared with, measured on the same machine in the same
//! run: what SQLite and PostgreSQL do with no server around them, and what a WebSocket
//! server and an HTTP server that store nothing do.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use axum::serve::ListenerExt as _;
use futures::{SinkExt as _, StreamExt as _};
use rand::Rng as _;
use sea_orm::sqlx::Connection as _;
use sea_orm::sqlx::postgres::PgConnection;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::client::Api;
use crate::report::Report;

/// Rows of each transaction of the batched SQLite floor: what a group commit of
/// appends waiting together stores at once.
const SQLITE_BATCH: u64 = 64;

/// `rows` message-sized rows inserted into a fresh SQLite file at `path` (WAL,
/// `synchronous=NORMAL`, like the server) one transaction each, then the same number
/// [`SQLITE_BATCH`] to a transaction, then `pages` random 50-row pages read back
/// through the `(conversation, seq)` index. Through rusqlite on the thread that calls:
/// the C library with no driver thread between, the same bundled build (and compile
/// flags) as the server's sqlx, so that the floor is the engine's.
pub async fn sqlite(path: &Path, rows: u64, pages: usize) -> Result<Vec<Report>> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || sqlite_floor(&path, rows, pages)).await?
}

fn sqlite_floor(path: &Path, rows: u64, pages: usize) -> Result<Vec<Report>> {
    let conn = rusqlite::Connection::open(path).context("cannot open the floor database")?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE messages (id BLOB PRIMARY KEY, conversation_id BLOB NOT NULL, \
         seq INTEGER NOT NULL, sender TEXT NOT NULL, content TEXT NOT NULL, \
         timestamp_ms INTEGER NOT NULL, metadata TEXT NOT NULL); \
         CREATE UNIQUE INDEX messages_seq ON messages (conversation_id, seq);",
    )?;
    // Prepared once, as sqlx's statement cache does for the server.
    let mut statement = conn.prepare(
        "INSERT INTO messages (id, conversation_id, seq, sender, content, timestamp_ms, \
         metadata) VALUES (?1, ?2, ?3, 'user', ?4, ?5, '{}')",
    )?;
    let mut insert = |conversation: &uuid::Uuid, seq: u64| -> Result<()> {
        let seq = i64::try_from(seq)?;
        statement.execute(rusqlite::params![
            uuid::Uuid::now_v7().as_bytes().as_slice(),
            conversation.as_bytes().as_slice(),
            seq,
            format!("message {seq}"),
            seq,
        ])?;
        Ok(())
    };

    let conversation = uuid::Uuid::now_v7();
    let mut latencies = Vec::new();
    let started = Instant::now();
    for seq in 1..=rows {
        let at = Instant::now();
        conn.execute_batch("BEGIN")?;
        insert(&conversation, seq)?;
        conn.execute_batch("COMMIT")?;
        latencies.push(at.elapsed());
    }
    let single = Report::new(
        format!("floor: sqlite insert, 1 row/txn, {rows} rows"),
        started.elapsed(),
        latencies,
    );

    let batched_conversation = uuid::Uuid::now_v7();
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut next = 1;
    while next <= rows {
        let at = Instant::now();
        conn.execute_batch("BEGIN")?;
        for seq in next..=rows.min(next + SQLITE_BATCH - 1) {
            insert(&batched_conversation, seq)?;
        }
        conn.execute_batch("COMMIT")?;
        next += SQLITE_BATCH;
        latencies.push(at.elapsed());
    }
    let batched = batched_report(
        format!("floor: sqlite insert, {SQLITE_BATCH} rows/txn, {rows} rows"),
        started.elapsed(),
        latencies,
        rows,
    );

    let mut latencies = Vec::with_capacity(pages);
    let started = Instant::now();
    let mut page = conn.prepare(
        "SELECT * FROM messages WHERE conversation_id = ?1 AND seq < ?2 \
         ORDER BY seq DESC LIMIT 51",
    )?;
    for _ in 0..pages {
        let before = i64::try_from(rand::rng().random_range(51..=rows + 1))?;
        let at = Instant::now();
        let read = page
            .query_map(
                rusqlite::params![conversation.as_bytes().as_slice(), before],
                |row| row.get::<_, i64>(2),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        latencies.push(at.elapsed());
        ensure!(read.len() >= 50, "a floor page held {} rows", read.len());
    }
    let reads = Report::new(
        format!("floor: sqlite 50-row page of {rows}"),
        started.elapsed(),
        latencies,
    );
    Ok(vec![single, batched, reads])
}

/// Rows of each multi-row `INSERT` of the batched PostgreSQL floor: what a group
/// commit of appends waiting together could send in one statement.
const POSTGRES_BATCH: u64 = 64;

/// Connections inserting single rows at once in the PostgreSQL floor: as many as the
/// send scenarios have clients, since PostgreSQL flushes the WAL of concurrent commits
/// together and one connection alone would measure the disk's flush latency instead.
const POSTGRES_WRITERS: u64 = 16;

/// `rows` message-sized rows inserted into a table of its own in the PostgreSQL
/// database at `url`: first one statement (its own transaction, `synchronous_commit`
/// as the server has it) per row from [`POSTGRES_WRITERS`] connections at once, each
/// into a conversation of its own; then [`POSTGRES_BATCH`] rows per statement on one
/// connection; then `pages` random 50-row pages read back through the
/// `(conversation, seq)` index. sqlx prepares each statement once per connection, as
/// the server's pool does.
pub async fn postgres(url: &str, rows: u64, pages: usize) -> Result<Vec<Report>> {
    let mut conn = PgConnection::connect(url)
        .await
        .context("cannot open the floor database")?;
    sea_orm::sqlx::query(
        "CREATE TABLE floor_messages (id UUID PRIMARY KEY, conversation_id UUID NOT NULL, \
         seq BIGINT NOT NULL, sender TEXT NOT NULL, content TEXT NOT NULL, \
         timestamp_ms BIGINT NOT NULL, metadata TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    sea_orm::sqlx::query(
        "CREATE UNIQUE INDEX floor_messages_seq ON floor_messages (conversation_id, seq)",
    )
    .execute(&mut conn)
    .await?;

    let per_writer = rows / POSTGRES_WRITERS;
    let started = Instant::now();
    let writers: Vec<_> = (0..POSTGRES_WRITERS)
        .map(|_| {
            let url = url.to_owned();
            tokio::spawn(async move {
                let mut conn = PgConnection::connect(&url).await?;
                let conversation = uuid::Uuid::now_v7();
                let mut latencies = Vec::new();
                for seq in 1..=per_writer {
                    let at = Instant::now();
                    sea_orm::sqlx::query(
                        "INSERT INTO floor_messages (id, conversation_id, seq, sender, \
                         content, timestamp_ms, metadata) \
                         VALUES ($1, $2, $3, 'user', $4, $5, '{}')",
                    )
                    .bind(uuid::Uuid::now_v7())
                    .bind(conversation)
                    .bind(i64::try_from(seq)?)
                    .bind(format!("message {seq}"))
                    .bind(i64::try_from(seq)?)
                    .execute(&mut conn)
                    .await?;
                    latencies.push(at.elapsed());
                }
                conn.close().await?;
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for writer in writers {
        latencies.extend(writer.await??);
    }
    let single = Report::new(
        format!("floor: postgres insert, 1 row/stmt, {POSTGRES_WRITERS}x{per_writer} rows"),
        started.elapsed(),
        latencies,
    );

    // The rows again in a conversation of their own, a batch per statement: one
    // `UNNEST` of arrays keeps it to one prepared statement whatever the batch size.
    let conversation = uuid::Uuid::now_v7();
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut next = 1;
    while next <= rows {
        let seqs: Vec<i64> = (next..=rows.min(next + POSTGRES_BATCH - 1))
            .map(i64::try_from)
            .collect::<Result<_, _>>()?;
        next += POSTGRES_BATCH;
        let ids: Vec<uuid::Uuid> = seqs.iter().map(|_| uuid::Uuid::now_v7()).collect();
        let contents: Vec<String> = seqs.iter().map(|seq| format!("message {seq}")).collect();
        let at = Instant::now();
        sea_orm::sqlx::query(
            "INSERT INTO floor_messages (id, conversation_id, seq, sender, content, \
             timestamp_ms, metadata) \
             SELECT id, $1, seq, 'user', content, seq, '{}' \
             FROM UNNEST($2::uuid[], $3::bigint[], $4::text[]) AS batch (id, seq, content)",
        )
        .bind(conversation)
        .bind(&ids)
        .bind(&seqs)
        .bind(&contents)
        .execute(&mut conn)
        .await?;
        latencies.push(at.elapsed());
    }
    let batched = batched_report(
        format!("floor: postgres insert, {POSTGRES_BATCH} rows/stmt, {rows} rows"),
        started.elapsed(),
        latencies,
        rows,
    );

    // Statistics for the planner, as autovacuum would have gathered for a table this
    // size: without them it may read a fresh table sequentially instead of by index.
    sea_orm::sqlx::query("ANALYZE floor_messages")
        .execute(&mut conn)
        .await?;
    let mut latencies = Vec::with_capacity(pages);
    let started = Instant::now();
    for _ in 0..pages {
        let before = i64::try_from(rand::rng().random_range(51..=rows + 1))?;
        let at = Instant::now();
        let page = sea_orm::sqlx::query(
            "SELECT * FROM floor_messages WHERE conversation_id = $1 AND seq < $2 \
             ORDER BY seq DESC LIMIT 51",
        )
        .bind(conversation)
        .bind(before)
        .fetch_all(&mut conn)
        .await?;
        latencies.push(at.elapsed());
        ensure!(page.len() >= 50, "a floor page held {} rows", page.len());
    }
    let reads = Report::new(
        format!("floor: postgres 50-row page of {rows}"),
        started.elapsed(),
        latencies,
    );
    conn.close().await?;
    Ok(vec![single, batched, reads])
}

/// The report of a batched insert floor, one latency per batch: its operations are
/// batches, so the rows it stored per second go beside them as `rows_per_s`.
fn batched_report(
    scenario: String,
    elapsed: Duration,
    latencies: Vec<Duration>,
    rows: u64,
) -> Report {
    let mut report = Report::new(scenario, elapsed, latencies);
    report.extra.insert(
        "rows_per_s".to_owned(),
        (rows as f64 / elapsed.as_secs_f64().max(1e-9)).round(),
    );
    report
}

/// Messages in the page the HTTP floor serves: a history page of the bench's size.
const PAGE_MESSAGES: usize = 50;

/// A bare axum server on a free port answering `GET /page` with a history page's
/// worth of JSON (50 messages shaped and sized as confab's, serialized once at start),
/// fetched `pages` times one after the other by the load generator's own client with a
/// bearer token: what one HTTP request and its body cost on this machine with no
/// server logic, the floor of a history page over HTTP.
pub async fn http_page(pages: usize) -> Result<Report> {
    let body = bytes::Bytes::from(serde_json::to_vec(&page_of_messages())?);
    let server = FloorServer::start(Router::new().route(
        "/page",
        get(move || {
            let body = body.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body) }
        }),
    ))?;
    let api = Api::new(&format!("http://{}", server.address))?;
    let token = "x".repeat(TOKEN_BYTES);
    let mut latencies = Vec::with_capacity(pages);
    let started = Instant::now();
    for _ in 0..pages {
        let sent = Instant::now();
        api.get_body(&token, "/page").await?;
        latencies.push(sent.elapsed());
    }
    Ok(Report::new(
        format!("floor: http get {PAGE_MESSAGES}-message page {pages}"),
        started.elapsed(),
        latencies,
    ))
}

/// A floor's server: `router` on a free port of 127.0.0.1, on a runtime of its own
/// with a worker per core as confab has, apart from the load generator's one thread as
/// a server in a process of its own would be. Stopped when dropped.
struct FloorServer {
    address: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FloorServer {
    fn start(router: Router) -> Result<Self> {
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.spawn(async move {
            // Registered with this runtime's reactor, not the load generator's.
            let served = match tokio::net::TcpListener::from_std(listener) {
                // Small frames go out at once, as any latency-minded server sends them.
                Ok(listener) => {
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    axum::serve(listener, router).await
                }
                Err(error) => Err(error),
            };
            // The client would only see its connections refused.
            if let Err(error) = served {
                eprintln!("the floor's server stopped: {error}");
            }
        });
        Ok(Self {
            address,
            runtime: Some(runtime),
        })
    }
}

impl Drop for FloorServer {
    fn drop(&mut self) {
        // A runtime dropped inside another one's task would block it; this one's
        // threads are left to stop on their own.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// About the length of a guest's bearer token, which every request carries.
const TOKEN_BYTES: usize = 200;

/// A history page as confab answers it, with the fields of its messages.
fn page_of_messages() -> serde_json::Value {
    let conversation = uuid::Uuid::now_v7().to_string();
    let user = format!("guest-{}", uuid::Uuid::now_v7());
    let messages: Vec<serde_json::Value> = (1..=PAGE_MESSAGES)
        .map(|seq| {
            serde_json::json!({
                "id": uuid::Uuid::now_v7().to_string(),
                "conversation_id": conversation,
                "seq": seq,
                "sender": "user",
                "sender_id": user,
                "content": format!("seeded message {seq}"),
                "attachments": [],
                "suggestions": [],
                "client_message_id": null,
                "reply_to": null,
                "timestamp": "2026-12-06T07:10:56.055Z",
                "metadata": {},
                "feedback": null,
            })
        })
        .collect();
    serde_json::json!({
        "conversation_id": conversation,
        "messages": messages,
        "has_more": true,
    })
}

/// A bare axum WebSocket echo on a free port, nothing stored: `messages` round trips
/// on one socket, then `clients` sockets each echoing `messages` frames with up to
/// `window` in flight.
pub async fn ws_echo(clients: usize, messages: usize, window: usize) -> Result<Vec<Report>> {
    let server = FloorServer::start(Router::new().route("/ws", get(upgrade)))?;
    let url = format!("ws://{}/ws", server.address);

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
    drop(server);
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
