//! The scenarios over data seeded straight into the server's database, at sizes no
//! API could fill in a run: history pages, search and export of one long conversation.
//! Bounded as every scenario is ([`scenarios`](crate::scenarios)).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, ensure};
use rand::Rng as _;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::{Api, DOWNLOAD_TIMEOUT};
use crate::report::Report;
use crate::scenarios::{ECHO, resident_kib};
use crate::seed;

/// A conversation holding `messages` messages (seeded straight into the database at
/// `database_url`), read `pages` times as the 50 messages before a random seq, or
/// `by_time`, before that seq's time.
pub async fn history(
    api: &Api,
    database_url: &str,
    messages: u64,
    pages: usize,
    by_time: bool,
) -> Result<Report> {
    ensure!(messages >= 50, "history needs at least 50 messages");
    let guest = api.guest().await?;
    let conversation = api.start(&guest.token, ECHO).await?;
    let seeding = Instant::now();
    seed::messages(
        database_url,
        &conversation.conversation_id,
        &guest.user_id,
        messages,
    )
    .await?;
    let seeded_in = seeding.elapsed();
    // Seeded seqs are one millisecond apart, so a seq's time is the last one's less
    // the seqs between them.
    let last_time = if by_time {
        let path = format!(
            "/conversations/{}/history?limit=1",
            conversation.conversation_id
        );
        let page = api.get_body(&guest.token, &path).await?.json()?;
        let text = page["messages"][0]["timestamp"]
            .as_str()
            .context("the newest message has no timestamp")?
            .to_owned();
        Some(OffsetDateTime::parse(&text, &Rfc3339).context("an unreadable timestamp")?)
    } else {
        None
    };
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(pages);
    for _ in 0..pages {
        let seq = rand::rng().random_range(51..=messages + 1);
        let before = match last_time {
            Some(last) => {
                // `seq` may be one past the last message: a millisecond after it.
                let earlier = i64::try_from(messages)? - i64::try_from(seq)?;
                (last - time::Duration::milliseconds(earlier)).format(&Rfc3339)?
            }
            None => seq.to_string(),
        };
        let path = format!(
            "/conversations/{}/history?limit=50&before={before}",
            conversation.conversation_id
        );
        let sent = Instant::now();
        let page = api.get_body(&guest.token, &path).await?;
        latencies.push(sent.elapsed());
        let got = page.json()?["messages"].as_array().map_or(0, Vec::len);
        ensure!(
            got == 50,
            "a page before {before} (seq {seq}) held {got} messages, not 50"
        );
    }
    let bound = if by_time { " by time" } else { "" };
    Ok(Report::new(
        format!("history {messages} msgs, 50/page{bound}"),
        started.elapsed(),
        latencies,
    )
    .with("seed_s", seeded_in.as_secs_f64()))
}

/// Full-text search over one conversation seeded with `messages` messages (worded
/// so that each `word<k>` is in one message of a thousand): `queries` searches for a
/// random such word, then a 25th as many (at least 10) for a word every message
/// holds, each the
/// newest 20 results, as `GET /search` answers a user.
pub async fn search(
    api: &Api,
    database_url: &str,
    messages: u64,
    queries: usize,
) -> Result<Vec<Report>> {
    ensure!(
        messages >= 20_000,
        "search needs at least 20 000 messages, so that every word fills a page"
    );
    let guest = api.guest().await?;
    let conversation = api.start(&guest.token, ECHO).await?;
    let seeding = Instant::now();
    seed::messages_worded(
        database_url,
        &conversation.conversation_id,
        &guest.user_id,
        messages,
        seed::Wording::Vocabulary,
    )
    .await?;
    let seeded_in = seeding.elapsed();
    let mut reports = Vec::new();
    for (name, count, word) in [
        ("1 in 1000 match", queries, None),
        ("all match", (queries / 25).max(10), Some("seeded")),
    ] {
        let started = Instant::now();
        let mut latencies = Vec::with_capacity(count);
        for _ in 0..count {
            let word = word.map_or_else(
                || format!("word{}", rand::rng().random_range(0..1000)),
                str::to_owned,
            );
            let sent = Instant::now();
            let page = api
                .get(&guest.token, &format!("/search?q={word}&limit=20"))
                .await?;
            latencies.push(sent.elapsed());
            let got = page["results"].as_array().map_or(0, Vec::len);
            ensure!(
                got == 20,
                "a search for {word} found {got} messages, not 20"
            );
        }
        reports.push(
            Report::new(
                format!("search {messages} msgs, {name}"),
                started.elapsed(),
                latencies,
            )
            .with("seed_s", seeded_in.as_secs_f64()),
        );
    }
    Ok(reports)
}

/// A conversation of `messages` messages (seeded straight into the database at
/// `database_url`) exported as JSON Lines. With `server_pid`, the server's resident
/// memory is sampled while the export streams: its peak, compared across sizes, shows
/// whether memory grows with the conversation.
pub async fn export(
    api: &Api,
    database_url: &str,
    messages: u64,
    server_pid: Option<u32>,
) -> Result<Report> {
    let guest = api.guest().await?;
    let conversation = api.start(&guest.token, ECHO).await?;
    seed::messages(
        database_url,
        &conversation.conversation_id,
        &guest.user_id,
        messages,
    )
    .await?;
    let before = server_pid.map(resident_kib).transpose()?;
    let peak = Arc::new(AtomicU64::new(before.unwrap_or(0)));
    let streaming = Arc::new(AtomicBool::new(true));
    let sampler = server_pid.map(|pid| {
        let (peak, streaming) = (Arc::clone(&peak), Arc::clone(&streaming));
        tokio::spawn(async move {
            // Bounded as the download is: at most its timeout's worth of samples.
            let most = DOWNLOAD_TIMEOUT.as_millis() / SAMPLE_EVERY.as_millis();
            for _ in 0..most {
                if !streaming.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(kib) = resident_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        })
    });
    let started = Instant::now();
    let downloaded = api
        .download(
            &guest.token,
            &format!("/conversations/{}/export", conversation.conversation_id),
        )
        .await;
    let elapsed = started.elapsed();
    streaming.store(false, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        sampler.await?;
    }
    let (bytes, lines) = downloaded?;
    ensure!(
        lines == messages,
        "the export held {lines} lines for {messages} messages"
    );
    let mut report = Report::new(
        format!("export {messages} msgs, JSON Lines"),
        elapsed,
        vec![elapsed],
    )
    .with("mib", bytes as f64 / (1024.0 * 1024.0));
    if let Some(before) = before {
        report = report
            .with("rss_before_mib", before as f64 / 1024.0)
            .with("rss_peak_mib", peak.load(Ordering::Relaxed) as f64 / 1024.0);
    }
    Ok(report)
}

/// How often the export scenario reads the server's memory.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
