//! Human handoff: who answers a conversation (its bot, nobody yet, or an agent), and
//! the log of handoffs that analytics count.
//!
//! The state lives on the conversation's row, so that an append reads it under the
//! same row lock (PostgreSQL) or write lock (SQLite) as the counters it moves: a user
//! message stored while people answer is marked answered in that same statement, and
//! no bot ever picks it up. The queue's index is partial: conversations with their
//! bot, nearly all of them, are not in it, and appends never touch its columns.

use sea_orm_migration::prelude::*;

/// Adds `handoff`, `handoff_agent` and `handoff_since_ms` to `conversations`, their
/// partial index, and the `handoffs` table.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            ColumnDef::new(Conversations::Handoff)
                .string()
                .not_null()
                .default("bot")
                .to_owned(),
            ColumnDef::new(Conversations::HandoffAgent)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(Conversations::HandoffSinceMs)
                .big_integer()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Conversations::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_conversations_handoff \
                 ON conversations (handoff, handoff_agent, handoff_since_ms) \
                 WHERE handoff <> 'bot'",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Handoffs::Table)
                    // The id of the notice that opened the handoff.
                    .col(ColumnDef::new(Handoffs::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Handoffs::ConversationId).uuid().not_null())
                    .col(ColumnDef::new(Handoffs::BotId).string().not_null())
                    .col(
                        ColumnDef::new(Handoffs::RequestedAtMs)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Handoffs::ClaimedAtMs).big_integer().null())
                    .col(ColumnDef::new(Handoffs::AgentId).string().null())
                    .col(ColumnDef::new(Handoffs::EndedAtMs).big_integer().null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Handoffs::Table, Handoffs::ConversationId)
                            .to(Conversations::Table, Conversations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_handoffs_requested")
                    .table(Handoffs::Table)
                    .col(Handoffs::RequestedAtMs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_handoffs_conversation")
                    .table(Handoffs::Table)
                    .col(Handoffs::ConversationId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Handoffs::Table).if_exists().to_owned())
            .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS idx_conversations_handoff")
            .await?;
        for column in [
            Conversations::HandoffSinceMs,
            Conversations::HandoffAgent,
            Conversations::Handoff,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Conversations::Table)
                        .drop_column(column)
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

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    Handoff,
    HandoffAgent,
    HandoffSinceMs,
}

#[derive(DeriveIden)]
enum Handoffs {
    Table,
    Id,
    ConversationId,
    BotId,
    RequestedAtMs,
    ClaimedAtMs,
    AgentId,
    EndedAtMs,
}
