//! Group commit of message appends: writers take the appends waiting at that moment and
//! store them together, one transaction (SQLite) or one statement (PostgreSQL) for many.
//!
//! Appends queue in memory: a caller that finds fewer writers running than its backend
//! allows starts one (a spawned task, so a caller that gives up cannot abandon a batch
//! half way), writers drain the queue batch by batch, and each caller gets its result
//! only once its batch has committed. An append whose `client_message_id` was seen
//! before, or whose reply was stored before, changes nothing (its `UPDATE` is guarded,
//! and a repeat within one SQLite batch is caught before it) and is sorted out after
//! the commit, so no statement of a batch is expected to fail. Should one fail anyway,
//! each append of the batch is retried on its own, so one bad append never fails the
//! others; only when the database is unavailable (locked past the busy timeout, a full
//! disk, no connection) does every append of the batch fail at once.
//!
//! - **SQLite** ([`sqlite`]) has one write lock per file. With one transaction per
//!   append, concurrent appends queue on that lock inside SQLite's busy handler, which
//!   sleeps in steps of milliseconds, and each pays its own `BEGIN`/`COMMIT`. One writer
//!   runs every append waiting, in arrival order, in one `BEGIN IMMEDIATE`
//!   transaction on a connection of its own (rusqlite): seqs stay gap-free because
//!   each append's `UPDATE` reads the counter its predecessor in the same transaction
//!   wrote.
//! - **PostgreSQL** ([`postgres`]) locks rows, not the file, but each statement and
//!   each commit has a cost of its own (a round trip, a snapshot, a WAL flush). Two
//!   writers each store a batch in one statement, each on a connection of its own.
//!   A batch holds at most one append per conversation, and a conversation with an
//!   append in flight is left to the writer that has it: a conversation's appends are
//!   stored one after the other, in arrival order, like the lone append they replace.
//!
//! A batch, on either backend, may mix appends with own appends
//! (`MessageRepository::append_own`), which move their conversation only while it is
//! their owner's and active, and come back with it as they found it.

mod postgres;
mod sqlite;
mod wal;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use confab_domain::conversation::{Conversation, ConversationId};
use confab_domain::error::RepoError;
use confab_domain::message::{Appended, Message, NewMessage, Sender};
use confab_domain::ports::OwnAppend;
use confab_domain::user::UserId;
use sea_orm::sqlx::Postgres;
use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::oneshot;

use crate::append::{Held, append_alone, append_own_alone, not_advanced};
use crate::connection::POOLED_IDLE_BEFORE_PING;

/// Appends taken into one batch at most. Bounds how long a lock is held and how long
/// the first append of a batch waits for the last.
const MAX_BATCH: usize = 256;

/// How many PostgreSQL writers run at once: two, so that one batch is prepared and
/// answered while another is stored, and appends to other conversations do not all
/// wait for a batch held up by a lock; each holds a pooled connection while it has
/// work (`HeldConnection`). Not more: every statement has a fixed cost (planning,
/// executor start-up, commit), and fewer writers store larger batches. With 16 WebSocket clients,
/// PostgreSQL spent 433 / 476 µs per answered message with four writers, 347 / 309
/// with two and 274 / 292 with one (docs/benchmarks-history.md, part five).
const POSTGRES_WRITERS: usize = 2;

/// How many times the SQLite writer lets the runtime's other ready tasks run before it
/// takes its next batch, when its last batch held more than one append: they are the
/// ones about to append (a WebSocket frame read, a bot's reply), and every commit
/// rewrites the pages its appends share (an index leaf per conversation, the search
/// index's segment, the conversations' rows), so a batch twice as large costs far
/// less than two. With 16 WebSocket clients, four yields made batches about three times
/// larger and cut the server's CPU per message by 14 % (docs/benchmarks-history.md, part
/// eleven). Appends that come one at a time (each batch of one) never wait.
const SQLITE_YIELDS_BEFORE_A_SHARED_BATCH: usize = 4;

