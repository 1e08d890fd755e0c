//! SQLite: messages are added to the search index in batches after their commit, not
//! inside it.
//!
//! FTS5 writes each insert statement's words as a segment of its own and merges
//! segments as they pile up: seven of the eighteen pages a lone message's commit
//! wrote, and about an eighth of SQLite's WebSocket send throughput
//! (docs/benchmarks.md). The insert trigger now only notes the message in
//! `message_search_pending`, a small table written at its end. The storage crate
//! moves what is noted into `message_search` in batches: in the background while
//! messages come (`group_commit`), and before every search, so that a search still
//! finds every message stored before it began (`search::pending`).
//!
//! The note holds the message's id, not its rowid: a `VACUUM` may renumber
//! `message_history`, and the batch reads the rowid (the index entry's) when it moves
//! the message. Its own key is an `INTEGER PRIMARY KEY`, which no `VACUUM` renumbers.
//! A message deleted before it was indexed leaves a note that joins to nothing and is
//! dropped with its batch. PostgreSQL's GIN index is unchanged.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Replaces the trigger `message_search_insert` by `message_search_note`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const SQLITE_UP: [&str; 3] = [
    "CREATE TABLE message_search_pending \
     (note INTEGER PRIMARY KEY, message_id BLOB NOT NULL)",
    "DROP TRIGGER message_search_insert",
    "CREATE TRIGGER message_search_note AFTER INSERT ON message_history BEGIN \
     INSERT INTO message_search_pending (message_id) VALUES (new.id); END",
];

/// What is noted and not yet indexed is indexed before the trigger comes back.
const SQLITE_DOWN: [&str; 4] = [
    "DROP TRIGGER message_search_note",
    "INSERT INTO message_search (rowid, content, message_id) \
     SELECT m.rowid, m.content, m.id FROM message_search_pending p \
     JOIN message_history m ON m.id = p.message_id ORDER BY p.note",
    "DROP TABLE message_search_pending",
    "CREATE TRIGGER message_search_insert AFTER INSERT ON message_history BEGIN \
     INSERT INTO message_search (rowid, content, message_id) \
     VALUES (new.rowid, new.content, new.id); END",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &SQLITE_UP).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        run(manager, &SQLITE_DOWN).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

async fn run(manager: &SchemaManager<'_>, statements: &[&str]) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}
