//! Limits on reply work: each bot's own timeout and concurrency, and the count of
//! replies in flight that shutdown waits for.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::{ReplyPipeline, lock};
use crate::bot::{Bot, BotId, ReplyLimits};

impl ReplyPipeline {
    /// A turn among the bot's at most `max` replies at once.
    pub(super) async fn permit(&self, bot: &BotId, max: usize) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut permits = lock(&self.bot_permits);
            let entry = permits
                .entry(bot.clone())
                .or_insert_with(|| (max, Arc::new(Semaphore::new(max))));
            if entry.0 != max {
                *entry = (max, Arc::new(Semaphore::new(max)));
            }
            Arc::clone(&entry.1)
        };
        // The semaphore is never closed, so acquiring only fails if it were.
        semaphore.acquire_owned().await.ok()
    }
}

/// The limits one reply is produced under: the bot's own (see
/// [`ReplyLimits`]) where it sets them, the pipeline's otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BotLimits {
    pub(super) timeout: Duration,
    pub(super) max_concurrency: Option<usize>,
}

impl BotLimits {
    /// The limits for `bot`. Its settings were checked when it was saved through
    /// `BotAdmin`; a bot stored otherwise with unusable values gets the pipeline's
    /// limits, and the reply goes on.
    pub(super) fn of(bot: &Bot, default_timeout: Duration) -> Self {
        let own = bot.engine.limits().unwrap_or_else(|error| {
            tracing::warn!(bot = %bot.id, %error, "unusable reply limits; the defaults apply");
            ReplyLimits::default()
        });
        Self {
            timeout: own.timeout.unwrap_or(default_timeout),
            max_concurrency: own.max_concurrency.map(NonZeroUsize::get),
        }
    }
}

/// Counts running reply tasks so that shutdown can wait for them.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    pub(super) fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(Arc::clone(self))
    }

    pub(super) async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registering before the check means a task finishing in between still
            // wakes this waiter.
            notified.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

pub(super) struct InFlightGuard(Arc<InFlight>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
