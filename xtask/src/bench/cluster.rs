//! `cargo xtask bench --cluster`: the scale-out figures. For each setup — one
//! instance with the in-process bus (the baseline), then 1, 2 and 3 instances on NATS —
//! a fresh PostgreSQL database is created, the release `confab` instances are started
//! on free ports of 127.0.0.1 with the same signing secret, `confab-loadgen cluster`
//! runs against all of them, and everything is stopped and dropped again.
//!
//! Every setup is measured [`ROUNDS`] times, the setups in turn. The medians go into
//! their own block of `docs/benchmarks.md` ([`report`]), between [`BEGIN`] and
//! [`END`], under the heading [`HEADING`]; whatever else the document holds, the
//! hand-written analysis below the block included, is kept.
//!
//! A setup where the load generator finds a lost, doubled or misdelivered message
//! stops the run: the instances' logs under `target/bench/cluster-*/` are the finding.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use xshell::Shell;

use super::{
    DOCUMENT, STARTUP_LIMIT, drop_database, free_address, read_reports, stop, wait_until_listening,
};

mod report;

use report::{median_reports, provenance, render, replace_block};

/// The section's heading in the document.
const HEADING: &str = "## Scale-out (PostgreSQL + NATS)";
/// Where the generated block starts; a run replaces everything up to [`END`].
const BEGIN: &str = "<!-- cargo xtask bench --cluster: generated from here -->";
/// Where the generated block ends; what follows is written by hand.
const END: &str = "<!-- cargo xtask bench --cluster: generated up to here -->";

/// The signing secret every instance of a setup shares, so that a token from one is
/// accepted by the others. A bench database lives for minutes; this is no secret.
const JWT_SECRET: &str = "bench-cluster-secret-bench-cluster-secret";

/// Clients of the send scenarios.
const CLIENTS: &str = "16";
/// Messages each REST client posts.
const REST_MESSAGES: &str = "500";
/// Messages each WebSocket client sends, and how many it keeps in flight.
const WS_MESSAGES: &str = "1000";
const WINDOW: &str = "8";
/// Sequential round trips measured.
const SAMPLES: &str = "500";
/// Seconds each scenario may keep sending (then what is in flight is waited for).
const SCENARIO_LIMIT: &str = "120";
/// Seconds the whole load generator run of one setup may take.
const RUN_LIMIT: &str = "900";
/// How often every setup is measured; the document shows the median of the rounds.
const ROUNDS: usize = 5;

/// One configuration measured.
struct Setup {
    /// Folder under `target/bench/` and database name suffix.
    name: &'static str,
    /// What the document calls it.
    label: &'static str,
    instances: usize,
    /// Whether the instances share events through NATS (`CONFAB_EVENTS__URL`).
    nats: bool,
}

const SETUPS: [Setup; 4] = [
    Setup {
        name: "cluster-1-inprocess",
        label: "1 instance, in-process bus",
        instances: 1,
        nats: false,
    },
    Setup {
        name: "cluster-1-nats",
        label: "1 instance, NATS",
        instances: 1,
        nats: true,
    },
    Setup {
        name: "cluster-2-nats",
        label: "2 instances, NATS",
        instances: 2,
        nats: true,
    },
    Setup {
        name: "cluster-3-nats",
        label: "3 instances, NATS",
        instances: 3,
        nats: true,
    },
];

