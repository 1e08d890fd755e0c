//! SQLite's side of the group commit: a batch in one `BEGIN IMMEDIATE` transaction on
//! a rusqlite connection of the writer's own, run on the writer's tokio worker.
//!
//! Through sqlx every statement would go to the thread of its connection and back;
//! here the batch runs where the writer runs, as the direct reads do
//! (`direct_reads`). It does not wait there: its busy timeout is zero, and a batch
//! that finds the write lock taken by another connection of the pool (a conversation
//! being created, a handoff) waits for it on tokio's blocking threads instead, as long
//! as a pooled connection would.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use confab_domain::conversation::{Conversation, ConversationId};
use confab_domain::error::RepoError;
use confab_domain::message::NewMessage;
use confab_domain::user::UserId;
use rusqlite::{Connection, ErrorCode};
use sea_orm::sqlx;
use sea_orm::{DatabaseConnection, DbBackend, EntityTrait, IntoActiveModel, QueryTrait};
use tokio::sync::{Mutex, OnceCell};

use super::{Append, Committed};
use crate::append::{ADVANCE_RETURNING_SQL, advance_parameters, advanced, takes_own};
use crate::connection::{SQLITE_BUSY_TIMEOUT, open_sqlite_writer, sqlite_file};
use crate::direct_reads::{bind_all, rows_on};
use crate::entity::{conversation, message};
use crate::error::{RowError, rusqlite_error, sqlx_error};
use crate::rows::message_row;

/// Messages inserted by one statement, largest first: each size is one SQL text, kept
/// prepared. Fewer statements mean fewer flushes of the search index (below): with
/// every power of two, a batch of fewer than 64 takes one statement per bit of its
/// size (37 is 32 + 4 + 1, where sizes of 64, 16, 4 and 1 took 16 + 16 + 4 + 1).
const INSERT_SIZES: [usize; 7] = [64, 32, 16, 8, 4, 2, 1];

/// How many times a restart of the WAL (`SqliteWriter::restart_wal`) waits
/// [`RESTART_WAIT`] for readers to move off the WAL before it gives up. The writer
/// waits meanwhile, so this bounds the part of its pause spent on readers: 5 ms of
/// sleeps, a few more with the sleeps' overshoot (the rest of the pause is the copy
/// and its two `fsync`s). A reader of a page takes well under a millisecond; one that
/// reads for longer keeps the WAL from starting over whatever the wait, and the next
/// restart tries again.
const RESTART_WAITS: i32 = 50;
const RESTART_WAIT: Duration = Duration::from_micros(100);

/// The group commit's connection to a SQLite file, kept between batches.
#[derive(Debug, Default)]
pub(super) struct SqliteWriter {
    /// The pool's file, once looked up; `None` inside when it has none (in memory).
    file: OnceCell<Option<PathBuf>>,
    /// Held for a whole batch, and by a restart of the WAL, which keeps the writer
    /// from committing meanwhile (an asynchronous lock: the batch waits on no thread).
    connection: Mutex<Option<Connection>>,
}

/// Why a batch did not commit.
enum Failure {
    /// Another connection holds the write lock, and this one did not wait for it.
    Busy(rusqlite::Error),
    Repo(RepoError),
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Failure::Repo(rusqlite_error(error))
    }
}

impl From<RepoError> for Failure {
    fn from(error: RepoError) -> Self {
        Failure::Repo(error)
    }
}

impl From<RowError> for Failure {
    fn from(error: RowError) -> Self {
        Failure::Repo(error.into())
    }
}

