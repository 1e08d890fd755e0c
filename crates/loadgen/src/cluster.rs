//! The scale-out scenarios: several confab instances sharing one PostgreSQL database
//! and one NATS bus, each reached at its own base URL, driven the way clients behind a
//! load balancer without stickiness would drive them.
//!
//! - [`send_rest`]: clients post messages round robin over the instances; throughput
//!   of acknowledged messages and of answered ones (until the last reply is stored),
//!   then every reply checked in the stored history, with how long each took.
//! - [`send_ws`]: clients spread over the instances, each with a socket on its own
//!   instance, pipelining messages; the replies come from whichever instance holds the
//!   conversation's reply lease, through the bus.
//! - [`roundtrip`]: a socket follows a conversation on instance A while messages are
//!   posted on instance B; how long until each `message` frame, and its reply, arrive
//!   on A's socket, and how long after the POST's own answer the frame came.
//!
//! Every scenario checks what it got, since a lost or doubled message in a cluster is
//! a finding worth more than its throughput: the figures `unanswered`,
//! `duplicate_replies`, `seq_gaps`, `extra_user_messages`, `duplicate_frames` and
//! `unexpected_frames` are zero on a correct server, and [`misbehaviour`] says which are not. Every loop is
//! bounded by a count and by a time limit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::client::{Api, next_frame, send_frame};
use crate::cpu::{CpuSample, CpuUse};
use crate::report::Report;
use crate::scenarios::pipelined;

/// The bot every scenario talks to: it answers each message with its text at once.
const ECHO: &str = "echo";

/// How long the replies to a send scenario may take to be stored after the last
/// message was acknowledged.
const REPLY_WAIT: Duration = Duration::from_secs(60);

/// A reply stored this long after its message or later is counted as late: far
/// beyond what answering `echo` takes, it means the message waited for something
/// (a sweep for orphaned work, a backlog).
const LATE_REPLY_MS: f64 = 1000.0;

/// How often a send scenario looks whether the replies are all stored.
const REPLY_POLL: Duration = Duration::from_millis(50);

/// History page size when a conversation is checked (the API's largest).
const AUDIT_PAGE: u64 = 100;

/// Frames the round trip reads for one sample at most: a message, typing on and off
/// and the reply are four; more means frames nobody expects keep arriving.
const FRAMES_PER_SAMPLE: usize = 64;

/// The instances under test and, for the CPU figures, their process ids.
#[derive(Debug, Clone)]
pub struct Cluster {
    apis: Vec<Api>,
    pids: Vec<u32>,
}

impl Cluster {
    /// The instances at `urls` (at least one); `pids` are their processes when they
    /// run on this machine, or empty.
    ///
    /// # Errors
    /// No URL, or a client that cannot be built.
    pub fn new(urls: &[String], pids: Vec<u32>) -> Result<Self> {
        ensure!(
            !urls.is_empty(),
            "a cluster needs at least one instance URL"
        );
        let apis = urls
            .iter()
            .map(|url| Api::new(url))
            .collect::<Result<_>>()?;
        Ok(Self { apis, pids })
    }

    /// How many instances there are.
    pub fn len(&self) -> usize {
        self.apis.len()
    }

    /// Always false: a cluster has at least one instance.
    pub fn is_empty(&self) -> bool {
        self.apis.is_empty()
    }

    /// The instance that request `index` goes to, round robin.
    fn at(&self, index: usize) -> &Api {
        &self.apis[index % self.apis.len()]
    }

    fn cpu(&self) -> Option<CpuSample> {
        // CPU figures are extras: a machine without /proc still gets its throughput.
        CpuSample::now(&self.pids).ok()
    }
}

