//! `cargo xtask e2e`: the web page at `/` driven in a real browser, and Microsoft's
//! Direct Line clients against the Direct Line adapter.
//!
//! Installs what is missing (Debian's `chromium` through apt-get, `playwright-core`,
//! `botframework-webchat` and `botframework-directlinejs` through `npm ci` in `e2e/`;
//! never a browser download) and builds the server in release. Then, each time on a
//! free port of 127.0.0.1 with a fresh SQLite file, waiting for `/healthz` and
//! stopping the server after:
//! - one server runs `e2e/chat.spec.mjs`, the web page, and `e2e/widget.spec.mjs`,
//!   the widget on another site: it lets one more port of 127.0.0.1 embed the chat,
//!   where the widget script serves its host page, and `confab token --bot echo`
//!   gives the chat script a bot's token to post as the bot; then
//!   `e2e/handoff.spec.mjs`, a user handed over to a person on the agents' page,
//!   with two agents' tokens (`confab token --agent`) for `alice` and `bob`;
//! - one server, configured with a Direct Line secret for the `echo`, `slow` and
//!   `demo` bots, runs `e2e/directline-node.mjs` (directlinejs in node, WebSocket and
//!   polling) and `e2e/directline.spec.mjs` (Web Chat in Chromium).
//!
//! Screenshots and the servers' logs land in `target/e2e/`. Every wait is bounded; a
//! step that overruns fails the run with its name.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

/// Debian's browser, the one the test script launches.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the server may take to answer `/healthz` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the browser scenario may run; the script has its own, shorter, limit.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long each install command (apt-get, npm ci) may take, in seconds, for
/// coreutils' `timeout`.
const INSTALL_TIMEOUT_SECS: &str = "600";
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(100);

/// The bots the Direct Line scripts talk to, each with the environment variable that
/// holds its secret (the scripts read the same variables): `echo` and `demo` are
/// built in, `slow` is declared by [`directline_config`].
const DIRECTLINE_SECRETS: [(&str, &str); 3] = [
    ("echo", "DL_SECRET_ECHO"),
    ("slow", "DL_SECRET_SLOW"),
    ("demo", "DL_SECRET_DEMO"),
];
/// The Direct Line scripts, in the order they run, with the step name each is timed
/// under.
const DIRECTLINE_SCRIPTS: [(&str, &str); 2] = [
    ("directline-node.mjs", "direct line: directlinejs in node"),
    ("directline.spec.mjs", "direct line: Web Chat in chromium"),
];

/// Runs the browser test end to end.
pub(crate) fn run(sh: &Shell) -> Result<()> {
    let started = Instant::now();
    let root = sh.current_dir();
    let out_dir = target_dir(&root).join("e2e");
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let mut timings = Vec::new();

    timed(&mut timings, "tools", || install_tools(sh))?;
    timed(&mut timings, "npm ci", || {
        let _dir = sh.push_dir(root.join("e2e"));
        // The browser is Debian's; playwright must never fetch one. No package's install
        // script runs: the only ones (in Web Chat's dependencies) rebuild ES5 copies of
        // modules that the tests never load, since Web Chat comes as its built bundle.
        let _skip = sh.push_env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1");
        Ok(cmd!(
            sh,
            "timeout {INSTALL_TIMEOUT_SECS} npm ci --ignore-scripts --no-audit --no-fund --loglevel=error"
        )
        .run()?)
    })?;
    timed(&mut timings, "release build", || {
        Ok(cmd!(sh, "cargo build --release -p confab-server").run()?)
    })?;

    let data_dir = std::env::temp_dir().join(format!("confab-e2e-{}", std::process::id()));
    fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let outcome = timed(&mut timings, "browser scenario", || {
        scenario(&root, &out_dir, &data_dir)
    })
    .and_then(|()| directline_scenario(&root, &out_dir, &data_dir, &mut timings));
    // The database is thrown away whatever happened; the log stays in target/e2e.
    let _ = fs::remove_dir_all(&data_dir);
    outcome?;

    eprintln!(
        "\ne2e: passed in {:.1}s ({}); screenshots in {}",
        started.elapsed().as_secs_f64(),
        timings.join(", "),
        out_dir.display()
    );
    Ok(())
}

