//! `cargo xtask bench`: builds release binaries, starts `confab` on a free port with a
//! fresh database, runs every `confab-loadgen` scenario at sizes that finish in a few
//! minutes, and writes `docs/benchmarks.md` with each figure beside its floor (a bare
//! SQLite insert loop and a bare axum WebSocket echo, measured in the same run). The
//! raw reports stay under `target/bench/`.
//!
//! With `--postgres` the same scenarios also run on a fresh database of the local
//! PostgreSQL (`CONFAB_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`),
//! created before and dropped after.
//!
//! With `--cluster` ([`cluster`]) the scale-out figures are measured instead: 1, 2 and
//! 3 instances on PostgreSQL and NATS. They have their own generated block in the
//! document, which the single-node run keeps, as the cluster run keeps the rest;
//! `--postgres --cluster` runs both.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use xshell::{Shell, cmd};

mod cluster;

/// Where the raw reports and the databases go, from the workspace root.
const OUT: &str = "target/bench";
/// The document written, from the workspace root.
const DOCUMENT: &str = "docs/benchmarks.md";
/// The heading of the hand-written part of [`DOCUMENT`], which a run keeps.
const NOTES: &str = "## Analysis";
/// How long a started server may take to accept connections.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

/// One load generator run: its file name under the backend's folder and its arguments.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
}

/// The scenarios, at sizes that take about a minute per backend on two cores.
const STEPS: [Step; 13] = [
    Step {
        name: "send-ws",
        args: &[
            "send",
            "--transport",
            "ws",
            "--clients",
            "16",
            "--messages",
            "1000",
            "--window",
            "8",
        ],
    },
    Step {
        name: "send-ws-1kb",
        args: &[
            "send",
            "--transport",
            "ws",
            "--clients",
            "16",
            "--messages",
            "500",
            "--window",
            "8",
            "--content-bytes",
            "1000",
        ],
    },
    Step {
        name: "send-rest",
        args: &[
            "send",
            "--transport",
            "rest",
            "--clients",
            "16",
            "--messages",
            "500",
        ],
    },
    Step {
        name: "roundtrip",
        args: &["roundtrip", "--messages", "2000"],
    },
    Step {
        name: "roundtrip-loaded",
        args: &[
            "roundtrip",
            "--messages",
            "1000",
            "--background-rate",
            "5000",
        ],
    },
    Step {
        name: "history-10k",
        args: &["history", "--messages", "10000", "--pages", "2000"],
    },
    Step {
        name: "history-1m",
        args: &["history", "--messages", "1000000", "--pages", "2000"],
    },
    Step {
        name: "history-1m-by-time",
        args: &[
            "history",
            "--messages",
            "1000000",
            "--pages",
            "500",
            "--by-time",
        ],
    },
    Step {
        name: "search-1m",
        args: &["search", "--messages", "1000000", "--queries", "500"],
    },
    Step {
        name: "export-1k",
        args: &["export", "--messages", "1000"],
    },
    Step {
        name: "export-100k",
        args: &["export", "--messages", "100000"],
    },
    Step {
        name: "list",
        args: &["list", "--conversations", "10000", "--pages", "1000"],
    },
    Step {
        name: "sockets",
        args: &["sockets", "--count", "10000"],
    },
];

/// Runs the single-node benchmark on SQLite (and PostgreSQL), or with `cluster` alone
/// only the scale-out one, and writes [`DOCUMENT`].
pub(crate) fn run(sh: &Shell, postgres: bool, cluster: bool) -> Result<()> {
    cmd!(
        sh,
        "cargo build --release -p confab-server -p confab-loadgen"
    )
    .run()
    .context("cannot build the release binaries")?;
    let root = sh.current_dir();
    let out = root.join(OUT);
    std::fs::create_dir_all(&out)?;
    let loadgen = root.join("target/release/confab-loadgen");
    let server = root.join("target/release/confab");
    // The single-node run rewrites the document above its analysis, which holds the
    // cluster's block; the cluster run then rewrites that block alone.
    if postgres || !cluster {
        single_node(sh, &server, &loadgen, &out, postgres)?;
    }
    if cluster {
        cluster::run(sh, &server, &loadgen, &out)?;
    }
    Ok(())
}