/// Measures every setup and rewrites the document's scale-out block.
pub(super) fn run(sh: &Shell, server: &Path, loadgen: &Path, out: &Path) -> Result<()> {
    let nats = std::env::var("CONFAB_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let built_from = provenance(sh);
    // Rounds of every setup in turn rather than every round of one setup in a row:
    // whatever else loads the machine meanwhile is spread over all setups alike.
    let mut rounds: Vec<Vec<Vec<Value>>> = SETUPS.iter().map(|_| Vec::new()).collect();
    for round in 1..=ROUNDS {
        for (setup, measured) in SETUPS.iter().zip(&mut rounds) {
            eprintln!("\n==> bench: {}, round {round} of {ROUNDS}", setup.label);
            let folder = out.join(setup.name).join(format!("round-{round}"));
            std::fs::create_dir_all(&folder)?;
            let database = format!(
                "confab_bench_{}_{}{}",
                std::process::id(),
                setup.instances,
                if setup.nats { "" } else { "_inprocess" }
            );
            let url = super::create_database(sh, &database)?;
            let nats = setup.nats.then_some(nats.as_str());
            let result = run_setup(server, loadgen, &folder, setup, &url, nats);
            drop_database(sh, &database)?;
            measured.push(result?);
        }
    }
    let measured: Vec<(&Setup, Vec<Value>)> = SETUPS
        .iter()
        .zip(&rounds)
        .map(|(setup, rounds)| (setup, median_reports(rounds)))
        .collect();
    let block = render(sh, &built_from, &measured)?;
    let previous = sh.read_file(DOCUMENT).unwrap_or_default();
    sh.write_file(DOCUMENT, replace_block(&previous, &block))?;
    eprintln!("bench: wrote the scale-out block of {DOCUMENT}");
    Ok(())
}

/// Starts the setup's instances one after the other (the first migrates the fresh
/// database), runs the load generator against them, stops them.
fn run_setup(
    server: &Path,
    loadgen: &Path,
    folder: &Path,
    setup: &Setup,
    database_url: &str,
    nats: Option<&str>,
) -> Result<Vec<Value>> {
    let mut children: Vec<Child> = Vec::new();
    let mut addresses = Vec::new();
    let outcome = (|| {
        for index in 0..setup.instances {
            let address = free_address()?;
            let log = std::fs::File::create(log_path(folder, index))?;
            let mut command = Command::new(server);
            command
                .env("CONFAB_LISTEN", address.to_string())
                .env("CONFAB_DATABASE_URL", database_url)
                .env("CONFAB_JWT_SECRET", JWT_SECRET)
                // Logging every request would measure the log as much as the server;
                // warnings stay, since a cluster that warns is what to look at first.
                .env("RUST_LOG", "warn")
                .env("CONFAB_LOG__FILTER", "warn")
                .stdout(Stdio::null())
                .stderr(log);
            if let Some(nats) = nats {
                command.env("CONFAB_EVENTS__URL", nats);
            }
            let mut child = command.spawn().context("cannot start an instance")?;
            let waited =
                wait_until_listening(address, &mut child).and_then(|()| wait_until_ready(address));
            children.push(child);
            waited.with_context(|| format!("instance {index} on {address}"))?;
            addresses.push(address);
        }
        let json = folder.join("cluster.json");
        let urls: Vec<String> = addresses.iter().map(|a| format!("http://{a}")).collect();
        let pids: Vec<String> = children.iter().map(|c| c.id().to_string()).collect();
        let status = Command::new(loadgen)
            .arg("--json")
            .arg(&json)
            .args(["--time-limit", RUN_LIMIT])
            .arg("cluster")
            .arg("--urls")
            .arg(urls.join(","))
            .arg("--pids")
            .arg(pids.join(","))
            .args(["--clients", CLIENTS])
            .args(["--rest-messages", REST_MESSAGES])
            .args(["--ws-messages", WS_MESSAGES])
            .args(["--window", WINDOW])
            .args(["--samples", SAMPLES])
            .args(["--scenario-limit", SCENARIO_LIMIT])
            .status()?;
        if !status.success() {
            bail!(
                "confab-loadgen cluster failed on {}; the instances' logs are {}/instance-*.log",
                setup.label,
                folder.display()
            );
        }
        read_reports(&json)
    })();
    for child in &mut children {
        stop(child);
    }
    let warnings = (0..children.len())
        .map(|index| log_lines(&log_path(folder, index)))
        .sum::<usize>();
    if warnings > 0 {
        eprintln!(
            "bench: the instances of {} logged {warnings} lines (warnings or errors): {}/instance-*.log",
            setup.label,
            folder.display()
        );
    }
    outcome
}

fn log_path(folder: &Path, index: usize) -> PathBuf {
    folder.join(format!("instance-{index}.log"))
}

/// Non-empty lines of a log, which holds only warnings and errors.
fn log_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|text| text.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

/// Waits for `/readyz` to answer 200: an instance on NATS is not ready until its bus
/// is connected, and one measured before that would lose events.
fn wait_until_ready(address: SocketAddr) -> Result<()> {
    let started = Instant::now();
    let mut last = String::from("no answer");
    while started.elapsed() < STARTUP_LIMIT {
        match status_of(address, "/readyz") {
            Ok(200) => return Ok(()),
            Ok(status) => last = format!("status {status}"),
            Err(error) => last = error.to_string(),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("/readyz did not answer 200 within {STARTUP_LIMIT:?} ({last})")
}

/// The status code of `GET path`, over a plain HTTP/1.1 connection: xtask needs no
/// HTTP client for one status line.
fn status_of(address: SocketAddr, path: &str) -> Result<u16> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0_u8; 64];
    let read = stream.read(&mut head)?;
    parse_status(&head[..read]).context("not an HTTP status line")
}

fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_gives_its_code() {
        assert_eq!(
            parse_status(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(parse_status(b"garbage"), None);
    }
}