/// Runs `body`, noting how long it took under `name`, and naming it when it fails.
fn timed(timings: &mut Vec<String>, name: &str, body: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("\n==> e2e: {name}");
    let started = Instant::now();
    let outcome = body().with_context(|| format!("e2e failed at step `{name}`"));
    let took = started.elapsed().as_secs_f64();
    eprintln!(
        "<== e2e: {name} {} in {took:.1}s",
        if outcome.is_ok() { "done" } else { "FAILED" }
    );
    timings.push(format!("{name} {took:.1}s"));
    outcome
}

/// Installs chromium, node and npm from Debian when they are missing.
fn install_tools(sh: &Shell) -> Result<()> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push("chromium");
    }
    if !on_path("node") {
        missing.push("nodejs");
    }
    if !on_path("npm") {
        missing.push("npm");
    }
    if missing.is_empty() {
        eprintln!("chromium, node and npm are installed");
        return Ok(());
    }
    let uid = cmd!(sh, "id -u").quiet().read().unwrap_or_default();
    ensure!(
        uid.trim() == "0",
        "{} missing; install them (apt-get install -y {}) or run as root",
        missing.join(", "),
        missing.join(" ")
    );
    let _frontend = sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    cmd!(sh, "timeout {INSTALL_TIMEOUT_SECS} apt-get update -qq").run()?;
    // With its recommended packages: fonts-liberation among them, for readable pages.
    cmd!(
        sh,
        "timeout {INSTALL_TIMEOUT_SECS} apt-get install -y -qq {missing...}"
    )
    .run()?;
    ensure!(
        Path::new(CHROMIUM).exists(),
        "apt-get installed no {CHROMIUM}"
    );
    Ok(())
}

/// Whether an executable named `tool` is in one of the `PATH` directories.
fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

/// The web page's scripts of `e2e/`, run in this order against one server.
const SCRIPTS: &[&str] = &["chat.spec.mjs", "widget.spec.mjs", "handoff.spec.mjs"];

/// Starts the release server, runs the web page's scripts against it, stops it.
fn scenario(root: &Path, out_dir: &Path, data_dir: &Path) -> Result<()> {
    let database = format!("sqlite://{}?mode=rwc", data_dir.join("e2e.db").display());
    let embed_port = free_port()?.to_string();
    let embed_origins = format!("[\"http://127.0.0.1:{embed_port}\"]");
    let env = [
        ("CONFAB_DATABASE_URL", database.as_str()),
        ("CONFAB_WEB__EMBED_ORIGINS", embed_origins.as_str()),
    ];
    let log_path = out_dir.join("server.log");
    let mut server = Server::start(root, data_dir, &env, &log_path)?;
    let bot_token = token(
        root,
        data_dir,
        &env,
        &["--user", "e2e-bot", "--bot", "echo"],
    )?;
    let agent_token = token(root, data_dir, &env, &["--user", "alice", "--agent"])?;
    let other_agent_token = token(root, data_dir, &env, &["--user", "bob", "--agent"])?;
    let script_env = [
        ("CONFAB_E2E_EMBED_PORT", embed_port.as_str()),
        ("CONFAB_E2E_BOT_TOKEN", bot_token.as_str()),
        ("CONFAB_E2E_AGENT_TOKEN", agent_token.as_str()),
        ("CONFAB_E2E_OTHER_AGENT_TOKEN", other_agent_token.as_str()),
    ];
    let outcome = SCRIPTS
        .iter()
        .try_for_each(|script| node_script(root, script, server.address, out_dir, &script_env));
    let stopped = server.stop();
    outcome.with_context(|| format!("the server's log is {}", log_path.display()))?;
    stopped
}

