//! `cargo xtask ci`: every check, in the order that fails cheapest first, stopping
//! at the first failure with the name of the step that failed.

use std::time::{Duration, Instant};

use anyhow::Result;
use xshell::{Shell, cmd};

use crate::{manifests, openapi, tidy};

/// The arguments of the test command the README gives; `ci` runs exactly that.
pub(crate) const TEST_ARGS: [&str; 3] = ["test", "--workspace", "--all-features"];

struct Step {
    name: &'static str,
    run: fn(&Shell) -> Result<()>,
}

const STEPS: [Step; 8] = [
    Step {
        name: "fmt",
        run: |sh| Ok(cmd!(sh, "cargo fmt --all -- --check").run()?),
    },
    Step {
        name: "clippy",
        run: |sh| {
            Ok(cmd!(
                sh,
                "cargo clippy --workspace --all-targets --all-features -- -D warnings"
            )
            .run()?)
        },
    },
    Step {
        name: "tidy",
        run: tidy::run,
    },
    Step {
        name: "openapi --check",
        run: |sh| openapi::run(sh, true),
    },
    Step {
        name: "manifests",
        run: manifests::run,
    },
    Step {
        name: "test",
        run: |sh| {
            let args = TEST_ARGS;
            Ok(cmd!(sh, "cargo {args...}").run()?)
        },
    },
    // The domain is a library for other teams: its rustdoc must build without a
    // missing doc or a broken intra-doc link.
    Step {
        name: "doc",
        run: |sh| {
            Ok(cmd!(
                sh,
                "cargo doc --package confab-domain --no-deps --all-features"
            )
            .env("RUSTDOCFLAGS", "-D warnings")
            .run()?)
        },
    },
    // The test step builds the examples but runs only their tests; an example that
    // compiles and then fails would go unnoticed.
    Step {
        name: "examples",
        run: |sh| {
            Ok(cmd!(
                sh,
                "cargo run --quiet --package embedding-examples --example conversation"
            )
            .run()?)
        },
    },
];

/// Runs every step; returns the first failure, naming its step.
pub(crate) fn run(sh: &Shell) -> Result<()> {
    let started = Instant::now();
    let mut timings = Vec::new();
    for step in &STEPS {
        eprintln!("\n==> ci: {}", step.name);
        let step_started = Instant::now();
        let outcome = (step.run)(sh);
        let took = seconds(step_started.elapsed());
        match outcome {
            Ok(()) => {
                eprintln!("<== ci: {} passed in {took}", step.name);
                timings.push(format!("{} {took}", step.name));
            }
            Err(error) => {
                eprintln!("<== ci: {} FAILED after {took}", step.name);
                return Err(error.context(format!("ci failed at step `{}`", step.name)));
            }
        }
    }
    eprintln!(
        "\nci: all steps passed in {} ({})",
        seconds(started.elapsed()),
        timings.join(", ")
    );
    Ok(())
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn ci_runs_the_test_command_the_readme_shows() {
        let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(readme).expect("README.md is readable");
        let command = format!("cargo {}", TEST_ARGS.join(" "));
        assert!(
            readme.contains(&command),
            "README.md must show `{command}`, the command `cargo xtask ci` runs"
        );
    }
}