/// `clients` clients, each in its own conversation with the echo bot (started on
/// instance `client % n`), each posting up to `messages` messages one after the other,
/// message `i` of client `c` to instance `(c + i) % n`, none after `limit`. Latency is
/// the request's; throughput counts acknowledged messages. Then waits (bounded) for
/// every reply and checks each conversation's stored history.
pub async fn send_rest(
    cluster: &Cluster,
    clients: usize,
    messages: usize,
    limit: Duration,
) -> Result<Report> {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let (cluster, barrier) = (cluster.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let home = cluster.at(client);
            let guest = home.guest().await?;
            let conversation = home.start(&guest.token, ECHO).await?;
            barrier.wait().await;
            let stop = Instant::now() + limit;
            let mut latencies = Vec::with_capacity(messages);
            for i in 0..messages {
                if Instant::now() >= stop {
                    break;
                }
                let sent = Instant::now();
                cluster
                    .at(client + i)
                    .send(
                        &guest.token,
                        &conversation.conversation_id,
                        &format!("m{i}"),
                    )
                    .await
                    .with_context(|| format!("client {client}, message {i}"))?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok((latencies, Followed::new(guest.token, conversation)))
        }));
    }
    barrier.wait().await;
    let cpu_before = cluster.cpu();
    let started = Instant::now();
    let (latencies, followed) = gather(tasks).await?;
    let elapsed = started.elapsed();
    let cpu = cpu_use(cpu_before, cluster.cpu());
    let drained = wait_for_replies(cluster.at(0), &followed).await?;
    let audit = audit_all(cluster.at(0), &followed).await?;
    let report = Report::new(
        format!("send rest {clients}x{messages}"),
        elapsed,
        latencies,
    );
    // A 201 says a message is stored, not answered: the replies may still be
    // catching up when the last request returns.
    let answered_per_s = report.operations as f64 / (elapsed + drained).as_secs_f64();
    Ok(with_cpu(audit.into_report(report), cpu.as_ref())
        .with("drain_s", drained.as_secs_f64())
        .with("answered_per_s", answered_per_s))
}

/// `clients` sockets, client `c` on instance `c % n` in its own conversation with the
/// echo bot, each keeping up to `window` messages in flight, `messages` each, none
/// sent after `limit`. Latency runs from sending a `message` frame to its
/// acknowledgement; the run ends when everything sent is acknowledged and answered on
/// the socket. Each conversation's stored history is checked afterwards.
pub async fn send_ws(
    cluster: &Cluster,
    clients: usize,
    messages: usize,
    window: usize,
    limit: Duration,
) -> Result<Report> {
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let (cluster, barrier) = (cluster.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let home = cluster.at(client);
            let guest = home.guest().await?;
            let conversation = home.start(&guest.token, ECHO).await?;
            let mut socket = home.socket(&guest.token).await?;
            barrier.wait().await;
            let latencies = pipelined(
                &mut socket,
                &conversation.session_id,
                "",
                messages,
                window.max(1),
                Instant::now() + limit,
            )
            .await
            .with_context(|| format!("client {client}"))?;
            anyhow::Ok((latencies, Followed::new(guest.token, conversation)))
        }));
    }
    barrier.wait().await;
    let cpu_before = cluster.cpu();
    let started = Instant::now();
    let (latencies, followed) = gather(tasks).await?;
    let elapsed = started.elapsed();
    let cpu = cpu_use(cpu_before, cluster.cpu());
    let answered = latencies.len() as f64;
    let audit = audit_all(cluster.at(0), &followed).await?;
    let report = Report::new(
        format!("send ws {clients}x{messages} window {window}"),
        elapsed,
        latencies,
    )
    .with("stored_per_s", 2.0 * answered / elapsed.as_secs_f64())
    // The run ends only once every reply is back on its socket.
    .with("answered_per_s", answered / elapsed.as_secs_f64());
    Ok(with_cpu(audit.into_report(report), cpu.as_ref()))
}

