//! A throw-away PostgreSQL cluster of the test's own, on a free port of 127.0.0.1 in
//! a temporary directory, which the test may stop at once and start again without
//! touching the machine's shared server. Stopped and removed when dropped.
//!
//! It runs the newest PostgreSQL found under `/usr/lib/postgresql/<version>/bin`
//! (Debian's layout). `initdb` refuses to run as root, so as root every command runs
//! as the `postgres` user through `runuser`.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How long `pg_ctl` waits for a start or a stop, in seconds: a guard, not a figure.
const PG_CTL_WAIT_SECONDS: &str = "60";

/// A private PostgreSQL cluster.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// Creates and starts one; `None`, with a loud note, when no PostgreSQL binaries
    /// are installed.
    pub fn start() -> Option<Self> {
        let Some(bin) = binaries() else {
            eprintln!(
                "NOTE: no PostgreSQL binaries under /usr/lib/postgresql/*/bin: the PostgreSQL restart test did NOT run"
            );
            return None;
        };
        let as_postgres = std::fs::metadata("/proc/self").is_ok_and(|me| me.uid() == 0);
        let dir = tempfile::tempdir().expect("a directory for the cluster");
        if as_postgres {
            let owned = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(
                owned.success(),
                "the cluster's directory is given to postgres"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let cluster = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.resume();
        Some(cluster)
    }

    /// Its `postgres` database's URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it at once (`pg_ctl stop -m immediate`): every backend ends without a
    /// checkpoint, as in a crash; the next start recovers from the WAL.
    pub fn stop_immediately(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "stop",
                "-D",
                &data,
                "-m",
                "immediate",
                "-w",
                "-t",
                PG_CTL_WAIT_SECONDS,
            ],
        );
    }

    /// Starts it (again) on the same port and waits until it accepts connections.
    pub fn resume(&self) {
        let data = self.data();
        let log = self.path().join("postgres.log");
        // fsync off: the test kills processes, not the machine, and the page cache
        // keeps what was written; the socket directory is the cluster's own.
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "start",
                "-D",
                &data,
                "-l",
                &log.display().to_string(),
                "-o",
                &options,
                "-w",
                "-t",
                PG_CTL_WAIT_SECONDS,
            ],
        );
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn data(&self) -> String {
        self.path().join("data").display().to_string()
    }

    /// Runs the PostgreSQL program `program` with `args`, as `postgres` when root;
    /// fails the test if it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let status = self
            .command(program, args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|error| panic!("{program} runs: {error}"));
        assert!(status.success(), "{program} {args:?} failed: {status}");
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.args(args);
        command
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Already stopped is fine; the directory goes with `dir`.
        let data = self.data();
        let _ = self
            .command("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The `bin` directory of the newest PostgreSQL installed with `initdb`.
fn binaries() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}
