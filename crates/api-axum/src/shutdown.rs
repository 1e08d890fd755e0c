//! [`Shutdown`]: how a stopping server tells its open WebSockets to close (1001) and
//! waits for them. Upgraded connections are no longer the HTTP server's, so its own
//! graceful shutdown does not reach them.

use std::time::Duration;

use tokio::sync::watch;

/// Tells open WebSockets that the server is stopping and waits for them to close.
#[derive(Clone)]
pub struct Shutdown {
    stopping: watch::Receiver<bool>,
    tracker: tokio_util::task::TaskTracker,
}

/// The trigger of a [`Shutdown`].
pub struct ShutdownTrigger {
    stopping: watch::Sender<bool>,
    tracker: tokio_util::task::TaskTracker,
}

impl Shutdown {
    /// A signal not yet given, and its trigger.
    pub fn new() -> (Self, ShutdownTrigger) {
        let (sender, receiver) = watch::channel(false);
        let tracker = tokio_util::task::TaskTracker::new();
        (
            Self {
                stopping: receiver,
                tracker: tracker.clone(),
            },
            ShutdownTrigger {
                stopping: sender,
                tracker,
            },
        )
    }

    /// Completes once the server is stopping.
    pub async fn stopping(&self) {
        let mut stopping = self.stopping.clone();
        // An error means the trigger is gone, which only happens once the server has
        // stopped: treat it as stopping too.
        let _ = stopping.wait_for(|stopping| *stopping).await;
    }

    /// Runs `task` (a WebSocket session) so that [`ShutdownTrigger::stop`] waits for it.
    pub fn track<F>(&self, task: F) -> impl Future<Output = F::Output> + Send + use<F>
    where
        F: Future + Send,
    {
        self.tracker.track_future(task)
    }
}

impl ShutdownTrigger {
    /// Tells every WebSocket to close with 1001 and waits up to `grace` for them.
    /// Returns whether all closed in time.
    pub async fn stop(self, grace: Duration) -> bool {
        self.stopping.send_replace(true);
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}