/// A socket on instance A (the first) follows one conversation with the echo bot;
/// `samples` messages are posted one after the other on instance B (the others in
/// turn; A itself when alone), none after `limit`. Two reports: the time from sending
/// the POST to the `message` frame of that message on A's socket, and to the frame of
/// the bot's reply. Every frame is checked: a message id seen twice or a message
/// nobody sent is counted.
pub async fn roundtrip(cluster: &Cluster, samples: usize, limit: Duration) -> Result<Vec<Report>> {
    let home = cluster.at(0);
    let guest = home.guest().await?;
    let conversation = home.start(&guest.token, ECHO).await?;
    let mut socket = home.socket(&guest.token).await?;
    send_frame(
        &mut socket,
        &json!({"type": "subscribe", "conversation_id": conversation.conversation_id, "after_seq": 0}),
    )
    .await?;
    for _ in 0..FRAMES_PER_SAMPLE {
        let frame = next_frame(&mut socket).await?;
        match frame["type"].as_str() {
            Some("subscribed") => break,
            Some("error") => bail!("the server refused the subscription: {frame}"),
            _ => {}
        }
    }
    let others = cluster.len().saturating_sub(1);
    let mut seen = HashSet::new();
    let (mut duplicate_frames, mut unexpected_frames) = (0_u64, 0_u64);
    let mut message_latencies = Vec::with_capacity(samples);
    let mut reply_latencies = Vec::with_capacity(samples);
    let mut post_latencies = Vec::with_capacity(samples);
    let mut after_post_ms = Vec::with_capacity(samples);
    let cpu_before = cluster.cpu();
    let started = Instant::now();
    let stop = started + limit;
    for i in 0..samples {
        if Instant::now() >= stop {
            break;
        }
        let poster = if others == 0 {
            home
        } else {
            cluster.at(1 + i % others)
        };
        let tag = format!("rt{i}");
        let sent = Instant::now();
        let post = async {
            let stored = poster
                .send_tagged(
                    &guest.token,
                    &conversation.conversation_id,
                    &format!("r{i}"),
                    &tag,
                )
                .await;
            (stored, sent.elapsed())
        };
        let watch = async {
            let mut message: Option<(String, Duration)> = None;
            // Replies by the id of the message they answer: on the bus a reply could
            // overtake the message it answers, and is then matched when that arrives.
            let mut replies: HashMap<String, Duration> = HashMap::new();
            for _ in 0..FRAMES_PER_SAMPLE {
                if let Some((id, at)) = &message
                    && let Some(reply_at) = replies.get(id)
                {
                    return Ok((id.clone(), *at, *reply_at));
                }
                let frame = next_frame(&mut socket).await?;
                match frame["type"].as_str() {
                    Some("message") => {}
                    Some("error") => bail!("the server sent an error frame: {frame}"),
                    _ => continue,
                }
                let id = frame["id"].as_str().unwrap_or_default().to_owned();
                if !seen.insert(id.clone()) {
                    duplicate_frames += 1;
                    continue;
                }
                if frame["sender"] == "user" && frame["client_message_id"] == tag.as_str() {
                    message = Some((id, sent.elapsed()));
                } else if frame["sender"] == "bot"
                    && let Some(answered) = frame["reply_to"].as_str()
                {
                    replies.insert(answered.to_owned(), sent.elapsed());
                } else {
                    unexpected_frames += 1;
                }
            }
            bail!("sample {i}: no message and reply within {FRAMES_PER_SAMPLE} frames")
        };
        let ((stored, post_latency), watched) = tokio::join!(post, watch);
        let stored = stored.with_context(|| format!("sample {i}: the POST failed"))?;
        let (id, message_at, reply_at) =
            watched.with_context(|| format!("sample {i}: posted as {}", stored.message_id))?;
        ensure!(
            id == stored.message_id,
            "sample {i}: the socket got message {id}, the POST stored {}",
            stored.message_id
        );
        // Negative when the frame came before the 201: what the bus adds to the
        // delivery, with the send's own cost taken out.
        after_post_ms.push((message_at.as_secs_f64() - post_latency.as_secs_f64()) * 1000.0);
        message_latencies.push(message_at);
        reply_latencies.push(reply_at);
        post_latencies.push(post_latency);
    }
    let elapsed = started.elapsed();
    let cpu = cpu_use(cpu_before, cluster.cpu());
    let _ = futures::SinkExt::close(&mut socket).await;
    let mut followed = Followed::new(guest.token, conversation);
    followed.user_messages = message_latencies.len() as u64;
    let audit = audit_all(home, std::slice::from_ref(&followed)).await?;
    let posts = Report::new("post", elapsed, post_latencies);
    let count = message_latencies.len();
    let message = Report::new(
        format!("cross-instance message {count}"),
        elapsed,
        message_latencies,
    )
    .with("post_p50_ms", posts.p50_us as f64 / 1000.0)
    .with("post_p99_ms", posts.p99_us as f64 / 1000.0)
    .with(
        "after_post_p50_ms",
        signed_percentile(&mut after_post_ms, 50.0),
    )
    .with(
        "after_post_p99_ms",
        signed_percentile(&mut after_post_ms, 99.0),
    )
    .with("duplicate_frames", duplicate_frames as f64)
    .with("unexpected_frames", unexpected_frames as f64);
    let reply = Report::new(
        format!("cross-instance reply {count}"),
        elapsed,
        reply_latencies,
    );
    Ok(vec![
        with_cpu(message, cpu.as_ref()),
        with_cpu(audit.into_report(reply), cpu.as_ref()),
    ])
}