/// The appends waiting for a writer, and the writers at work.
#[derive(Default)]
pub(crate) struct AppendQueue {
    state: Mutex<QueueState>,
    /// SQLite: the writer's own connection (`sqlite`).
    sqlite: sqlite::SqliteWriter,
    /// PostgreSQL: the connections of writers that stopped, for the next writers.
    parked: Mutex<Parked>,
}

/// The connections of PostgreSQL writers that stopped, each with when it was last
/// used.
#[derive(Default)]
struct Parked {
    connections: Vec<(PoolConnection<Postgres>, Instant)>,
    /// Whether a task is giving back the stale ones: one runs while any are parked.
    expiring: bool,
}

impl Parked {
    /// Gives the connections idle for [`POOLED_IDLE_BEFORE_PING`] or longer back to
    /// the pool.
    fn give_back_stale(&mut self) {
        self.connections
            .retain(|(_, used)| used.elapsed() < POOLED_IDLE_BEFORE_PING);
    }
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<Pending>,
    writers: usize,
    /// Conversations with an append in a PostgreSQL batch being stored.
    in_flight: HashSet<ConversationId>,
    /// SQLite: whether the background checkpoint runs, and whether a batch committed
    /// since its last checkpoint started.
    checkpointing: bool,
    committed_since_checkpoint: bool,
}

struct Pending {
    message: NewMessage,
    done: Done,
}

/// Where the result of a pending append goes: an append's caller, or an own
/// append's (`MessageRepository::append_own`) with the owner it is guarded by.
enum Done {
    Append(oneshot::Sender<Result<Appended, RepoError>>),
    Own {
        owner: UserId,
        done: oneshot::Sender<Result<OwnAppend, RepoError>>,
    },
}

impl Pending {
    fn owner(&self) -> Option<&UserId> {
        match &self.done {
            Done::Append(_) => None,
            Done::Own { owner, .. } => Some(owner),
        }
    }

    /// Answers the caller with what its append came to once its batch committed:
    /// `committed` if it was stored (or the error reading back what was stored);
    /// otherwise, for an append, what `not_advanced` finds, and for an own append
    /// `NotTaken`.
    async fn answer(
        self,
        db: &DatabaseConnection,
        committed: Option<Result<Committed, RepoError>>,
    ) {
        // A caller that gave up no longer listens; its message is stored all the
        // same, as it would be without batching.
        match self.done {
            Done::Append(done) => {
                let result = match committed {
                    Some(committed) => committed.map(|c| Appended::Stored(c.message)),
                    None => not_advanced(db, &self.message).await,
                };
                let _ = done.send(result);
            }
            Done::Own { done, .. } => {
                let result = match committed {
                    Some(Ok(Committed {
                        message,
                        before: Some(before),
                    })) => Ok(OwnAppend::Stored { message, before }),
                    Some(Ok(Committed { before: None, .. })) => Err(RepoError::Internal(
                        "an own append was stored without its conversation".into(),
                    )),
                    Some(Err(error)) => Err(error),
                    None => Ok(OwnAppend::NotTaken),
                };
                let _ = done.send(result);
            }
        }
    }

    /// Stores the append on its own and answers its caller.
    async fn store_alone(self, db: &DatabaseConnection) {
        self.store_alone_on(db, None).await;
    }

    /// [`store_alone`](Self::store_alone), a PostgreSQL statement run on `held` when
    /// given; whether the append failed.
    async fn store_alone_on(self, db: &DatabaseConnection, held: Held<'_>) -> bool {
        match self.done {
            Done::Append(done) => {
                let result = append_alone(db, held, &self.message).await;
                let failed = result.is_err();
                let _ = done.send(result);
                failed
            }
            Done::Own { owner, done } => {
                let result = append_own_alone(db, held, &self.message, &owner).await;
                let failed = result.is_err();
                let _ = done.send(result);
                failed
            }
        }
    }

    /// Tells the caller that the database cannot be reached.
    fn unavailable(self, cause: String) {
        self.fail(RepoError::Unavailable(cause.into()));
    }

