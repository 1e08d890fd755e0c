//! Where the machine's CPU went during a measurement: the whole machine's busy time
//! from `/proc/stat`, and per group of processes from `/proc/<pid>/stat` — the servers
//! under test, PostgreSQL, NATS and the load generator itself — all in cores (1.0 = one
//! core busy for the whole span).
//!
//! On a small machine the load generator, the database, the bus and the servers share
//! the cores; a throughput figure means little without knowing whether the machine was
//! saturated and who got it. Both sources count in the same clock ticks, so their ratio
//! needs no knowledge of the tick rate.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Context as _, Result};

/// The groups of processes whose CPU time is read, by name.
pub const GROUPS: [&str; 4] = ["confab", "postgres", "nats", "loadgen"];

/// A reading of the machine's and the groups' CPU time counters.
#[derive(Debug, Clone)]
pub struct CpuSample {
    /// Ticks of all cores together, busy or not.
    total: u64,
    /// Ticks of all cores together spent neither idle nor waiting for I/O.
    busy: u64,
    /// The cores counted in `/proc/stat`.
    cores: u64,
    /// User and system ticks of each process of each group, by pid.
    groups: BTreeMap<&'static str, HashMap<u32, u64>>,
}

/// The CPU used between two samples, in cores.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuUse {
    /// How many of the machine's cores were busy on average, whoever used them.
    pub machine_cores: f64,
    /// How many cores each group of [`GROUPS`] used on average.
    pub groups: BTreeMap<&'static str, f64>,
    /// The machine's cores.
    pub cores: u64,
}

impl CpuSample {
    /// Reads the counters now: the machine's; `confab` as the processes `servers`;
    /// `postgres` and `nats` as every process named `postgres` or `nats-server`;
    /// `loadgen` as this process.
    ///
    /// # Errors
    /// When `/proc/stat` cannot be read (not Linux) or one of `servers` has exited.
    pub fn now(servers: &[u32]) -> Result<Self> {
        let stat = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
        let (total, busy, cores) = parse_machine(&stat).context("no cpu line in /proc/stat")?;
        let mut groups: BTreeMap<&'static str, HashMap<u32, u64>> = GROUPS
            .iter()
            .map(|group| (*group, HashMap::new()))
            .collect();
        for &pid in servers {
            let (_, ticks) = process(pid).with_context(|| format!("cannot read process {pid}"))?;
            groups.entry("confab").or_default().insert(pid, ticks);
        }
        let own = std::process::id();
        if let Some((_, ticks)) = process(own) {
            groups.entry("loadgen").or_default().insert(own, ticks);
        }
        // A process that ends while being read is simply not counted.
        for entry in std::fs::read_dir("/proc")
            .context("cannot list /proc")?
            .flatten()
        {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let group = match process(pid) {
                Some((name, ticks)) if name == "postgres" => ("postgres", ticks),
                Some((name, ticks)) if name == "nats-server" => ("nats", ticks),
                _ => continue,
            };
            groups.entry(group.0).or_default().insert(pid, group.1);
        }
        Ok(Self {
            total,
            busy,
            cores,
            groups,
        })
    }

    /// What was used from `self` until `later`. A process present only in `later`
    /// started meanwhile and counts whole; one present only in `self` ended and is
    /// left out.
    pub fn until(&self, later: &Self) -> CpuUse {
        let total = later.total.saturating_sub(self.total).max(1) as f64;
        let busy = later.busy.saturating_sub(self.busy) as f64;
        let cores = self.cores.max(1) as f64;
        let groups = later
            .groups
            .iter()
            .map(|(group, after)| {
                let before = self.groups.get(group);
                let ticks: u64 = after
                    .iter()
                    .map(|(pid, ticks)| {
                        let earlier = before.and_then(|b| b.get(pid)).copied().unwrap_or(0);
                        ticks.saturating_sub(earlier)
                    })
                    .sum();
                (*group, ticks as f64 / total * cores)
            })
            .collect();
        CpuUse {
            machine_cores: busy / total * cores,
            groups,
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

/// The name and the user plus system ticks of process `pid`.
fn process(pid: u32) -> Option<(String, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_process(&stat)
}

/// The name and user plus system ticks from a `/proc/<pid>/stat` line. The name may
/// hold spaces and parentheses, so it runs to the last `)`.
fn parse_process(stat: &str) -> Option<(String, u64)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let (_, name) = head.split_once('(')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the whole line, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name.to_owned(), utime + stime))
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
        assert_eq!(parse_process(stat), Some(("tokio (rt) 1".to_owned(), 100)));
    }

    fn sample(total: u64, busy: u64, postgres: &[(u32, u64)]) -> CpuSample {
        CpuSample {
            total,
            busy,
            cores: 2,
            groups: BTreeMap::from([("postgres", postgres.iter().copied().collect())]),
        }
    }

    #[test]
    fn use_is_counted_in_cores_whatever_the_tick_rate() {
        let used = sample(1000, 400, &[(1, 100)]).until(&sample(2000, 1300, &[(1, 350)]));
        assert!((used.machine_cores - 1.8).abs() < 1e-9);
        assert!((used.groups["postgres"] - 0.5).abs() < 1e-9);
    }

    #[test]
    fn processes_started_meanwhile_count_whole_and_ended_ones_not_at_all() {
        let before = sample(1000, 0, &[(1, 100), (2, 500)]);
        let after = sample(2000, 0, &[(1, 150), (3, 50)]);
        assert!((before.until(&after).groups["postgres"] - 0.2).abs() < 1e-9);
    }

    #[test]
    fn the_current_process_is_sampled_as_the_load_generator() {
        let sample = CpuSample::now(&[std::process::id()]).expect("a Linux /proc");
        assert!(sample.cores >= 1);
        assert!(sample.groups["loadgen"].contains_key(&std::process::id()));
        assert!(sample.groups["confab"].contains_key(&std::process::id()));
    }
}