/// The floors and every scenario on one server per backend; rewrites [`DOCUMENT`]
/// above [`NOTES`].
fn single_node(
    sh: &Shell,
    server: &Path,
    loadgen: &Path,
    out: &Path,
    postgres: bool,
) -> Result<()> {
    eprintln!("\n==> bench: floors");
    let floor_db = out.join("floor.db");
    remove_sqlite(&floor_db)?;
    let floor_json = out.join("floor.json");
    let mut floor = Command::new(loadgen);
    floor
        .arg("floor")
        .arg("--sqlite-file")
        .arg(&floor_db)
        .arg("--json")
        .arg(&floor_json);
    let floor_database = format!("confab_bench_floor_{}", std::process::id());
    if postgres {
        floor
            .arg("--postgres-url")
            .arg(create_database(sh, &floor_database)?);
    }
    let status = floor.status();
    if postgres {
        drop_database(sh, &floor_database)?;
    }
    if !status?.success() {
        bail!("the floor measurement failed");
    }
    let floors = read_reports(&floor_json)?;

    let mut backends = vec![(
        "SQLite",
        run_backend(sh, server, loadgen, out, Backend::Sqlite)?,
    )];
    if postgres {
        backends.push((
            "PostgreSQL",
            run_backend(sh, server, loadgen, out, Backend::Postgres)?,
        ));
    }

    let command = if postgres {
        "cargo xtask bench --postgres"
    } else {
        "cargo xtask bench"
    };
    let mut document = render(sh, command, &floors, &backends)?;
    // The hand-written analysis below the figures survives a new run.
    if let Ok(previous) = sh.read_file(DOCUMENT)
        && let Some(at) = previous.find(NOTES)
    {
        document.push('\n');
        document.push_str(&previous[at..]);
    }
    sh.write_file(DOCUMENT, document)?;
    eprintln!("bench: wrote {DOCUMENT} and the raw reports under {OUT}/");
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Starts a server on a fresh database, runs every step, stops the server.
fn run_backend(
    sh: &Shell,
    server: &Path,
    loadgen: &Path,
    out: &Path,
    backend: Backend,
) -> Result<Vec<Value>> {
    let folder = out.join(match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    });
    std::fs::create_dir_all(&folder)?;
    let (database_url, throwaway) = match backend {
        Backend::Sqlite => {
            let file = folder.join("confab.db");
            remove_sqlite(&file)?;
            (format!("sqlite://{}?mode=rwc", file.display()), None)
        }
        Backend::Postgres => {
            let name = format!("confab_bench_{}", std::process::id());
            (create_database(sh, &name)?, Some(name))
        }
    };
    let result = run_steps(server, loadgen, &folder, &database_url);
    if let Some(name) = throwaway {
        drop_database(sh, &name)?;
    }
    result
}

