//! `cargo xtask`: the project's automation, written in Rust so that it runs wherever
//! cargo does and needs no other tool on the machine.
//!
//! `.ci/run` calls `cargo xtask ci`, the same entry point a developer uses, so CI and
//! a laptop run the same checks in the same order.
//!
//! # Layout
//! - [`ci`]: every check, in order, failing at the first that fails.
//! - [`tidy`]: the dependency boundary read from `cargo tree`, and the `//!` header of
//!   every Rust file.
//! - [`openapi`]: writes `docs/openapi.json` from the server, or checks it for drift.
//! - [`bench`]: the load generator against a release server; writes `docs/benchmarks.md`.
//! - [`e2e`]: the web page driven in headless Chromium against a release server, and
//!   Microsoft's Direct Line clients (Web Chat, directlinejs) against its Direct Line
//!   routes.
//! - [`fuzz_api`]: the REST API fuzzed by schemathesis from its OpenAPI document,
//!   against a release server.
//! - [`manifests`]: the Kubernetes manifests and the Compose file checked against their
//!   schemas, offline.
//!
//! Each subcommand is one module with a `run` function taking the project's [`Shell`];
//! `bench` and `e2e` are to join them the same way.

mod bench;
mod ci;
mod e2e;
mod fuzz_api;
mod manifests;
mod openapi;
mod tidy;
mod venv;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use xshell::Shell;

/// confab's project automation.
#[derive(Debug, Parser)]
#[command(bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every check CI runs: fmt, clippy, tidy, openapi --check, manifests, test,
    /// doc (the domain's rustdoc), examples.
    Ci,
    /// Check the dependency boundary and the `//!` header of every Rust file.
    Tidy,
    /// Write docs/openapi.json from the server's OpenAPI document.
    Openapi {
        /// Fail if docs/openapi.json differs from the server's document instead of
        /// writing it.
        #[arg(long)]
        check: bool,
    },
    /// Benchmark a release server with confab-loadgen; write docs/benchmarks.md.
    Bench {
        /// Also run every scenario on a fresh database of the local PostgreSQL.
        #[arg(long)]
        postgres: bool,
        /// Measure 1, 2 and 3 instances on the local PostgreSQL and NATS and rewrite
        /// only the document's scale-out block; alone, it skips the single-node run
        /// (add --postgres for both).
        #[arg(long)]
        cluster: bool,
    },
    /// Drive the web page in headless Chromium against a release server, and the Direct
    /// Line clients against its Direct Line routes; installs chromium (apt-get) and the
    /// npm packages (npm ci in e2e/) when missing.
    E2e,
    /// Fuzz a release server's REST API from its OpenAPI document with schemathesis,
    /// as a user and as an administrator; installs it (pip, into target/venv-fuzz)
    /// when missing.
    FuzzApi,
    /// Validate deploy/kubernetes and deploy/compose.yaml against their schemas;
    /// installs the validators (pip, into target/venv-manifests) when missing.
    Manifests,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The chain of causes says what failed; a backtrace of xtask itself would
            // only bury it.
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    let sh = Shell::new().context("cannot create a shell")?;
    sh.change_dir(project_root());
    match command {
        Command::Ci => ci::run(&sh),
        Command::Tidy => tidy::run(&sh),
        Command::Openapi { check } => openapi::run(&sh, check),
        Command::Bench { postgres, cluster } => bench::run(&sh, postgres, cluster),
        Command::E2e => e2e::run(&sh),
        Command::FuzzApi => fuzz_api::run(&sh),
        Command::Manifests => manifests::run(&sh),
    }
}

/// The workspace root, whatever directory `cargo xtask` was started from.
fn project_root() -> PathBuf {
    let xtask_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask_dir.parent().unwrap_or(xtask_dir).to_path_buf()
}