    /// Tells the caller that its append failed with `error`.
    fn fail(self, error: RepoError) {
        match self.done {
            Done::Append(done) => {
                let _ = done.send(Err(error));
            }
            Done::Own { done, .. } => {
                let _ = done.send(Err(error));
            }
        }
    }
}

/// An append of a batch: the message, and the owner an own append is guarded by.
#[derive(Clone, Copy)]
pub(crate) struct Append<'a> {
    message: &'a NewMessage,
    owner: Option<&'a UserId>,
}

/// A stored append of a batch, with its conversation as it found it for an own
/// append.
pub(crate) struct Committed {
    message: Message,
    before: Option<Conversation>,
}

impl std::fmt::Debug for AppendQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppendQueue").finish_non_exhaustive()
    }
}

impl AppendQueue {
    /// Appends `new` to `db` through a writer; resolves once its batch has committed.
    pub(crate) async fn append(
        self: &Arc<Self>,
        db: &DatabaseConnection,
        new: &NewMessage,
    ) -> Result<Appended, RepoError> {
        let (done, result) = oneshot::channel();
        self.enqueue(db, new, Done::Append(done));
        result.await.map_err(writer_stopped)?
    }

    /// Appends `new` to `db` through a writer if its conversation is `owner`'s and
    /// active (`MessageRepository::append_own`); resolves once its batch has
    /// committed.
    pub(crate) async fn append_own(
        self: &Arc<Self>,
        db: &DatabaseConnection,
        new: &NewMessage,
        owner: &UserId,
    ) -> Result<OwnAppend, RepoError> {
        // The owner writes as the user, and a user message answers nothing.
        if new.sender != Sender::User || new.answers.is_some() {
            return Ok(OwnAppend::NotTaken);
        }
        let (done, result) = oneshot::channel();
        let owner = owner.clone();
        self.enqueue(db, new, Done::Own { owner, done });
        result.await.map_err(writer_stopped)?
    }

    fn enqueue(self: &Arc<Self>, db: &DatabaseConnection, new: &NewMessage, done: Done) {
        let backend = db.get_database_backend();
        let start_writer = {
            let mut state = self.lock();
            state.pending.push_back(Pending {
                message: new.clone(),
                done,
            });
            let start = state.writers < max_writers(backend);
            if start {
                state.writers += 1;
            }
            start
        };
        if start_writer {
            tokio::spawn(Arc::clone(self).write_batches(db.clone()));
        }
    }

    /// The connection a stopped writer left, if one is fresh enough to trust.
    fn idle_connection(&self) -> Option<PoolConnection<Postgres>> {
        let mut parked = self.parked();
        parked.give_back_stale();
        parked.connections.pop().map(|(connection, _)| connection)
    }

