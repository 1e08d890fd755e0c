//! Indexes for conversation management at scale: retention and administrator
//! selections by status and inactivity, analytics by bot and creation time, and the
//! lookup of a user message's replies.

use sea_orm_migration::prelude::*;

/// Adds the indexes batch actions by filter, retention and analytics rely on.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for index in indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            (
                "idx_conversations_status_activity",
                Conversations::Table.into_iden(),
            ),
            (
                "idx_conversations_bot_created",
                Conversations::Table.into_iden(),
            ),
            (
                "idx_conversations_bot_activity",
                Conversations::Table.into_iden(),
            ),
            (
                "idx_message_history_reply_to",
                MessageHistory::Table.into_iden(),
            ),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
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
    BotId,
    Status,
    CreatedAtMs,
    LastActivityMs,
}

#[derive(DeriveIden)]
enum MessageHistory {
    Table,
    ReplyTo,
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        // Retention: active conversations idle since before a time, across users.
        Index::create()
            .name("idx_conversations_status_activity")
            .table(Conversations::Table)
            .col(Conversations::Status)
            .col(Conversations::LastActivityMs)
            .to_owned(),
        // Analytics: conversations of a bot started in a range.
        Index::create()
            .name("idx_conversations_bot_created")
            .table(Conversations::Table)
            .col(Conversations::BotId)
            .col(Conversations::CreatedAtMs)
            .to_owned(),
        // Selections and exports by bot and activity.
        Index::create()
            .name("idx_conversations_bot_activity")
            .table(Conversations::Table)
            .col(Conversations::BotId)
            .col(Conversations::LastActivityMs)
            .to_owned(),
        // The replies to a user message.
        Index::create()
            .name("idx_message_history_reply_to")
            .table(MessageHistory::Table)
            .col(MessageHistory::ReplyTo)
            .to_owned(),
    ]
}