impl SqliteWriter {
    /// Stores the batch in one transaction: for each append `Some` of the stored
    /// message (with its conversation as it found it, for an own append), or `None`
    /// when its conversation did not move (sorted out by the caller). `Ok(None)` when
    /// the database is not a plain file (in memory), whose one pooled connection takes
    /// each append on its own.
    pub(super) async fn commit_batch(
        &self,
        db: &DatabaseConnection,
        batch: &[Append<'_>],
    ) -> Result<Option<Vec<Option<Committed>>>, RepoError> {
        let Some(file) = self.file.get_or_init(|| sqlite_file(db)).await else {
            return Ok(None);
        };
        let mut kept = self.connection.lock().await;
        let mut connection = match kept.take() {
            Some(connection) => connection,
            None => open_sqlite_writer(file).map_err(rusqlite_error)?,
        };
        let mut usable = true;
        let committed = match commit(&mut connection, batch) {
            Err(Failure::Busy(_)) => {
                let batch: Vec<(NewMessage, Option<UserId>)> = batch
                    .iter()
                    .map(|append| (append.message.clone(), append.owner.cloned()))
                    .collect();
                let waited = tokio::task::spawn_blocking(move || {
                    let (committed, usable) = waiting(&mut connection, &batch);
                    (connection, committed, usable)
                })
                .await
                .map_err(|_| RepoError::Internal("the SQLite writer's thread panicked".into()))?;
                connection = waited.0;
                usable = waited.2;
                waited.1
            }
            done => done,
        };
        // A connection left inside a transaction (its rollback failed too) is closed,
        // which rolls it back; so is one whose busy timeout could not be reset. The
        // next batch opens another.
        if usable && connection.is_autocommit() {
            *kept = Some(connection);
        }
        match committed {
            Ok(stored) => Ok(Some(stored)),
            Err(Failure::Busy(error)) => Err(rusqlite_error(error)),
            Err(Failure::Repo(error)) => Err(error),
        }
    }

    /// Has the WAL start over from its beginning at the writer's next commit, so that
    /// it stays the size of a few checkpoints under steady appends: a checkpoint
    /// (`RESTART`) on the writer's connection, between two batches, that copies back
    /// what the background checkpoints left and waits briefly for readers to move off
    /// the WAL. `Ok(false)` when readers stayed on it (or no writer has a connection
    /// yet): the WAL then goes on growing until a later restart.
    ///
    /// SQLite starts the WAL over only when a write begins with all of it copied back
    /// and no reader on it. Under steady appends, no commit of the writer found it so
    /// after a background checkpoint: the next commit always came first. SQLite's own
    /// answer, the writer checkpointing after the commit that crosses a threshold,
    /// made that commit copy back everything since the last background checkpoint
    /// and wait for two `fsync`s, which set the p99 of REST sends (docs/benchmarks-history.md,
    /// part ten). Here the writer pauses only for what the last background checkpoint
    /// did not copy: the batch it has taken waits, and appends arriving meanwhile
    /// wait in the queue for the next.
    pub(super) async fn restart_wal(&self) -> Result<bool, RepoError> {
        let mut kept = self.connection.lock().await;
        let Some(connection) = kept.take() else {
            return Ok(false);
        };
        let (connection, restarted, usable) = tokio::task::spawn_blocking(move || {
            let (restarted, usable) = restart(&connection);
            (connection, restarted, usable)
        })
        .await
        .map_err(|_| RepoError::Internal("the SQLite writer's thread panicked".into()))?;
        if usable {
            *kept = Some(connection);
        }
        restarted.map_err(rusqlite_error)
    }
}

/// A `RESTART` checkpoint on the writer's connection, waiting briefly for readers
/// ([`RESTART_WAITS`]); on a blocking thread. Also says whether the connection may
/// be kept: its busy timeout must be zero again.
fn restart(connection: &Connection) -> (rusqlite::Result<bool>, bool) {
    fn brief_wait(waited: i32) -> bool {
        if waited >= RESTART_WAITS {
            return false;
        }
        std::thread::sleep(RESTART_WAIT);
        true
    }
    if let Err(error) = connection.busy_handler(Some(brief_wait)) {
        return (Err(error), false);
    }
    // The first column is 1 when the checkpoint gave up waiting.
    let restarted = connection.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
        row.get::<_, i64>(0).map(|busy| busy == 0)
    });
    let usable = connection.busy_timeout(Duration::ZERO).is_ok();
    (restarted, usable)
}

/// [`commit`], waiting for the write lock as long as a pooled connection would; on a
/// blocking thread. Also says whether the connection may be kept: its busy timeout
/// must be zero again, or a later batch would wait on the tokio worker.
fn waiting(
    connection: &mut Connection,
    batch: &[(NewMessage, Option<UserId>)],
) -> (Result<Vec<Option<Committed>>, Failure>, bool) {
    if let Err(error) = connection.busy_timeout(SQLITE_BUSY_TIMEOUT) {
        return (Err(error.into()), false);
    }
    let batch: Vec<Append<'_>> = batch
        .iter()
        .map(|(message, owner)| Append {
            message,
            owner: owner.as_ref(),
        })
        .collect();
    let committed = commit(connection, &batch);
    let usable = connection.busy_timeout(Duration::ZERO).is_ok();
    (committed, usable)
}

/// Runs the batch in one write transaction and commits it; rolls back whatever fails.
fn commit(
    connection: &mut Connection,
    batch: &[Append<'_>],
) -> Result<Vec<Option<Committed>>, Failure> {
    // The write lock at once: a transaction that read first and wrote later could
    // fail with `SQLITE_BUSY` without waiting for the busy timeout.
    if let Err(error) = connection.execute_batch("BEGIN IMMEDIATE") {
        return Err(match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) => Failure::Busy(error),
            _ => error.into(),
        });
    }
    let applied = apply(connection, batch).and_then(|stored| {
        connection.execute_batch("COMMIT")?;
        Ok(stored)
    });
    if applied.is_err() && !connection.is_autocommit() {
        // SQLite may have rolled back already (a full disk); the caller drops a
        // connection still inside the transaction.
        let _ = connection.execute_batch("ROLLBACK");
    }
    applied
}