/// The local PostgreSQL's administrative URL, to create and drop bench databases.
fn postgres_admin() -> String {
    std::env::var("CONFAB_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates the empty database `name` on the local PostgreSQL; returns its URL.
fn create_database(sh: &Shell, name: &str) -> Result<String> {
    let admin = postgres_admin();
    let create = format!("CREATE DATABASE {name}");
    cmd!(sh, "psql {admin} -qc {create}")
        .run()
        .with_context(|| format!("cannot create the bench database {name}"))?;
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

/// Drops the database `name`, closing whatever connections are left to it.
fn drop_database(sh: &Shell, name: &str) -> Result<()> {
    let admin = postgres_admin();
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    cmd!(sh, "psql {admin} -qc {drop}")
        .run()
        .with_context(|| format!("cannot drop the bench database {name}"))
}

fn run_steps(
    server: &Path,
    loadgen: &Path,
    folder: &Path,
    database_url: &str,
) -> Result<Vec<Value>> {
    let address = free_address()?;
    let log = std::fs::File::create(folder.join("server.log"))?;
    let mut child = Command::new(server)
        .env("CONFAB_LISTEN", address.to_string())
        .env("CONFAB_DATABASE_URL", database_url)
        // Logging every request would measure the log as much as the server.
        .env("RUST_LOG", "warn")
        .env("CONFAB_LOG__FILTER", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("cannot start the server")?;
    let outcome = (|| {
        wait_until_listening(address, &mut child)?;
        let mut reports = Vec::new();
        for step in &STEPS {
            eprintln!("\n==> bench: {} on {}", step.name, folder.display());
            let json = folder.join(format!("{}.json", step.name));
            let mut command = Command::new(loadgen);
            command
                .arg("--url")
                .arg(format!("http://{address}"))
                .arg("--json")
                .arg(&json)
                .args(step.args)
                .env("CONFAB_DATABASE_URL", database_url);
            // The send and round-trip scenarios report the server's CPU per operation.
            command.arg("--cpu-of").arg(child.id().to_string());
            if step.name == "sockets" || step.name.starts_with("export") {
                command.arg("--server-pid").arg(child.id().to_string());
            }
            if !command.status()?.success() {
                bail!("the {} scenario failed", step.name);
            }
            reports.extend(read_reports(&json)?);
        }
        Ok(reports)
    })();
    stop(&mut child);
    outcome
}

/// A port nobody listens on now: bound, read, and released for the server.
fn free_address() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr()?)
}

fn wait_until_listening(address: SocketAddr, child: &mut Child) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < STARTUP_LIMIT {
        if let Some(status) = child.try_wait()? {
            bail!("the server exited at start-up: {status}");
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the server did not listen on {address} within {STARTUP_LIMIT:?}")
}

/// SIGTERM, so the server shuts down as in production; SIGKILL if it lingers.
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn remove_sqlite(file: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", file.display()));
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    Ok(())
}

fn read_reports(path: &Path) -> Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match serde_json::from_str(&text)? {
        Value::Array(reports) => Ok(reports),
        _ => bail!("{} holds no array of reports", path.display()),
    }
}

/// How a scenario compares with its floor.
enum Against {
    /// Operations per second (or the named extra figure), as a fraction of the floor's.
    Throughput(&'static str, &'static str),
    /// p50 and p99 as multiples of the floor's.
    Latency(&'static str),
    None,
}

/// The floor a scenario of the backend named `backend` is compared with: the same
/// engine's bare inserts and page reads, the bare WebSocket echo for what a socket
/// carries.
fn floor_of(scenario: &str, backend: &str) -> Against {
    let postgres = backend == "PostgreSQL";
    if scenario.starts_with("send ws") {
        Against::Throughput("floor: ws echo 16x", "stored_per_s")
    } else if scenario.starts_with("send rest") {
        Against::Throughput(
            if postgres {
                "floor: postgres insert, 1 row/stmt"
            } else {
                "floor: sqlite insert"
            },
            "per_second",
        )
    } else if scenario.starts_with("roundtrip") {
        Against::Latency("floor: ws echo roundtrip")
    } else if scenario.starts_with("history") {
        Against::Latency("floor: http get")
    } else if scenario.starts_with("list") {
        Against::Latency(if postgres {
            "floor: postgres 50-row page"
        } else {
            "floor: sqlite 50-row page"
        })
    } else {
        Against::None
    }
}

fn figure(report: &Value, name: &str) -> f64 {
    report
        .get(name)
        .or_else(|| report.get("extra").and_then(|extra| extra.get(name)))
        .and_then(Value::as_f64)
        .unwrap_or(0.0)
}

fn ms(report: &Value, name: &str) -> f64 {
    figure(report, name) / 1000.0
}

fn find<'a>(reports: &'a [Value], prefix: &str) -> Option<&'a Value> {
    reports.iter().find(|r| {
        r["scenario"]
            .as_str()
            .is_some_and(|s| s.starts_with(prefix))
    })
}

fn render(
    sh: &Shell,
    command: &str,
    floors: &[Value],
    backends: &[(&str, Vec<Value>)],
) -> Result<String> {
    let date = cmd!(sh, "date -u '+%Y-%m-%d %H:%M UTC'").read()?;
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());

    let mut doc = String::new();
    let _ = writeln!(doc, "# Benchmarks\n");
    let _ = writeln!(
        doc,
        "Written by `{command}` on {date}: release build, the built-in `echo` bot, server and \
         load generator (`crates/loadgen`, binary `confab-loadgen`) on the same machine over \
         127.0.0.1. Raw reports: `target/bench/`.\n"
    );
    let _ = writeln!(
        doc,
        "Machine: {cores} cores (`nproc`), {model}, {memory_gib:.1} GiB memory.\n"
    );
    let _ = writeln!(doc, "## Floors (same run)\n");
    let _ = writeln!(
        doc,
        "What the machine does with no server logic: bare SQLite inserts through the C \
        library (rusqlite on the same bundled build; WAL, `synchronous=NORMAL`; one row per \
        transaction, then 64) and 50-row page reads; with \
        `--postgres` bare PostgreSQL inserts (one row per statement from 16 connections at \
        once, then 64 rows per statement) and 50-row page reads; a bare axum \
        WebSocket echo that stores nothing; and a bare axum server answering a GET with \
        a history page's worth of JSON made once, fetched by the load generator's own \
        HTTP client. Each backend's figures are compared with its own engine's floor, \
        history pages with the HTTP one (a page over HTTP costs more than its read). The \
        floors run their servers in the load generator, on a runtime of their own with every \
        core; the scenarios' clients run on one thread.\n"
    );
    table_header(&mut doc, false);
    for floor in floors {
        table_row(&mut doc, floor, None);
    }
    for (name, reports) in backends {
        let _ = writeln!(doc, "\n## {name}\n");
        table_header(&mut doc, true);
        for report in reports {
            let ratio = against_floor(report, floors, name);
            table_row(&mut doc, report, Some(ratio));
        }
    }
    for (name, reports) in backends {
        let _ = writeln!(doc, "\n## Targets ({name})\n");
        for line in targets(name, reports, floors) {
            let _ = writeln!(doc, "- {line}");
        }
    }
    let _ = writeln!(
        doc,
        "\nExtra columns: `stored_per_s` counts user messages and bot replies stored; \
         `background_per_s` the load other sockets sent meanwhile; `seed_s` how long seeding \
         the history took; `kib_per_socket` the server's resident memory growth per idle \
         socket (`VmRSS` from `/proc/<pid>/status`); `server_cpu_us_per_op` and \
         `postgres_cpu_us_per_op` the CPU time the server and every PostgreSQL process \
         spent per operation (`/proc/<pid>/stat`), which other work on the machine moves \
         less than throughput."
    );
    Ok(doc)
}

