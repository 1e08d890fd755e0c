//! Drops two indexes on `conversations` that every message paid for and only
//! administrators' occasional queries used.
//!
//! Each append moves `last_activity_ms`, so each index holding it is rewritten with
//! every message (on PostgreSQL, whose update of such a row is never HOT, every index
//! of the table is). `(status, last_activity_ms)` served retention and
//! `(bot_id, last_activity_ms)` selections by bot and activity: both are background or
//! administrative reads that walk conversations in id order a page at a time, and the
//! primary key and `(bot_id, created_at_ms)` serve them well enough. Dropping both
//! took 9 % off PostgreSQL's CPU per answered WebSocket message (docs/benchmarks.md).

use sea_orm_migration::prelude::*;

/// Drops `idx_conversations_status_activity` and `idx_conversations_bot_activity`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [STATUS_ACTIVITY, BOT_ACTIVITY] {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(Conversations::Table)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, leading) in [
            (STATUS_ACTIVITY, Conversations::Status),
            (BOT_ACTIVITY, Conversations::BotId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Conversations::Table)
                        .col(leading)
                        .col(Conversations::LastActivityMs)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

const STATUS_ACTIVITY: &str = "idx_conversations_status_activity";
const BOT_ACTIVITY: &str = "idx_conversations_bot_activity";

#[derive(DeriveIden)]
enum Conversations {
    Table,
    BotId,
    Status,
    LastActivityMs,
}