    /// Keeps a stopping writer's connection for the next writer instead of giving it
    /// back to the pool, which would test it with a round trip of its own; as many as
    /// there can be writers, and each for [`POOLED_IDLE_BEFORE_PING`] at most, after
    /// which it goes back to the pool (which tests it before anyone uses it: a server
    /// restart may have cut it) and is subject to the pool's idle timeout again.
    fn keep_idle(self: &Arc<Self>, connection: PoolConnection<Postgres>) {
        {
            let mut parked = self.parked();
            if parked.connections.len() >= POSTGRES_WRITERS {
                return;
            }
            parked.connections.push((connection, Instant::now()));
            if parked.expiring {
                return;
            }
            parked.expiring = true;
        }
        // One task for all parked connections, not one per stopping writer (a writer
        // stops after each lone append).
        let queue = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POOLED_IDLE_BEFORE_PING).await;
                let Some(queue) = queue.upgrade() else {
                    return;
                };
                let mut parked = queue.parked();
                parked.give_back_stale();
                if parked.connections.is_empty() {
                    parked.expiring = false;
                    return;
                }
            }
        });
    }

    fn parked(&self) -> MutexGuard<'_, Parked> {
        // The critical sections only move connections and a flag.
        self.parked.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // The critical sections only move queue entries, sets and counters, so a
        // poisoned lock still guards consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A writer: commits batches until it finds nothing it may take, then stops.
    async fn write_batches(self: Arc<Self>, db: DatabaseConnection) {
        let backend = db.get_database_backend();
        // Should this task ever panic, the next append starts a new writer, and the
        // conversations of its batch are free again.
        let mut writer = Writer {
            queue: Arc::clone(&self),
            taken: Vec::new(),
            stopped: false,
        };
        let mut held = HeldConnection(self.idle_connection());
        let mut last_batch = 0;
        loop {
            if backend == DbBackend::Sqlite && last_batch > 1 {
                for _ in 0..SQLITE_YIELDS_BEFORE_A_SHARED_BATCH {
                    tokio::task::yield_now().await;
                }
            }
            let (mut batch, alone) = {
                let mut state = self.lock();
                writer.release(&mut state);
                let batch = state.take(backend);
                if batch.is_empty() {
                    state.writers -= 1;
                    writer.stopped = true;
                    drop(state);
                    if let Some(connection) = held.0.take() {
                        self.keep_idle(connection);
                    }
                    return;
                }
                if backend == DbBackend::Postgres {
                    writer.taken = batch.iter().map(|p| p.message.conversation_id).collect();
                }
                let alone = batch.len() == 1 && state.pending.is_empty();
                (batch, alone)
            };
            // Nothing to share and nothing waiting: the lone append's own statement is
            // the quicker one (a round trip about 0.1 ms shorter). A batch of one
            // taken while others wait for the other writer goes through the batch
            // statement, which measured cheaper on PostgreSQL's CPU under that load
            // (docs/benchmarks-history.md, part eight).
            // `alone` is a batch of exactly one.
            if backend == DbBackend::Postgres
                && alone
                && let Some(pending) = batch.pop()
            {
                held.store_alone(&db, pending).await;
                continue;
            }
            last_batch = batch.len();
            let appends: Vec<Append<'_>> = batch
                .iter()
                .map(|pending| Append {
                    message: &pending.message,
                    owner: pending.owner(),
                })
                .collect();
            let committed = match backend {
                DbBackend::Postgres => held.commit_batch(&db, &appends).await,
                _ => match self.sqlite.commit_batch(&db, &appends).await {
                    // Read back inside the transaction: nothing fails after it.
                    Ok(Some(steps)) => Ok(steps.into_iter().map(|s| s.map(Ok)).collect()),
                    // In memory: the pool's one connection takes them one by one.
                    Ok(None) => {
                        drop(appends);
                        each_alone(&db, batch).await;
                        continue;
                    }
                    Err(error) => Err(error),
                },
            };
            match committed {
                Ok(steps) => {
                    if backend == DbBackend::Sqlite {
                        self.checkpoint_soon(&db);
                    }
                    for (pending, committed) in batch.into_iter().zip(steps) {
                        pending.answer(&db, committed).await;
                    }
                }
                // The database cannot be reached: retrying one by one would make each
                // append of the batch wait out the pool's timeout in turn, and the
                // queue behind them with it. Each caller hears at once, as it would
                // alone; nothing was acknowledged.
                Err(RepoError::Unavailable(cause)) => {
                    let cause = cause.to_string();
                    for pending in batch {
                        pending.unavailable(cause.clone());
                    }
                }
                Err(error) => {
                    // A repeated `client_message_id` is refused by PostgreSQL's unique
                    // index, which fails its whole batch: expected whenever a client
                    // retries. Anything else is worth an operator's look.
                    let appends = batch.len();
                    if matches!(error, RepoError::Conflict) {
                        tracing::debug!(
                            appends,
                            "a unique index refused a batch; storing it append by append"
                        );
                    } else {
                        tracing::warn!(appends, %error, "a batch failed; storing it append by append");
                    }
                    each_alone(&db, batch).await;
                }
            }
        }
    }
}

