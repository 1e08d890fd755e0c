//! SQLite's WAL while appends commit: checkpointed in the background, off the
//! commits' path, and started over between two batches so that it stays bounded.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;

use super::{AppendQueue, sqlite};

/// How often the WAL of SQLite is checkpointed while appends commit: rarely enough
/// that a page many commits change is copied back once for all of them. Under steady
/// appends the WAL starts over after each of these checkpoints ([`WAL_RESTART_PAGES`]),
/// so it stays what 200 ms of commits write: up to 80 MB, as the group commit writes
/// up to 100 000 pages a second (docs/benchmarks-history.md, part eleven). Every 100 ms halved
/// that but made round trips' p99 higher (1.53 against 1.29 ms).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// The WAL's size, in pages, from which a background checkpoint has the WAL start over
/// (`SqliteWriter::restart_wal`), pausing the writer for a few milliseconds: 4 MB.
/// Under steady appends that is every round, as each commit rewrites the pages its
/// appends share, so the WAL stays what one [`CHECKPOINT_EVERY`] of commits writes;
/// a smaller WAL is not worth a pause.
const WAL_RESTART_PAGES: u32 = 1_000;

impl AppendQueue {
    /// Has the WAL's committed pages copied back into the database file in the
    /// background, on a task and a connection of its own: every [`CHECKPOINT_EVERY`]
    /// while commits come, and once more after the last. A passive checkpoint does not
    /// block the writer, and one that fails leaves the pages for the next one. When
    /// the WAL has grown past [`WAL_RESTART_PAGES`], the writer then pauses between two
    /// batches for the WAL to start over (`SqliteWriter::restart_wal`): the writer
    /// never checkpoints by itself (`open_sqlite_writer`), so this is what keeps the
    /// WAL from growing without end.
    pub(super) fn checkpoint_soon(self: &Arc<Self>, db: &DatabaseConnection) {
        {
            let mut state = self.lock();
            state.committed_since_checkpoint = true;
            if state.checkpointing {
                return;
            }
            state.checkpointing = true;
        }
        let queue = Arc::clone(self);
        let db = db.clone();
        tokio::spawn(async move {
            loop {
                queue.lock().committed_since_checkpoint = false;
                let restart = match sqlite::checkpoint(&db).await {
                    Ok(Some(wal_pages)) if wal_pages < WAL_RESTART_PAGES => false,
                    Ok(Some(_)) => {
                        // A second passive checkpoint copies what was committed
                        // during the first, so that the restart, which pauses the
                        // writer, has only the last few milliseconds' pages to copy
                        // and sync.
                        let _ = sqlite::checkpoint(&db).await;
                        true
                    }
                    // The WAL's size is unknown: another checkpoint was running, or
                    // no pooled connection came free. The restart, on the writer's
                    // own connection, copies back whatever is left; without it the
                    // WAL would grow for as long as that lasts, as the writer never
                    // checkpoints by itself.
                    Ok(None) | Err(_) => true,
                };
                if restart {
                    // Whether it restarted or not, the next round tries again.
                    let _ = queue.sqlite.restart_wal().await;
                }
                tokio::time::sleep(CHECKPOINT_EVERY).await;
                let mut state = queue.lock();
                if !state.committed_since_checkpoint {
                    state.checkpointing = false;
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests;
