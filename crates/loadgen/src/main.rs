//! The `confab-loadgen` command line: one scenario per subcommand, against the server
//! at `--url`, printing a table and optionally writing the reports as JSON.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use confab_loadgen::client::Api;
use confab_loadgen::cluster::{self, Cluster};
use confab_loadgen::cpu::CpuSample;
use confab_loadgen::report::{Report, table};
use confab_loadgen::{fanout, floor, scenarios, seeded};

/// Load generator for confab: throughput and latency over HTTP and WebSocket.
#[derive(Debug, Parser)]
#[command(name = "confab-loadgen", version, about)]
struct Cli {
    /// Base URL of the running server.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Also write the reports as a JSON array to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Give up on the scenario after this many seconds.
    #[arg(long, global = true, default_value_t = 600)]
    time_limit: u64,
    /// The server's process id: the send, round-trip and fan-out scenarios then also
    /// report the CPU time it and PostgreSQL spent per operation (and per frame for
    /// fan-out), a figure that other work on a shared machine moves far less than
    /// throughput.
    #[arg(long, global = true)]
    cpu_of: Option<u32>,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Transport {
    Rest,
    Ws,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// C clients, each in its own conversation with the echo bot, N messages each.
    Send {
        #[arg(long, value_enum, default_value = "ws")]
        transport: Transport,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// WebSocket only: unacknowledged messages a client keeps in flight.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Bytes added to each message's text (the echo's replies repeat it); the
        /// server takes up to 16 KiB.
        #[arg(long, default_value_t = 0)]
        content_bytes: usize,
    },
    /// A message sent, the bot's echo received, one after the other.
    Roundtrip {
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Messages per second other sockets send meanwhile.
        #[arg(long, default_value_t = 0)]
        background_rate: u32,
    },
    /// K sockets of one user follow one conversation with the echo bot while the
    /// first sends M messages: the cost of each event going out to every socket.
    Fanout {
        #[arg(long, default_value_t = 8)]
        sockets: usize,
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Unacknowledged messages the sending socket keeps in flight.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Bytes added to each message's text (the echo's replies repeat it); the
        /// server takes up to 16 KiB.
        #[arg(long, default_value_t = 0)]
        content_bytes: usize,
    },
    /// Random 50-message pages of a conversation seeded with M messages.
    History {
        /// The server's database, written directly to seed the conversation.
        #[arg(long, env = "CONFAB_DATABASE_URL")]
        database_url: String,
        #[arg(long, default_value_t = 10_000)]
        messages: u64,
        #[arg(long, default_value_t = 1000)]
        pages: usize,
        /// Bound each page by a message's time (`before=<RFC 3339>`) instead of
        /// its seq.
        #[arg(long)]
        by_time: bool,
    },
    /// Full-text searches over a conversation seeded with M messages: for a word in
    /// one message of a thousand, and for a word in all of them.
    Search {
        /// The server's database, written directly to seed the conversation.
        #[arg(long, env = "CONFAB_DATABASE_URL")]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        #[arg(long, default_value_t = 500)]
        queries: usize,
    },
    /// A conversation seeded with M messages, exported as JSON Lines, and the server's
    /// peak memory while it streams.
    Export {
        /// The server's database, written directly to seed the conversation.
        #[arg(long, env = "CONFAB_DATABASE_URL")]
        database_url: String,
        #[arg(long, default_value_t = 100_000)]
        messages: u64,
        /// The server's process id, to sample its resident memory.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Filtered pages of a user's conversation list.
    List {
        #[arg(long, default_value_t = 10_000)]
        conversations: usize,
        #[arg(long, default_value_t = 1000)]
        pages: usize,
    },
    /// K idle authenticated sockets, and the server's memory per socket.
    Sockets {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Sockets opened per guest user (servers limit them per user).
        #[arg(long, default_value_t = 16)]
        per_user: usize,
        /// The server's process id, to read its resident memory.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// The scale-out scenarios against several instances sharing PostgreSQL and NATS:
    /// REST sends round robin over them, WebSocket clients spread over them, and the
    /// round trip of a message posted on one instance to a socket on another. Stops at
    /// the first scenario that finds a lost, doubled or stray message.
    Cluster {
        /// Base URLs of the instances, comma-separated; the round trip's socket is on
        /// the first.
        #[arg(long, value_delimiter = ',', required = true)]
        urls: Vec<String>,
        /// Process ids of the instances on this machine, comma-separated, for the
        /// cores they use.
        #[arg(long, value_delimiter = ',')]
        pids: Vec<u32>,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// Messages each REST client posts.
        #[arg(long, default_value_t = 500)]
        rest_messages: usize,
        /// Messages each WebSocket client sends.
        #[arg(long, default_value_t = 1000)]
        ws_messages: usize,
        /// WebSocket only: unacknowledged messages a client keeps in flight.
        #[arg(long, default_value_t = 8)]
        window: usize,
        /// Round trips measured, one after the other.
        #[arg(long, default_value_t = 500)]
        samples: usize,
        /// Seconds a scenario keeps sending; what is in flight is then waited for.
        #[arg(long, default_value_t = 120)]
        scenario_limit: u64,
    },
    /// The floors: bare SQLite (and PostgreSQL) insert loops and page reads, and a
    /// bare WebSocket echo (no server).
    Floor {
        /// The SQLite file to create (it must not exist).
        #[arg(long)]
        sqlite_file: PathBuf,
        /// An empty PostgreSQL database to measure too (it gets a table of its own).
        #[arg(long)]
        postgres_url: Option<String>,
        #[arg(long, default_value_t = 20_000)]
        rows: u64,
        #[arg(long, default_value_t = 16)]
        clients: usize,
        #[arg(long, default_value_t = 2000)]
        messages: usize,
        #[arg(long, default_value_t = 8)]
        window: usize,
    },
}

/// The load generator shares the machine with the server it measures, so its clients
/// run on one thread: they take less CPU from the server than a thread per core would,
/// and an answer reaches the task waiting for it without a hop between threads
/// (docs/benchmarks-history.md, part eight, measured both ways on the same server). The floors'
/// servers get a runtime of their own with every core, as confab does.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let api = Api::new(&cli.url)?;
    let run = measured(&api, cli.scenario, cli.cpu_of);
    let reports = tokio::time::timeout(Duration::from_secs(cli.time_limit), run)
        .await
        .context("the scenario ran past --time-limit")??;
    print!("{}", table(&reports));
    if let Some(path) = cli.json {
        let json = serde_json::to_string_pretty(&reports)?;
        std::fs::write(&path, json).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let wrong = cluster::misbehaviour(&reports);
    if !wrong.is_empty() {
        bail!(
            "the server lost, doubled or misdelivered messages:\n{}",
            wrong.join("\n")
        );
    }
    Ok(())
}

/// Runs `scenario`; with `cpu_of`, a send, a fan-out or a round trip without
/// background load also reports the CPU time per operation of that server and of
/// PostgreSQL (`server_cpu_us_per_op`, `postgres_cpu_us_per_op`), and per frame
/// (`server_cpu_us_per_frame`) when the report counts `frames`. Other scenarios seed
/// data first, which would count too.
async fn measured(api: &Api, scenario: Scenario, cpu_of: Option<u32>) -> Result<Vec<Report>> {
    let server = match (&scenario, cpu_of) {
        // With background load the CPU would be the background's as much as the
        // round trips'.
        (
            Scenario::Send { .. }
            | Scenario::Fanout { .. }
            | Scenario::Roundtrip {
                background_rate: 0, ..
            },
            Some(pid),
        ) => pid,
        _ => return run(api, scenario).await,
    };
    let before = CpuSample::now(&[server])?;
    let started = Instant::now();
    let reports = run(api, scenario).await?;
    let span = started.elapsed().as_secs_f64();
    let used = before.until(&CpuSample::now(&[server])?);
    Ok(reports
        .into_iter()
        .map(|report| {
            let cpu_us = |group: &str| used.groups.get(group).copied().unwrap_or(0.0) * span * 1e6;
            let per_op = |group: &str| (cpu_us(group) / report.operations.max(1) as f64).round();
            let (server, postgres) = (per_op("confab"), per_op("postgres"));
            let frames = report.extra.get("frames").copied();
            let report = report
                .with("server_cpu_us_per_op", server)
                .with("postgres_cpu_us_per_op", postgres);
            match frames {
                // Tenths: a frame costs a few microseconds.
                Some(frames) => report.with(
                    "server_cpu_us_per_frame",
                    (cpu_us("confab") * 10.0 / frames.max(1.0)).round() / 10.0,
                ),
                None => report,
            }
        })
        .collect())
}

async fn run(api: &Api, scenario: Scenario) -> Result<Vec<Report>> {
    Ok(match scenario {
        Scenario::Send {
            transport: Transport::Rest,
            clients,
            messages,
            content_bytes,
            ..
        } => vec![scenarios::send_rest(api, clients, messages, content_bytes).await?],
        Scenario::Send {
            transport: Transport::Ws,
            clients,
            messages,
            window,
            content_bytes,
        } => vec![scenarios::send_ws(api, clients, messages, window, content_bytes).await?],
        Scenario::Roundtrip {
            messages,
            background_rate,
        } => vec![scenarios::roundtrip(api, messages, background_rate).await?],
        Scenario::Fanout {
            sockets,
            messages,
            window,
            content_bytes,
        } => vec![fanout::fanout(api, sockets, messages, window, content_bytes).await?],
        Scenario::History {
            database_url,
            messages,
            pages,
            by_time,
        } => vec![seeded::history(api, &database_url, messages, pages, by_time).await?],
        Scenario::Search {
            database_url,
            messages,
            queries,
        } => seeded::search(api, &database_url, messages, queries).await?,
        Scenario::Export {
            database_url,
            messages,
            server_pid,
        } => vec![seeded::export(api, &database_url, messages, server_pid).await?],
        Scenario::List {
            conversations,
            pages,
        } => vec![scenarios::list(api, conversations, pages).await?],
        Scenario::Sockets {
            count,
            per_user,
            server_pid,
        } => vec![scenarios::sockets(api, count, per_user, server_pid).await?],
        Scenario::Cluster {
            urls,
            pids,
            clients,
            rest_messages,
            ws_messages,
            window,
            samples,
            scenario_limit,
        } => {
            let nodes = Cluster::new(&urls, pids)?;
            let limit = Duration::from_secs(scenario_limit);
            let mut reports =
                vec![cluster::send_rest(&nodes, clients, rest_messages, limit).await?];
            // A cluster that loses messages is not measured further: what it did is
            // the finding, and later figures would rest on it.
            if cluster::misbehaviour(&reports).is_empty() {
                reports.push(cluster::send_ws(&nodes, clients, ws_messages, window, limit).await?);
            }
            if cluster::misbehaviour(&reports).is_empty() {
                reports.extend(cluster::roundtrip(&nodes, samples, limit).await?);
            }
            reports
        }
        Scenario::Floor {
            sqlite_file,
            postgres_url,
            rows,
            clients,
            messages,
            window,
        } => {
            let mut reports = floor::sqlite(&sqlite_file, rows, 1000).await?;
            if let Some(url) = postgres_url {
                reports.extend(floor::postgres(&url, rows, 1000).await?);
            }
            reports.extend(floor::ws_echo(clients, messages, window).await?);
            reports.push(floor::http_page(messages).await?);
            reports
        }
    })
}
