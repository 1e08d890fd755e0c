//! The operations tests' additions to the shared harness (`crate::helpers`): the
//! `confab` binary as a child process and reading Prometheus metrics.

use std::process::Command;

use crate::helpers::TestApp;

impl TestApp {
    /// The Prometheus text of `/metrics`.
    pub async fn metrics(&self) -> String {
        let response = self.get_public("/metrics").await;
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }
}

/// The value of the sample `name{labels}` in Prometheus text, 0 when absent.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| {
            let (series_name, series_labels) = series.split_once('{').unwrap_or((series, ""));
            series_name == name
                && labels
                    .iter()
                    .all(|(key, value)| series_labels.contains(&format!("{key}=\"{value}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

/// The `confab` binary with no `CONFAB_*` variables from the test's environment.
pub fn confab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confab"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONFAB_") {
            command.env_remove(key);
        }
    }
    command
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    command
}

/// Runs `confab` and returns its stdout; fails the test on a non-zero exit.
pub fn run_ok(command: &mut std::process::Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "confab failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `confab`, expects it to fail and returns its stderr.
pub fn run_err(command: &mut std::process::Command) -> String {
    let output = command.output().unwrap();
    assert!(!output.status.success(), "confab should have failed");
    String::from_utf8(output.stderr).unwrap()
}

/// `confab config print`'s output as a table.
pub fn printed(stdout: &str) -> toml::Table {
    stdout.parse::<toml::Table>().unwrap()
}