/// A PostgreSQL writer's connection, held from batch to batch while it has work and
/// left for the next writer when it stops (`AppendQueue::keep_idle`).
///
/// A statement through the pool returns its connection after it, and sqlx then tests
/// the connection with a round trip of its own (a `Sync`) before another statement
/// may have it: a second round trip for every append, which cost the server and
/// PostgreSQL CPU and kept the connection from the next batch meanwhile. After a
/// statement fails the connection goes back to the pool, which tests it and closes it
/// if it is broken.
struct HeldConnection(Option<PoolConnection<Postgres>>);

impl HeldConnection {
    /// The held connection, or one taken from the pool.
    async fn connection(
        &mut self,
        db: &DatabaseConnection,
    ) -> Result<&mut PoolConnection<Postgres>, RepoError> {
        match &mut self.0 {
            Some(connection) => Ok(connection),
            empty => {
                let taken = db
                    .get_postgres_connection_pool()
                    .acquire()
                    .await
                    .map_err(crate::error::sqlx_error)?;
                Ok(empty.insert(taken))
            }
        }
    }

    /// Gives the connection back after a statement failed: the pool tests it, and
    /// closes it if it is broken.
    fn give_back(&mut self) {
        self.0 = None;
    }

    async fn commit_batch(
        &mut self,
        db: &DatabaseConnection,
        batch: &[Append<'_>],
    ) -> Result<Vec<Option<Result<Committed, RepoError>>>, RepoError> {
        let committed = postgres::commit_batch(self.connection(db).await?, batch).await;
        // A unique index refusing the batch (a client's retry) leaves the connection
        // as sound as a success does.
        if matches!(committed, Err(ref error) if !matches!(error, RepoError::Conflict)) {
            self.give_back();
        }
        committed
    }

    /// Stores a lone append with its own statement on the held connection, and
    /// answers its caller.
    async fn store_alone(&mut self, db: &DatabaseConnection, pending: Pending) {
        let connection = match self.connection(db).await {
            Ok(connection) => connection,
            Err(error) => return pending.fail(error),
        };
        if pending.store_alone_on(db, Some(connection)).await {
            self.give_back();
        }
    }
}

fn writer_stopped(_: oneshot::error::RecvError) -> RepoError {
    RepoError::Internal("the append writer stopped before answering".into())
}

/// Stores each append of `batch` on its own, in arrival order, and answers its caller.
async fn each_alone(db: &DatabaseConnection, batch: Vec<Pending>) {
    for pending in batch {
        pending.store_alone(db).await;
    }
}

impl QueueState {
    /// The next batch for a writer of `backend`: on SQLite the oldest appends; on
    /// PostgreSQL the oldest append of each conversation that no writer holds, which
    /// it marks as held.
    fn take(&mut self, backend: DbBackend) -> Vec<Pending> {
        if backend != DbBackend::Postgres {
            let take = self.pending.len().min(MAX_BATCH);
            return self.pending.drain(..take).collect();
        }
        let mut batch = Vec::new();
        let mut left = VecDeque::with_capacity(self.pending.len());
        for pending in self.pending.drain(..) {
            if batch.len() < MAX_BATCH && self.in_flight.insert(pending.message.conversation_id) {
                batch.push(pending);
            } else {
                left.push_back(pending);
            }
        }
        self.pending = left;
        batch
    }
}

fn max_writers(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Postgres => POSTGRES_WRITERS,
        _ => 1,
    }
}

/// A running writer's hold on the queue: the conversations of the batch it stores, given
/// back before it takes the next. Dropped by a panic, it gives them back and counts the
/// writer out, so that a panic cannot leave appends waiting for a writer that is gone.
struct Writer {
    queue: Arc<AppendQueue>,
    taken: Vec<ConversationId>,
    stopped: bool,
}

impl Writer {
    fn release(&mut self, state: &mut QueueState) {
        for conversation in self.taken.drain(..) {
            state.in_flight.remove(&conversation);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let queue = Arc::clone(&self.queue);
        let mut state = queue.lock();
        self.release(&mut state);
        state.writers -= 1;
    }
}

#[cfg(test)]
mod tests;
