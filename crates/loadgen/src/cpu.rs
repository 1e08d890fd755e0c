//! Where the machine's CPU went during a measurement: the whole machine's busy time
//! from `/proc/stat` and the servers' own from `/proc/<pid>/stat`, both in cores
//! (1.0 = one core busy for the whole span).
//!
//! On a small machine the load generator, the database, the bus and the servers share
//! the cores; a throughput figure means little without knowing whether the machine was
//! saturated and how much of it the servers got. Both sources count in the same clock
//! ticks, so their ratio needs no knowledge of the tick rate.

use anyhow::{Context as _, Result};

/// A reading of the machine's and some processes' CPU time counters.
#[derive(Debug, Clone)]
pub struct CpuSample {
    /// Ticks of all cores together, busy or not.
    total: u64,
    /// Ticks of all cores together spent neither idle nor waiting for I/O.
    busy: u64,
    /// The cores counted in `/proc/stat`.
    cores: u64,
    /// User and system ticks of each watched process, in the order given.
    processes: Vec<u64>,
}

/// The CPU used between two samples, in cores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuUse {
    /// How many of the machine's cores were busy on average, whoever used them.
    pub machine_cores: f64,
    /// How many cores the watched processes used together on average.
    pub process_cores: f64,
    /// The machine's cores.
    pub cores: u64,
}

impl CpuSample {
    /// Reads the counters now, for the machine and for each of `pids`.
    ///
    /// # Errors
    /// When `/proc/stat` or a process's `stat` cannot be read (not Linux, or the
    /// process has exited).
    pub fn now(pids: &[u32]) -> Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
        let (total, busy, cores) = parse_machine(&stat).context("no cpu line in /proc/stat")?;
        let processes = pids
            .iter()
            .map(|pid| {
                let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
                parse_process(&text).with_context(|| format!("malformed /proc/{pid}/stat"))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            total,
            busy,
            cores,
            processes,
        })
    }

    /// What was used from `self` until `later`.
    pub fn until(&self, later: &Self) -> CpuUse {
        let total = later.total.saturating_sub(self.total).max(1) as f64;
        let busy = later.busy.saturating_sub(self.busy) as f64;
        let processes: u64 = later
            .processes
            .iter()
            .zip(&self.processes)
            .map(|(after, before)| after.saturating_sub(*before))
            .sum();
        let cores = self.cores.max(1) as f64;
        CpuUse {
            machine_cores: busy / total * cores,
            process_cores: processes as f64 / total * cores,
            cores: self.cores,
        }
    }
}

/// Total and busy ticks over all cores, and the number of cores, from `/proc/stat`.
fn parse_machine(stat: &str) -> Option<(u64, u64, u64)> {
    let aggregate = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = aggregate
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal guest guest_nice: guest time is
    // already counted in user time, so it must not be added twice.
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0);
    let cores = stat
        .lines()
        .filter(|line| {
            line.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count() as u64;
    Some((total, total.saturating_sub(idle), cores))
}

/// User plus system ticks from a `/proc/<pid>/stat` line. The command name may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn parse_process(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the whole line, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ticks_leave_out_idle_iowait_and_guest_time() {
        let stat = "cpu  100 0 50 800 50 0 0 0 30 0\ncpu0 50 0 25 400 25 0 0 0 15 0\n\
                    cpu1 50 0 25 400 25 0 0 0 15 0\nintr 1 2 3\n";
        assert_eq!(parse_machine(stat), Some((1000, 150, 2)));
    }

    #[test]
    fn process_ticks_are_read_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    70 30 0 0 20 0 3 0 123 456 789";
        assert_eq!(parse_process(stat), Some(100));
    }

    #[test]
    fn use_is_counted_in_cores_whatever_the_tick_rate() {
        let before = CpuSample {
            total: 1000,
            busy: 400,
            cores: 2,
            processes: vec![100, 50],
        };
        let after = CpuSample {
            total: 2000,
            busy: 1300,
            cores: 2,
            processes: vec![350, 100],
        };
        let used = before.until(&after);
        assert!((used.machine_cores - 1.8).abs() < 1e-9);
        assert!((used.process_cores - 0.6).abs() < 1e-9);
    }

    #[test]
    fn the_current_process_can_be_sampled() {
        let sample = CpuSample::now(&[std::process::id()]).expect("a Linux /proc");
        assert!(sample.cores >= 1);
        assert_eq!(sample.processes.len(), 1);
    }
}