/// Starts the release server with Direct Line secrets for the bots of
/// [`DIRECTLINE_SECRETS`], runs the Direct Line scripts against it, each timed in
/// `timings`, and stops it.
fn directline_scenario(
    root: &Path,
    out_dir: &Path,
    data_dir: &Path,
    timings: &mut Vec<String>,
) -> Result<()> {
    let config_path = data_dir.join("directline.toml");
    fs::write(&config_path, directline_config())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let config = config_path.display().to_string();
    let database = format!(
        "sqlite://{}?mode=rwc",
        data_dir.join("directline.db").display()
    );
    // Fresh secrets for each run; the scripts get them from the same variables.
    let secrets: Vec<(&str, String)> = DIRECTLINE_SECRETS
        .iter()
        .map(|&(bot, var)| (var, fresh_secret(bot)))
        .collect();
    let secrets: Vec<(&str, &str)> = secrets.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut env = vec![
        ("CONFAB_CONFIG", config.as_str()),
        ("CONFAB_DATABASE_URL", database.as_str()),
    ];
    env.extend_from_slice(&secrets);

    let log_path = out_dir.join("server-directline.log");
    let mut server = Server::start(root, data_dir, &env, &log_path)?;
    let outcome = DIRECTLINE_SCRIPTS.iter().try_for_each(|&(script, name)| {
        timed(timings, name, || {
            node_script(root, script, server.address, out_dir, &secrets)
        })
    });
    let stopped = server.stop();
    outcome.with_context(|| format!("the server's log is {}", log_path.display()))?;
    stopped
}

/// The Direct Line server's `confab.toml`: a secret for each bot of
/// [`DIRECTLINE_SECRETS`], and `slow`, an echo bot that streams slowly enough for Web
/// Chat to show it typing.
fn directline_config() -> String {
    let mut config = String::from("[directline]\ntoken_ttl = \"1h\"\n");
    for (bot, var) in DIRECTLINE_SECRETS {
        config.push_str(&format!(
            "\n[[directline.secrets]]\nbot_id = \"{bot}\"\nsecret_env = \"{var}\"\n"
        ));
    }
    config.push_str(
        "\n[[bots]]\nid = \"slow\"\nname = \"Slow echo\"\nkind = \"echo\"\n\
         settings = { stream = true, word_delay_ms = 700 }\n",
    );
    config
}

/// A Direct Line secret for `bot` that no other run shares.
fn fresh_secret(bot: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("e2e-{bot}-{}-{nanos:x}", std::process::id())
}

/// Runs `e2e/{script}` with node against the server at `address`, with `env` added,
/// and fails unless it passes within [`SCENARIO_TIMEOUT`].
fn node_script(
    root: &Path,
    script: &str,
    address: SocketAddr,
    out_dir: &Path,
    env: &[(&str, &str)],
) -> Result<()> {
    let node = Command::new("node")
        .arg(root.join("e2e").join(script))
        .current_dir(root.join("e2e"))
        .env("CONFAB_E2E_URL", format!("http://{address}"))
        .env("CONFAB_E2E_SCREENSHOTS", out_dir)
        .env("CONFAB_E2E_CHROMIUM", CHROMIUM)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .envs(env.iter().copied())
        .spawn()
        .with_context(|| format!("cannot start node {script}"))?;
    let status = wait_bounded(node, SCENARIO_TIMEOUT).with_context(|| format!("e2e/{script}"))?;
    ensure!(status.success(), "e2e/{script} failed ({status})");
    Ok(())
}