/// The nearest-rank percentile of values that may be negative; 0 when there are none.
fn signed_percentile(values: &mut [f64], pct: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return 0.0;
    }
    let rank = ((pct / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

/// The figures of `reports` that say the cluster misbehaved, as `scenario: name value`
/// lines; empty when every message was stored once, answered once and delivered once.
pub fn misbehaviour(reports: &[Report]) -> Vec<String> {
    const SIGNS: [&str; 6] = [
        "unanswered",
        "duplicate_replies",
        "seq_gaps",
        "extra_user_messages",
        "duplicate_frames",
        "unexpected_frames",
    ];
    reports
        .iter()
        .flat_map(|report| {
            SIGNS.iter().filter_map(|sign| {
                report
                    .extra
                    .get(*sign)
                    .filter(|value| **value != 0.0)
                    .map(|value| format!("{}: {sign} {value}", report.scenario))
            })
        })
        .collect()
}

/// A conversation a scenario wrote to, and how many user messages it stored there.
struct Followed {
    token: String,
    conversation_id: String,
    user_messages: u64,
}

impl Followed {
    fn new(token: String, started: crate::client::Started) -> Self {
        Self {
            token,
            conversation_id: started.conversation_id,
            user_messages: 0,
        }
    }
}

/// Waits until every conversation holds its user messages and as many replies, for
/// at most [`REPLY_WAIT`]; returns how long that took. Not getting there is not an
/// error here: the audit that follows says what is missing.
async fn wait_for_replies(api: &Api, followed: &[Followed]) -> Result<Duration> {
    let started = Instant::now();
    let polls = REPLY_WAIT.as_millis() / REPLY_POLL.as_millis();
    let mut pending: Vec<&Followed> = followed.iter().collect();
    for _ in 0..polls {
        let mut still = Vec::with_capacity(pending.len());
        for conversation in pending {
            let current = api
                .get(
                    &conversation.token,
                    &format!("/conversations/{}", conversation.conversation_id),
                )
                .await?;
            if current["message_count"].as_u64() < Some(2 * conversation.user_messages) {
                still.push(conversation);
            }
        }
        pending = still;
        if pending.is_empty() || started.elapsed() >= REPLY_WAIT {
            break;
        }
        tokio::time::sleep(REPLY_POLL).await;
    }
    Ok(started.elapsed())
}

/// What the stored histories hold, summed over conversations.
#[derive(Debug, Default, Clone, PartialEq)]
struct Audit {
    /// For each answered user message, its reply's server timestamp minus its own,
    /// in milliseconds: how long the reply took to be stored, whichever instance
    /// produced it.
    reply_lags_ms: Vec<f64>,
    /// User messages that have no bot reply.
    unanswered: u64,
    /// Bot replies beyond the first to the same user message.
    duplicate_replies: u64,
    /// Places where a seq is not the one before it plus one.
    seq_gaps: u64,
    /// User messages stored beyond those the scenario had acknowledged.
    extra_user_messages: u64,
}

impl Audit {
    fn into_report(mut self, report: Report) -> Report {
        let late = self
            .reply_lags_ms
            .iter()
            .filter(|lag| **lag >= LATE_REPLY_MS)
            .count();
        report
            .with(
                "reply_lag_p50_ms",
                signed_percentile(&mut self.reply_lags_ms, 50.0),
            )
            .with(
                "reply_lag_p99_ms",
                signed_percentile(&mut self.reply_lags_ms, 99.0),
            )
            .with(
                "reply_lag_max_ms",
                signed_percentile(&mut self.reply_lags_ms, 100.0),
            )
            .with("replies_after_1s", late as f64)
            .with("unanswered", self.unanswered as f64)
            .with("duplicate_replies", self.duplicate_replies as f64)
            .with("seq_gaps", self.seq_gaps as f64)
            .with("extra_user_messages", self.extra_user_messages as f64)
    }
}

async fn audit_all(api: &Api, followed: &[Followed]) -> Result<Audit> {
    let mut total = Audit::default();
    for conversation in followed {
        let messages = history(api, conversation).await?;
        let audit = audit(&messages, conversation.user_messages);
        total.reply_lags_ms.extend(audit.reply_lags_ms);
        total.unanswered += audit.unanswered;
        total.duplicate_replies += audit.duplicate_replies;
        total.seq_gaps += audit.seq_gaps;
        total.extra_user_messages += audit.extra_user_messages;
    }
    Ok(total)
}

/// Every stored message of a conversation, oldest first, read in pages; bounded by
/// the number of messages the scenario expects there, with room for surprises.
async fn history(api: &Api, conversation: &Followed) -> Result<Vec<Value>> {
    let most_pages = (4 * conversation.user_messages).div_ceil(AUDIT_PAGE) + 2;
    let mut messages = Vec::new();
    let mut after = 0_u64;
    for _ in 0..most_pages {
        let page = api
            .get(
                &conversation.token,
                &format!(
                    "/conversations/{}/history?limit={AUDIT_PAGE}&after={after}",
                    conversation.conversation_id
                ),
            )
            .await?;
        let batch = page["messages"].as_array().cloned().unwrap_or_default();
        if let Some(last) = batch.last() {
            after = last["seq"]
                .as_u64()
                .context("a stored message without seq")?;
        }
        messages.extend(batch);
        if page["has_more"] != true {
            return Ok(messages);
        }
    }
    bail!(
        "conversation {} holds more than {most_pages} pages of messages",
        conversation.conversation_id
    )
}

/// Checks one conversation's messages against `user_messages` acknowledged sends:
/// each answered exactly once by the bot, seqs without gaps.
fn audit(messages: &[Value], user_messages: u64) -> Audit {
    // Per user message: how many replies, and when the first was stored.
    let mut replies: HashMap<&str, (u64, Option<i128>)> = HashMap::new();
    let mut users = Vec::new();
    let mut seq_gaps = 0;
    let mut previous = 0;
    for message in messages {
        let seq = message["seq"].as_u64().unwrap_or(0);
        if seq != previous + 1 {
            seq_gaps += 1;
        }
        previous = seq;
        match message["sender"].as_str() {
            Some("user") => users.push((
                message["id"].as_str().unwrap_or_default(),
                stored_at_ms(message),
            )),
            Some("bot") => {
                if let Some(answered) = message["reply_to"].as_str() {
                    let entry = replies.entry(answered).or_default();
                    entry.0 += 1;
                    entry.1 = entry.1.or(stored_at_ms(message));
                }
            }
            _ => {}
        }
    }
    let mut audit = Audit {
        seq_gaps,
        extra_user_messages: (users.len() as u64).saturating_sub(user_messages),
        ..Audit::default()
    };
    for (user, asked_at) in users {
        match replies.get(user).copied().unwrap_or_default() {
            (0, _) => audit.unanswered += 1,
            (n, answered_at) => {
                audit.duplicate_replies += n - 1;
                if let (Some(asked), Some(answered)) = (asked_at, answered_at) {
                    audit.reply_lags_ms.push((answered - asked) as f64);
                }
            }
        }
    }
    audit
}

/// A message's server timestamp in milliseconds since 1970, when it parses.
fn stored_at_ms(message: &Value) -> Option<i128> {
    let text = message["timestamp"].as_str()?;
    let at =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(at.unix_timestamp_nanos() / 1_000_000)
}

fn cpu_use(before: Option<CpuSample>, after: Option<CpuSample>) -> Option<CpuUse> {
    Some(before?.until(&after?))
}

/// The report with the cores the machine and each group of processes used while it
/// ran: `machine_cores`, `confab_cores`, `postgres_cores`, `nats_cores`,
/// `loadgen_cores`.
fn with_cpu(report: Report, cpu: Option<&CpuUse>) -> Report {
    let Some(cpu) = cpu else {
        return report;
    };
    let mut report = report.with("machine_cores", cpu.machine_cores);
    for (group, cores) in &cpu.groups {
        report = report.with(&format!("{group}_cores"), *cores);
    }
    report
}

/// A sending client's task: its latencies and the conversation it used.
type ClientTask = tokio::task::JoinHandle<anyhow::Result<(Vec<Duration>, Followed)>>;

/// Waits for every client task and puts their latencies together, each client's
/// conversation noting how many user messages it sent.
async fn gather(tasks: Vec<ClientTask>) -> anyhow::Result<(Vec<Duration>, Vec<Followed>)> {
    let mut latencies = Vec::new();
    let mut followed = Vec::with_capacity(tasks.len());
    for task in tasks {
        let (measured, mut conversation) = task.await.context("a client task panicked")??;
        conversation.user_messages = measured.len() as u64;
        latencies.extend(measured);
        followed.push(conversation);
    }
    Ok((latencies, followed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, sender: &str, id: &str, reply_to: Option<&str>) -> Value {
        let timestamp = format!("2026-12-03T08:00:00.{:03}Z", seq * 10);
        json!({"seq": seq, "sender": sender, "id": id, "reply_to": reply_to,
               "timestamp": timestamp})
    }

    #[test]
    fn a_history_where_each_message_is_answered_once_passes() {
        let messages = [
            message(1, "user", "a", None),
            message(2, "bot", "x", Some("a")),
            message(3, "user", "b", None),
            message(4, "bot", "y", Some("b")),
        ];
        let audit = audit(&messages, 2);
        assert_eq!(
            (audit.unanswered, audit.duplicate_replies, audit.seq_gaps),
            (0, 0, 0)
        );
        assert_eq!(audit.reply_lags_ms, vec![10.0, 10.0]);
    }

    #[test]
    fn late_replies_are_counted_in_the_report() {
        let audit = Audit {
            reply_lags_ms: vec![3.0, 2500.0, 5.0],
            ..Audit::default()
        };
        let report = audit.into_report(Report::new("x", Duration::from_secs(1), Vec::new()));
        assert_eq!(report.extra["replies_after_1s"], 1.0);
        assert_eq!(report.extra["reply_lag_p50_ms"], 5.0);
        assert_eq!(report.extra["reply_lag_max_ms"], 2500.0);
    }

    #[test]
    fn missing_and_doubled_replies_and_seq_gaps_are_counted() {
        let messages = [
            message(1, "user", "a", None),
            message(2, "bot", "x", Some("a")),
            message(3, "bot", "y", Some("a")),
            message(5, "user", "b", None),
        ];
        let audit = audit(&messages, 2);
        assert_eq!(
            (audit.unanswered, audit.duplicate_replies, audit.seq_gaps),
            (1, 1, 1)
        );
    }

    #[test]
    fn user_messages_beyond_those_acknowledged_are_counted() {
        let messages = [
            message(1, "user", "a", None),
            message(2, "bot", "x", Some("a")),
            message(3, "user", "b", None),
            message(4, "bot", "y", Some("b")),
        ];
        assert_eq!(audit(&messages, 1).extra_user_messages, 1);
    }

    #[test]
    fn percentiles_of_signed_values_are_nearest_rank() {
        let mut values = vec![0.5, -0.25, 2.0, 0.0];
        assert_eq!(signed_percentile(&mut values, 50.0), 0.0);
        assert_eq!(signed_percentile(&mut values, 99.0), 2.0);
        assert_eq!(signed_percentile(&mut [], 50.0), 0.0);
    }

    #[test]
    fn misbehaviour_names_only_the_nonzero_signs() {
        let clean = Report::new("a", Duration::from_secs(1), Vec::new())
            .with("unanswered", 0.0)
            .with("machine_cores", 1.5);
        let lossy = Report::new("b", Duration::from_secs(1), Vec::new())
            .with("unanswered", 3.0)
            .with("duplicate_frames", 1.0);
        assert_eq!(
            misbehaviour(&[clean, lossy]),
            vec!["b: unanswered 3", "b: duplicate_frames 1"]
        );
    }
}
