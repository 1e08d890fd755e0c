//! Feedback on bot replies: the user's rating (`up` or `down`), an optional comment
//! and when it was given, on the message's own row, so that history, exports and the
//! analytics of messages read it without a join. A message has one feedback at most:
//! a new rating replaces the old.

use sea_orm_migration::prelude::*;

/// Adds `feedback_rating`, `feedback_comment` and `feedback_at_ms` to
/// `message_history`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            ColumnDef::new(MessageHistory::FeedbackRating)
                .string()
                .null()
                .to_owned(),
            ColumnDef::new(MessageHistory::FeedbackComment)
                .text()
                .null()
                .to_owned(),
            ColumnDef::new(MessageHistory::FeedbackAtMs)
                .big_integer()
                .null()
                .to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(MessageHistory::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            MessageHistory::FeedbackAtMs,
            MessageHistory::FeedbackComment,
            MessageHistory::FeedbackRating,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(MessageHistory::Table)
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
enum MessageHistory {
    Table,
    FeedbackRating,
    FeedbackComment,
    FeedbackAtMs,
}