/// A token from `confab token` with `identity` (`--user …` and a role), valid for an
/// hour, as an operator mints one: the `echo` bot's, for the chat script to post a
/// bot's Markdown and attachments, and agents', for the handoff script.
fn token(root: &Path, dir: &Path, env: &[(&str, &str)], identity: &[&str]) -> Result<String> {
    let binary = target_dir(root).join("release").join("confab");
    let output = Command::new(&binary)
        .current_dir(dir)
        .envs(env.iter().copied())
        .arg("token")
        .args(identity)
        .args(["--ttl", "1h"])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} token", binary.display()))?;
    ensure!(
        output.status.success(),
        "confab token failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// The running server; killed if dropped without [`Server::stop`].
pub(crate) struct Server {
    child: Child,
    /// Where it listens.
    pub(crate) address: SocketAddr,
}

impl Server {
    /// Starts the release `confab` of the workspace at `root` on a free port of
    /// 127.0.0.1, in `dir`, with `env` added and its output in `log_path`, and waits
    /// until `/healthz` answers.
    pub(crate) fn start(
        root: &Path,
        dir: &Path,
        env: &[(&str, &str)],
        log_path: &Path,
    ) -> Result<Self> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let log = File::create(log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let binary = target_dir(root).join("release").join("confab");
        let child = Command::new(&binary)
            .current_dir(dir)
            .envs(env.iter().copied())
            .env("CONFAB_LISTEN", address.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut server = Self { child, address };
        eprintln!("server on http://{address}, log {}", log_path.display());
        wait_healthy(&mut server)
            .with_context(|| format!("the server did not start; see {}", log_path.display()))?;
        Ok(server)
    }

    /// Stops the server as an operator would (SIGTERM), killing it if it lingers.
    pub(crate) fn stop(&mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                eprintln!("server stopped ({status})");
                return Ok(());
            }
            thread::sleep(POLL);
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!("the server did not stop within {STOP_TIMEOUT:?} of SIGTERM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A port nothing listens on now; the OS hands out a fresh one for port 0.
pub(crate) fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `GET /healthz` answers 200, or the server exits, or the time is up.
fn wait_healthy(server: &mut Server) -> Result<()> {
    let address = server.address;
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Some(status) = server.child.try_wait()? {
            bail!("the server exited at start ({status})");
        }
        if healthz(address).unwrap_or(false) {
            return Ok(());
        }
        thread::sleep(POLL);
    }
    bail!("no answer from http://{address}/healthz within {START_TIMEOUT:?}")
}

/// One `GET /healthz` over a plain socket: true on a 200.
fn healthz(address: SocketAddr) -> Result<bool> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0_u8; 12];
    stream.read_exact(&mut head)?;
    Ok(head.starts_with(b"HTTP/1.1 200"))
}

/// Waits for `child` at most `limit`, killing it when the time is up.
pub(crate) fn wait_bounded(mut child: Child, limit: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        thread::sleep(POLL);
    }
    child.kill()?;
    child.wait()?;
    bail!("still running after {limit:?}; killed")
}

/// Where cargo builds: `CARGO_TARGET_DIR`, or `target/` of the workspace.
pub(crate) fn target_dir(root: &Path) -> PathBuf {
    resolve_target_dir(
        root,
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from),
    )
}

/// `configured` as cargo reads it: relative to the workspace root; `target/` if unset.
fn resolve_target_dir(root: &Path, configured: Option<PathBuf>) -> PathBuf {
    match configured {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead as _, BufReader};

    use super::*;

    /// Serves one connection on 127.0.0.1 with `answer` after reading the request head.
    fn one_shot_server(answer: &'static str) -> SocketAddr {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let address = listener.local_addr().expect("address");
        thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = reader.get_mut().write_all(answer.as_bytes());
        });
        address
    }

    #[test]
    fn healthz_is_true_on_a_200() {
        let address = one_shot_server("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        assert!(healthz(address).expect("an answer"));
    }

    #[test]
    fn healthz_is_false_on_a_503() {
        let address = one_shot_server("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        assert!(!healthz(address).expect("an answer"));
    }

    #[test]
    fn healthz_fails_when_nothing_listens() {
        let port = free_port().expect("a free port");
        assert!(healthz(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).is_err());
    }

    #[test]
    fn the_directline_config_gives_each_bot_its_secret_variable_and_declares_slow() {
        let config = directline_config();
        for (bot, var) in DIRECTLINE_SECRETS {
            assert!(
                config.contains(&format!("bot_id = \"{bot}\"\nsecret_env = \"{var}\"\n")),
                "{config}"
            );
            // CONFAB_ variables are configuration keys, never secrets.
            assert!(!var.starts_with("CONFAB_"), "{var}");
        }
        assert!(config.contains("[[bots]]\nid = \"slow\"\n"), "{config}");
        assert!(config.ends_with("settings = { stream = true, word_delay_ms = 700 }\n"));
    }

    #[test]
    fn fresh_secrets_are_long_enough_and_name_their_bot() {
        let secret = fresh_secret("echo");
        assert!(secret.len() >= 16, "{secret}");
        assert!(secret.starts_with("e2e-echo-"), "{secret}");
    }

    #[test]
    fn the_target_dir_is_cargo_target_dir_read_from_the_workspace_root() {
        let root = Path::new("/work/project");
        assert_eq!(
            resolve_target_dir(root, None),
            Path::new("/work/project/target")
        );
        assert_eq!(
            resolve_target_dir(root, Some(PathBuf::from("out"))),
            Path::new("/work/project/out")
        );
        assert_eq!(
            resolve_target_dir(root, Some(PathBuf::from("/cache/target"))),
            Path::new("/cache/target")
        );
    }
}
