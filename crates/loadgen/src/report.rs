//! What a scenario measured: operations, elapsed time, throughput and the latency
//! percentiles, printed as a table and serialised as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One measured figure: a number of operations over a span of time, and how long each
/// operation took.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// What was measured, e.g. `send ws 16x1000`.
    pub scenario: String,
    /// Operations completed.
    pub operations: u64,
    /// Wall-clock seconds from the first operation to the last completion.
    pub seconds: f64,
    /// `operations / seconds`.
    pub per_second: f64,
    /// Median latency in microseconds.
    pub p50_us: u64,
    /// 90th percentile latency in microseconds.
    pub p90_us: u64,
    /// 99th percentile latency in microseconds.
    pub p99_us: u64,
    /// Largest latency in microseconds.
    pub max_us: u64,
    /// Figures particular to the scenario (stored messages per second, resident
    /// memory…), by name.
    #[serde(default)]
    pub extra: BTreeMap<String, f64>,
}

impl Report {
    /// A report of `latencies.len()` operations that took `elapsed` in all.
    pub fn new(scenario: impl Into<String>, elapsed: Duration, latencies: Vec<Duration>) -> Self {
        let mut micros: Vec<u64> = latencies
            .iter()
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .collect();
        micros.sort_unstable();
        let operations = micros.len() as u64;
        let seconds = elapsed.as_secs_f64();
        Self {
            scenario: scenario.into(),
            operations,
            seconds,
            per_second: if seconds > 0.0 {
                operations as f64 / seconds
            } else {
                0.0
            },
            p50_us: percentile(&micros, 50.0),
            p90_us: percentile(&micros, 90.0),
            p99_us: percentile(&micros, 99.0),
            max_us: micros.last().copied().unwrap_or(0),
            extra: BTreeMap::new(),
        }
    }

    /// The same report with one more scenario-specific figure.
    pub fn with(mut self, name: &str, value: f64) -> Self {
        self.extra.insert(name.to_owned(), value);
        self
    }
}

/// The nearest-rank percentile of sorted values; 0 when there are none.
fn percentile(sorted: &[u64], pct: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Microseconds as milliseconds with three decimals, the unit a reader compares.
pub fn ms(micros: u64) -> String {
    format!("{:.3}", micros as f64 / 1000.0)
}

/// The reports as a fixed-width text table.
pub fn table(reports: &[Report]) -> String {
    let mut out = format!(
        "{:<44} {:>9} {:>8} {:>11} {:>9} {:>9} {:>9} {:>9}  extra\n",
        "scenario", "ops", "secs", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for r in reports {
        let extra: Vec<String> = r.extra.iter().map(|(k, v)| format!("{k}={v:.1}")).collect();
        let _ = writeln!(
            out,
            "{:<44} {:>9} {:>8.2} {:>11.0} {:>9} {:>9} {:>9} {:>9}  {}",
            r.scenario,
            r.operations,
            r.seconds,
            r.per_second,
            ms(r.p50_us),
            ms(r.p90_us),
            ms(r.p99_us),
            ms(r.max_us),
            extra.join(" ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_over_the_sorted_latencies() {
        let latencies = (1..=100).rev().map(Duration::from_micros).collect();
        let report = Report::new("x", Duration::from_secs(2), latencies);
        assert_eq!(report.operations, 100);
        assert_eq!(report.per_second, 50.0);
        assert_eq!(
            (report.p50_us, report.p90_us, report.p99_us, report.max_us),
            (50, 90, 99, 100)
        );
    }

    #[test]
    fn an_empty_report_has_zero_latencies() {
        let report = Report::new("x", Duration::ZERO, Vec::new());
        assert_eq!(
            (report.p50_us, report.max_us, report.per_second),
            (0, 0, 0.0)
        );
    }
}
