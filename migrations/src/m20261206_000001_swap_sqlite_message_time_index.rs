//! SQLite: the index on a conversation's message times, `(conversation_id,
//! timestamp_ms)`, gives way to one on all messages' times, `(timestamp_ms)`.
//!
//! Every append wrote a leaf of the per-conversation index that no other append of
//! its commit shared, one page of a lone message's eighteen; an index on all times
//! grows at its right edge, so a commit's messages share its last leaf. Side by side
//! this gave SQLite's WebSocket sends about an eighth more answered messages per
//! second (docs/benchmarks-history.md, part ten). What read through the old index reads
//! through others:
//!
//! - history bounded by time and search's newest-first check find a conversation's
//!   messages around a time by its seq, since a conversation's times never decrease
//!   in seq order (`crates/storage-seaorm`, `messages.rs` and `search/sqlite.rs`);
//! - analytics read the messages of their time window through the new index, then
//!   their conversations.
//!
//! PostgreSQL keeps its per-conversation index: its newest-first search reads each
//! conversation's newest messages in time order through it, and dropping it measured
//! nothing there.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Swaps `idx_message_history_conversation_timestamp` for
/// `idx_message_history_timestamp`, on SQLite only.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const PER_CONVERSATION: &str = "idx_message_history_conversation_timestamp";
const ALL_MESSAGES: &str = "idx_message_history_timestamp";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        swap(
            manager,
            PER_CONVERSATION,
            ALL_MESSAGES,
            &[MessageHistory::TimestampMs],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [MessageHistory::ConversationId, MessageHistory::TimestampMs];
        swap(manager, ALL_MESSAGES, PER_CONVERSATION, &columns).await
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

/// On SQLite, drops the index `dropped` and creates `created` on `columns`.
async fn swap(
    manager: &SchemaManager<'_>,
    dropped: &str,
    created: &str,
    columns: &[MessageHistory],
) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Postgres {
        return Ok(());
    }
    manager
        .drop_index(
            Index::drop()
                .name(dropped)
                .table(MessageHistory::Table)
                .to_owned(),
        )
        .await?;
    let mut index = Index::create();
    index.name(created).table(MessageHistory::Table);
    for column in columns {
        index.col(*column);
    }
    manager.create_index(index.to_owned()).await
}

#[derive(DeriveIden, Clone, Copy)]
enum MessageHistory {
    Table,
    ConversationId,
    TimestampMs,
}