fn table_header(doc: &mut String, with_floor: bool) {
    let _ = write!(
        doc,
        "| scenario | ops | ops/s | p50 ms | p90 ms | p99 ms | max ms | extra |"
    );
    let _ = writeln!(
        doc,
        "{}",
        if with_floor {
            " against the floor |"
        } else {
            ""
        }
    );
    let _ = write!(doc, "|---|---:|---:|---:|---:|---:|---:|---|");
    let _ = writeln!(doc, "{}", if with_floor { "---|" } else { "" });
}

fn table_row(doc: &mut String, report: &Value, ratio: Option<String>) {
    let extra = report["extra"]
        .as_object()
        .map(|extra| {
            extra
                .iter()
                .map(|(k, v)| format!("{k} {:.1}", v.as_f64().unwrap_or(0.0)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let _ = write!(
        doc,
        "| {} | {} | {:.0} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
        report["scenario"].as_str().unwrap_or(""),
        figure(report, "operations"),
        figure(report, "per_second"),
        ms(report, "p50_us"),
        ms(report, "p90_us"),
        ms(report, "p99_us"),
        ms(report, "max_us"),
        extra
    );
    let _ = writeln!(
        doc,
        "{}",
        ratio.map(|r| format!(" {r} |")).unwrap_or_default()
    );
}

/// The ratio of `report` to its floor (see [`floor_of`]) as the tables give it.
fn against_floor(report: &Value, floors: &[Value], backend: &str) -> String {
    let scenario = report["scenario"].as_str().unwrap_or("");
    let ratio = match floor_of(scenario, backend) {
        Against::Throughput(prefix, field) => find(floors, prefix).map(|floor| {
            let value = figure(report, field);
            let base = figure(floor, "per_second");
            format!("{:.2}× of {:.0}/s ({prefix})", value / base.max(1.0), base)
        }),
        Against::Latency(prefix) => find(floors, prefix).map(|floor| {
            format!(
                "p50 {:.1}×, p99 {:.1}× of {:.3} / {:.3} ms ({prefix})",
                ms(report, "p50_us") / ms(floor, "p50_us").max(0.001),
                ms(report, "p99_us") / ms(floor, "p99_us").max(0.001),
                ms(floor, "p50_us"),
                ms(floor, "p99_us")
            )
        }),
        Against::None => None,
    };
    ratio.unwrap_or_else(|| "no floor".to_owned())
}

/// Each target of issue 19 for `backend`, with the figure measured, its ratio to the
/// floor and whether it is met.
fn targets(backend: &str, reports: &[Value], floors: &[Value]) -> Vec<String> {
    let met = |ok: bool| if ok { "**met**" } else { "**not met**" };
    let floor = |report: &Value| against_floor(report, floors, backend);
    let postgres = backend == "PostgreSQL";
    let mut lines = Vec::new();
    if let Some(r) = find(reports, "send ws") {
        let answered = figure(r, "per_second");
        let target = if postgres { 5_000.0 } else { 10_000.0 };
        lines.push(format!(
            "WS send ≥ {target:.0} user messages/s answered (echo), 16 clients: {answered:.0}/s \
             ({:.0} stored/s; {}) — {}",
            figure(r, "stored_per_s"),
            floor(r),
            met(answered >= target)
        ));
    }
    if let Some(r) = find(reports, "send rest")
        && !postgres
    {
        let rate = figure(r, "per_second");
        lines.push(format!(
            "REST send ≥ 8 000 requests/s: {rate:.0}/s ({}) — {}",
            floor(r),
            met(rate >= 8000.0)
        ));
    }
    if let Some(r) = find(reports, "roundtrip 2000 background 0") {
        let (p50, p99) = (ms(r, "p50_us"), ms(r, "p99_us"));
        let (ok, wanted) = if postgres {
            (p50 <= 1.0, "p50 ≤ 1 ms")
        } else {
            (p50 <= 0.5 && p99 <= 2.0, "p50 ≤ 0.5 ms, p99 ≤ 2 ms")
        };
        lines.push(format!(
            "Round trip {wanted}: p50 {p50:.3} ms, p99 {p99:.3} ms ({}) — {}",
            floor(r),
            met(ok)
        ));
    }
    if !postgres {
        for (prefix, size) in [
            ("history 10000 ", "10 000"),
            ("history 1000000", "1 000 000"),
        ] {
            if let Some(r) = find(reports, prefix) {
                let (p50, p99) = (ms(r, "p50_us"), ms(r, "p99_us"));
                lines.push(format!(
                    "History page p50 ≤ 0.3 ms, p99 ≤ 1 ms at {size} messages: p50 {p50:.3} / \
                     p99 {p99:.3} ms ({}) — {}",
                    floor(r),
                    met(p50 <= 0.3 && p99 <= 1.0)
                ));
            }
        }
        if let Some(r) = find(reports, "sockets") {
            let kib = figure(r, "kib_per_socket");
            lines.push(format!(
                "Idle socket memory ≤ 10 KiB each: {kib:.1} KiB ({:.0} MiB resident with \
                 10 000, {:.0} MiB before them) — {}",
                figure(r, "rss_after_mib"),
                figure(r, "rss_before_mib"),
                met(kib <= 10.0)
            ));
        }
        if let (Some(small), Some(large)) = (
            find(reports, "export 1000 "),
            find(reports, "export 100000 "),
        ) {
            let (small, large) = (figure(small, "rss_peak_mib"), figure(large, "rss_peak_mib"));
            // The first export of a process warms allocator pools, so a few MiB of
            // growth are no sign of memory that follows the conversation's size.
            lines.push(format!(
                "Export memory independent of size: peak {large:.0} MiB streaming 100 000 \
                 messages, {small:.0} MiB streaming 1 000 — {}",
                met(large - small <= 10.0)
            ));
        }
    }
    lines
}
