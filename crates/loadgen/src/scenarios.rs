//! The scenarios: each drives a running confab through its public API and returns a
//! [`Report`]. Every loop is bounded by a count, and every wait by
//! [`CALL_TIMEOUT`](crate::client::CALL_TIMEOUT), so a run always ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use futures::{SinkExt as _, StreamExt as _};
use rand::Rng as _;
use serde_json::json;
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::client::{Api, Socket, next_frame, send_frame};
use crate::report::Report;

/// The bot every scenario talks to: it answers each message with its text.
pub(crate) const ECHO: &str = "echo";

/// `clients` clients, each in its own conversation with the echo bot, each sending
/// `messages` messages one after the other over `POST /conversations/{id}/messages`.
/// Latency is the request's; throughput counts stored user messages.
pub async fn send_rest(
    api: &Api,
    clients: usize,
    messages: usize,
    content_bytes: usize,
) -> Result<Report> {
    let padding: Arc<str> = padding(content_bytes).into();
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (api, barrier, padding) = (api.clone(), barrier.clone(), padding.clone());
        tasks.push(tokio::spawn(async move {
            let guest = api.guest().await?;
            let conversation = api.start(&guest.token, ECHO).await?;
            barrier.wait().await;
            let mut latencies = Vec::with_capacity(messages);
            for i in 0..messages {
                let sent = Instant::now();
                api.send(
                    &guest.token,
                    &conversation.conversation_id,
                    &format!("m{i}{padding}"),
                )
                .await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok((latencies, guest.token, conversation.conversation_id))
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(clients * messages);
    let mut conversations = Vec::with_capacity(clients);
    for task in tasks {
        let (measured, token, conversation) = task.await.context("a client task panicked")??;
        latencies.extend(measured);
        conversations.push((token, conversation));
    }
    let elapsed = started.elapsed();
    // Replies are produced after the requests return; the next scenario must not
    // measure a server still working them off.
    for (token, conversation) in conversations {
        wait_for_messages(api, &token, &conversation, 2 * messages as u64).await?;
    }
    Ok(Report::new(
        format!("send rest {clients}x{messages}{}", of_bytes(content_bytes)),
        elapsed,
        latencies,
    ))
}

/// Polls the conversation until it holds `count` messages, for at most a minute.
async fn wait_for_messages(api: &Api, token: &str, conversation: &str, count: u64) -> Result<()> {
    const POLLS: u32 = 1200;
    for _ in 0..POLLS {
        let current = api
            .get(token, &format!("/conversations/{conversation}"))
            .await?;
        if current["message_count"].as_u64() >= Some(count) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("conversation {conversation} did not reach {count} messages within a minute")
}

/// `clients` sockets, each in its own conversation with the echo bot, each keeping up
/// to `window` user messages in flight. Latency runs from sending a `message` frame to
/// its acknowledgement (the socket's own message coming back stored); the run ends when
/// every message has been acknowledged and answered by the bot.
pub async fn send_ws(
    api: &Api,
    clients: usize,
    messages: usize,
    window: usize,
    content_bytes: usize,
) -> Result<Report> {
    let padding: Arc<str> = padding(content_bytes).into();
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (api, barrier, padding) = (api.clone(), barrier.clone(), padding.clone());
        tasks.push(tokio::spawn(async move {
            let guest = api.guest().await?;
            let conversation = api.start(&guest.token, ECHO).await?;
            let mut socket = api.socket(&guest.token).await?;
            barrier.wait().await;
            pipelined(
                &mut socket,
                &conversation.session_id,
                &padding,
                messages,
                window.max(1),
                // The process's --time-limit bounds this scenario as a whole.
                Instant::now() + SENDING_LIMIT,
            )
            .await
        }));
    }
    barrier.wait().await;
    let started = Instant::now();
    let latencies = join_all(tasks).await?;
    let elapsed = started.elapsed();
    let answered = latencies.len() as f64;
    Ok(Report::new(
        format!(
            "send ws {clients}x{messages} window {window}{}",
            of_bytes(content_bytes)
        ),
        elapsed,
        latencies,
    )
    .with("stored_per_s", 2.0 * answered / elapsed.as_secs_f64()))
}

/// Text that makes a message about `bytes` longer: the send scenarios' few-byte
/// messages cost storage, search indexing and sockets less than people's do.
fn padding(bytes: usize) -> String {
    if bytes == 0 {
        return String::new();
    }
    // Words, so that the search index has as many to take as in a person's text.
    let mut text = String::with_capacity(bytes + 8);
    let mut word = 0_usize;
    while text.len() < bytes {
        text.push_str(&format!(" w{}", word % 997));
        word += 7;
    }
    text.truncate(bytes);
    text
}

/// How a report's name tells messages padded by `bytes`.
fn of_bytes(bytes: usize) -> String {
    if bytes == 0 {
        String::new()
    } else {
        format!(" of {bytes} B")
    }
}

/// How long [`send_ws`] keeps sending before it only waits for what is in flight.
const SENDING_LIMIT: Duration = Duration::from_secs(600);

/// Sends up to `messages` user messages (each its number, then `padding`) on one
/// socket with at most `window` unacknowledged, sending nothing new after
/// `stop_sending`, until everything sent is acknowledged and answered; returns the
/// acknowledgement latencies (as many as messages were sent).
pub(crate) async fn pipelined(
    socket: &mut Socket,
    session_id: &str,
    padding: &str,
    messages: usize,
    window: usize,
    stop_sending: Instant,
) -> Result<Vec<Duration>> {
    let mut sent_at: Vec<Instant> = Vec::with_capacity(messages);
    let mut latencies = Vec::with_capacity(messages);
    let mut answered = 0;
    let mut to_send = messages;
    while latencies.len() < to_send || answered < to_send {
        if sent_at.len() < to_send && Instant::now() >= stop_sending {
            to_send = sent_at.len();
            if latencies.len() >= to_send && answered >= to_send {
                break;
            }
        }
        let mut fed = false;
        while sent_at.len() < to_send && sent_at.len() - latencies.len() < window {
            let i = sent_at.len();
            let frame = json!({
                "type": "message",
                "session_id": session_id,
                "content": format!("m{i}{padding}"),
                "client_message_id": format!("c{i}"),
            });
            socket
                .feed(WsMessage::text(frame.to_string()))
                .await
                .context("cannot send a frame")?;
            sent_at.push(Instant::now());
            fed = true;
        }
        if fed {
            socket.flush().await.context("cannot send a frame")?;
        }
        let frame = next_frame(socket).await?;
        match frame["type"].as_str() {
            Some("message") if frame["sender"] == "user" => {
                let index = frame["client_message_id"]
                    .as_str()
                    .and_then(|id| id.strip_prefix('c'))
                    .and_then(|i| i.parse::<usize>().ok())
                    .context("an acknowledgement without our client_message_id")?;
                let sent = sent_at
                    .get(index)
                    .context("an acknowledgement of nothing sent")?;
                latencies.push(sent.elapsed());
            }
            Some("message") => answered += 1,
            Some("error") => bail!("the server refused a frame: {frame}"),
            _ => {}
        }
    }
    Ok(latencies)
}

/// One socket sends a message and waits for the echo bot's answer, `messages` times
/// in a row. With `background_rate`, four other sockets meanwhile send that many
/// messages per second in total to their own conversations.
pub async fn roundtrip(api: &Api, messages: usize, background_rate: u32) -> Result<Report> {
    let guest = api.guest().await?;
    let conversation = api.start(&guest.token, ECHO).await?;
    let mut socket = api.socket(&guest.token).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let background_sent = Arc::new(AtomicU64::new(0));
    let mut background = Vec::new();
    if background_rate > 0 {
        const SENDERS: u32 = 4;
        for _ in 0..SENDERS {
            let guest = api.guest().await?;
            let conversation = api.start(&guest.token, ECHO).await?;
            let socket = api.socket(&guest.token).await?;
            background.push(tokio::spawn(paced_sender(
                socket,
                conversation.session_id,
                f64::from(background_rate / SENDERS),
                stop.clone(),
                background_sent.clone(),
            )));
        }
    }
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(messages);
    for i in 0..messages {
        let sent = Instant::now();
        let frame = json!({"type": "message", "session_id": conversation.session_id, "content": format!("r{i}")});
        send_frame(&mut socket, &frame).await?;
        loop {
            let frame = next_frame(&mut socket).await?;
            match frame["type"].as_str() {
                Some("message") if frame["sender"] == "bot" => break,
                Some("error") => bail!("the server refused a frame: {frame}"),
                _ => {}
            }
        }
        latencies.push(sent.elapsed());
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in background {
        task.await.context("a background sender panicked")??;
    }
    let mut report = Report::new(
        format!("roundtrip {messages} background {background_rate}/s"),
        elapsed,
        latencies,
    );
    if background_rate > 0 {
        let sent = background_sent.load(Ordering::Relaxed) as f64;
        report = report.with("background_per_s", sent / elapsed.as_secs_f64());
    }
    Ok(report)
}

/// Sends `rate` messages per second on `socket` until `stop`, in bursts every 10 ms,
/// with at most [`MAX_UNANSWERED`] messages not yet answered by the bot: a server
/// slower than `rate` gets less (the report says how much it got) instead of a backlog
/// that would still be worked off while later scenarios measure.
async fn paced_sender(
    mut socket: Socket,
    session_id: String,
    rate: f64,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> Result<()> {
    const TICK: Duration = Duration::from_millis(10);
    const MAX_UNANSWERED: u64 = 32;
    // The measured run is bounded; this bounds the sender should the flag never come.
    const LIMIT: Duration = Duration::from_secs(600);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    let (mut due, mut count, mut answered) = (0.0, 0u64, 0u64);
    while started.elapsed() < LIMIT && !stop.load(Ordering::Relaxed) {
        tokio::select! {
            _ = ticker.tick() => {
                due += rate * TICK.as_secs_f64();
                let mut fed = false;
                while due >= 1.0 && count - answered < MAX_UNANSWERED {
                    let frame = json!({"type": "message", "session_id": session_id, "content": format!("b{count}")});
                    socket.feed(WsMessage::text(frame.to_string())).await?;
                    due -= 1.0;
                    count += 1;
                    fed = true;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                if count - answered >= MAX_UNANSWERED {
                    // What could not be sent in time is not sent later.
                    due = 0.0;
                }
                if fed {
                    socket.flush().await?;
                }
            }
            frame = socket.next() => {
                match frame {
                    Some(Ok(WsMessage::Text(text))) => {
                        let frame: serde_json::Value = serde_json::from_str(text.as_str())?;
                        if frame["type"] == "message" && frame["sender"] == "bot" {
                            answered += 1;
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(error)) => return Err(error.into()),
                    None => bail!("the server closed a background socket"),
                }
            }
        }
    }
    let _ = socket.close(None).await;
    Ok(())
}

/// A user with `conversations` conversations (half with each built-in bot), listed
/// `pages` times: 20 at a random offset, unfiltered, by bot, or by status in turn.
pub async fn list(api: &Api, conversations: usize, pages: usize) -> Result<Report> {
    const STARTERS: usize = 16;
    let guest = api.guest().await?;
    let per_starter = conversations.div_ceil(STARTERS);
    let mut tasks = Vec::new();
    for starter in 0..STARTERS {
        let (api, token) = (api.clone(), guest.token.clone());
        let count = per_starter.min(conversations.saturating_sub(starter * per_starter));
        tasks.push(tokio::spawn(async move {
            for i in 0..count {
                let bot = if i % 2 == 0 { ECHO } else { "echo-stream" };
                api.start(&token, bot).await?;
            }
            anyhow::Ok(Vec::new())
        }));
    }
    join_all(tasks).await?;
    let filters = ["", "&bot_id=echo", "&status=active"];
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(pages);
    for i in 0..pages {
        let filter = filters[i % filters.len()];
        let reachable = if filter.contains("bot_id") {
            conversations / 2
        } else {
            conversations
        };
        let offset = rand::rng().random_range(0..=reachable.saturating_sub(20));
        let path = format!("/conversations?limit=20&offset={offset}{filter}");
        let sent = Instant::now();
        let page = api.get_body(&guest.token, &path).await?;
        latencies.push(sent.elapsed());
        let got = page.json()?["conversations"].as_array().map_or(0, Vec::len);
        ensure!(
            got == 20.min(reachable),
            "a page at offset {offset} held {got} conversations"
        );
    }
    Ok(Report::new(
        format!("list {conversations} convs, 20/page, filtered"),
        started.elapsed(),
        latencies,
    ))
}

/// Opens `count` authenticated sockets, `per_user` for each guest (servers limit
/// sockets per user), and keeps them idle; latency is each connection's (upgrade to
/// `connected`). With `server_pid`, reports the server's resident memory before and
/// after, and per socket.
pub async fn sockets(
    api: &Api,
    count: usize,
    per_user: usize,
    server_pid: Option<u32>,
) -> Result<Report> {
    const OPENING_AT_ONCE: usize = 64;
    let mut tokens = Vec::new();
    for _ in 0..count.div_ceil(per_user.max(1)) {
        tokens.push(api.guest().await?.token);
    }
    let before = server_pid.map(resident_kib).transpose()?;
    let started = Instant::now();
    let opened: Vec<Result<(Socket, Duration)>> = futures::stream::iter(0..count)
        .map(|i| {
            let (api, token) = (api.clone(), tokens[i / per_user.max(1)].clone());
            async move {
                let sent = Instant::now();
                let socket = api.socket(&token).await?;
                Ok((socket, sent.elapsed()))
            }
        })
        .buffer_unordered(OPENING_AT_ONCE)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut open = Vec::with_capacity(count);
    let mut latencies = Vec::with_capacity(count);
    for result in opened {
        let (socket, latency) = result?;
        open.push(socket);
        latencies.push(latency);
    }
    // Every socket must still be alive when the memory is read.
    for socket in open.iter_mut().take(1) {
        send_frame(socket, &json!({"type": "ping"})).await?;
        while next_frame(socket).await?["type"] != "pong" {}
    }
    let mut report = Report::new(format!("sockets {count} idle"), elapsed, latencies);
    if let (Some(pid), Some(before)) = (server_pid, before) {
        let after = resident_kib(pid)?;
        report = report
            .with("rss_before_mib", before as f64 / 1024.0)
            .with("rss_after_mib", after as f64 / 1024.0)
            .with(
                "kib_per_socket",
                after.saturating_sub(before) as f64 / count.max(1) as f64,
            );
    }
    for mut socket in open {
        let _ = socket.close(None).await;
    }
    Ok(report)
}

/// `VmRSS` of process `pid`, in KiB.
pub fn resident_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}

/// Awaits every task and concatenates their latencies, failing with the first error.
async fn join_all(
    tasks: Vec<tokio::task::JoinHandle<Result<Vec<Duration>>>>,
) -> Result<Vec<Duration>> {
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.context("a client task panicked")??);
    }
    Ok(all)
}
