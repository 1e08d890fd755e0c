//! Full-text search over message contents, in each backend's own engine:
//!
//! - SQLite: an FTS5 table, `message_search`, kept by triggers on `message_history`
//!   (a message is inserted and deleted, never edited, so two triggers suffice). It is
//!   contentless (the text is in `message_history` already) with deletes allowed, and
//!   keeps each message's id beside its words, so that results join back by the
//!   message's primary key: a `VACUUM` that renumbers rowids can leave index entries
//!   behind for deleted messages, which then join to nothing, but never a wrong one.
//!   The tokenizer keeps diacritics, as PostgreSQL's `simple` configuration does.
//! - PostgreSQL: a GIN index on `to_tsvector('simple', content)`; queries state the
//!   same expression. `simple` does no stemming, so both backends match whole words.
//!
//! Existing messages are indexed as the migration runs.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Adds the search index of message contents.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const SQLITE_UP: [&str; 4] = [
    "CREATE VIRTUAL TABLE message_search USING fts5(content, message_id UNINDEXED, \
     content='', contentless_delete=1, contentless_unindexed=1, \
     tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER message_search_insert AFTER INSERT ON message_history BEGIN \
     INSERT INTO message_search (rowid, content, message_id) \
     VALUES (new.rowid, new.content, new.id); END",
    "CREATE TRIGGER message_search_delete AFTER DELETE ON message_history BEGIN \
     DELETE FROM message_search WHERE rowid = old.rowid; END",
    "INSERT INTO message_search (rowid, content, message_id) \
     SELECT rowid, content, id FROM message_history",
];

/// The FTS5 table's own tables are dropped by name too: SQLite 3.51 leaves the
/// `_content` table of a `contentless_unindexed` table behind when it drops it.
const SQLITE_DOWN: [&str; 8] = [
    "DROP TRIGGER IF EXISTS message_search_delete",
    "DROP TRIGGER IF EXISTS message_search_insert",
    "DROP TABLE IF EXISTS message_search",
    "DROP TABLE IF EXISTS message_search_content",
    "DROP TABLE IF EXISTS message_search_data",
    "DROP TABLE IF EXISTS message_search_idx",
    "DROP TABLE IF EXISTS message_search_docsize",
    "DROP TABLE IF EXISTS message_search_config",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE INDEX idx_message_history_search ON message_history \
                     USING GIN (to_tsvector('simple', content))",
                )
                .await?;
            }
            _ => {
                for statement in SQLITE_UP {
                    db.execute_unprepared(statement).await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared("DROP INDEX IF EXISTS idx_message_history_search")
                    .await?;
            }
            _ => {
                for statement in SQLITE_DOWN {
                    db.execute_unprepared(statement).await?;
                }
            }
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
