//! Waiting between tries of work that failed for a reason that may pass by itself: a
//! webhook receiver that is down, storage or the event bus unavailable.

use std::time::Duration;

use uuid::Uuid;

/// A wait that doubles with each failure in a row, from `first` up to `longest`, and
/// is then cut to between half and all of itself. The cut comes from the id of the
/// work that failed and the failure's number, not from a random source: work that
/// failed together (every follower of an outage, every delivery to a receiver that
/// was down) does not all try again at the same instant, and the same inputs always
/// wait the same, which keeps tests exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The full wait after the first failure.
    pub first: Duration,
    /// The longest full wait.
    pub longest: Duration,
}

impl Backoff {
    /// The wait after failure number `failures` (1 for the first) of the work `id`.
    pub fn after(&self, failures: u32, id: Uuid) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let full = self
            .first
            .saturating_mul(1u32 << doublings)
            .min(self.longest);
        let seed = id.as_u128() ^ u128::from(failures).wrapping_mul(0x9E37_79B9);
        let fraction = (seed % 1024) as u32;
        full / 2 + (full / 2).mul_f64(f64::from(fraction) / 1023.0)
    }
}