/// The batch's appends, inside the transaction: first each append's `UPDATE` of its
/// conversation (`ADVANCE_RETURNING_SQL`), in arrival order, each reading the seq the one
/// before it wrote; then the messages, many to an `INSERT`.
///
/// The order matters for the search index. Its trigger feeds FTS5, which keeps new
/// terms in memory until the transaction commits, except that every statement that
/// needs a statement journal (an insert that fires triggers and checks a foreign key)
/// makes it write them to disk first, as a segment of their own. Interleaved, one
/// update and one insert per append, each message became a segment; this way a batch
/// writes one per `INSERT`.
fn apply(connection: &Connection, batch: &[Append<'_>]) -> Result<Vec<Option<Committed>>, Failure> {
    let mut stored: Vec<Option<Committed>> = Vec::with_capacity(batch.len());
    // Client ids stored by this batch: the guard of a later append with the same id
    // looks for the message, which is not inserted yet.
    let mut client_ids: HashSet<(ConversationId, &str)> = HashSet::new();
    for &Append {
        message: new,
        owner,
    } in batch
    {
        let client_id = new
            .client_message_id
            .as_ref()
            .map(|id| (new.conversation_id, id.as_str()));
        if client_id.is_some_and(|id| client_ids.contains(&id)) {
            stored.push(None);
            continue;
        }
        // An own append reads its conversation as the appends before it in the batch
        // left it, and moves it only if it is the owner's and active.
        let before = match owner {
            Some(owner) => match own_conversation(connection, new.conversation_id, owner)? {
                Some(before) => Some(before),
                None => {
                    stored.push(None);
                    continue;
                }
            },
            None => None,
        };
        let advance =
            ADVANCE_RETURNING_SQL.statement(&advance_parameters(new)?, DbBackend::Sqlite)?;
        let mut update = connection.prepare_cached(&advance.sql)?;
        bind_all(&mut update, &advance)?;
        let mut rows = update.raw_query();
        let moved = match rows.next()? {
            Some(row) => Some((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
            None => None,
        };
        drop(rows);
        stored.push(match moved {
            Some((last_seq, last_activity_ms)) => {
                client_ids.extend(client_id);
                let (seq, timestamp) = advanced(last_seq, last_activity_ms)?;
                Some(Committed {
                    message: new.stored(seq, timestamp),
                    before,
                })
            }
            None => None,
        });
    }
    insert(connection, batch, &stored)?;
    Ok(stored)
}

/// The conversation `id` as it stands inside the batch's transaction, if it is
/// `owner`'s and active.
fn own_conversation(
    connection: &Connection,
    id: ConversationId,
    owner: &UserId,
) -> Result<Option<Conversation>, Failure> {
    let read: Vec<conversation::Model> = rows_on(
        connection,
        &conversation::by_id_statement(DbBackend::Sqlite, id.as_uuid()),
    )?;
    let Some(model) = read.into_iter().next() else {
        return Ok(None);
    };
    if !takes_own(&model, owner) {
        return Ok(None);
    }
    Ok(Some(Conversation::try_from(model)?))
}

/// Inserts the messages of the appends that moved their conversations.
fn insert(
    connection: &Connection,
    batch: &[Append<'_>],
    stored: &[Option<Committed>],
) -> Result<(), Failure> {
    let mut rows = Vec::with_capacity(batch.len());
    for (append, stored) in batch.iter().zip(stored) {
        if let Some(Committed { message, .. }) = stored {
            rows.push(
                message_row(append.message, message.seq, message.timestamp)?.into_active_model(),
            );
        }
    }
    let mut rows = rows.into_iter();
    while rows.len() > 0 {
        let size = INSERT_SIZES
            .into_iter()
            .find(|size| *size <= rows.len())
            .unwrap_or(1);
        let insert =
            message::Entity::insert_many(rows.by_ref().take(size)).build(DbBackend::Sqlite);
        let mut prepared = connection.prepare_cached(&insert.sql)?;
        bind_all(&mut prepared, &insert)?;
        prepared.raw_execute()?;
    }
    Ok(())
}

/// Checkpoints the WAL without waiting for readers or the writer (`PASSIVE`): it copies
/// back what it can, and what a reader still needs stays for the next checkpoint.
/// Returns the WAL's size in pages, `None` when another checkpoint was running (SQLite
/// then does nothing and tells nothing) or the database is not in WAL mode.
pub(super) async fn checkpoint(db: &DatabaseConnection) -> Result<Option<u32>, RepoError> {
    let mut connection = db
        .get_sqlite_connection_pool()
        .acquire()
        .await
        .map_err(sqlx_error)?;
    // Its columns: whether it gave up, the WAL's pages, the pages copied back (-1
    // for the last two when it did nothing).
    let (_, wal_pages, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *connection)
        .await
        .map_err(sqlx_error)?;
    Ok(u32::try_from(wal_pages).ok())
}
