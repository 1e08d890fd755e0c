//! Reply leases: which instance answers a conversation's pending user messages when
//! several share the database. The lease lives on the conversation's row, so that
//! claiming, renewing and letting go take the same row lock as appends do: a release
//! that checks "nothing pending" in its `WHERE` cannot miss a user message appended
//! concurrently.

use sea_orm_migration::prelude::*;

/// Adds `reply_holder` and `reply_lease_until_ms` to `conversations`.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Conversations::Table)
                    .add_column(ColumnDef::new(Conversations::ReplyHolder).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Conversations::Table)
                    .add_column(
                        ColumnDef::new(Conversations::ReplyLeaseUntilMs)
                            .big_integer()
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Conversations::ReplyLeaseUntilMs, Conversations::ReplyHolder] {
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
    ReplyHolder,
    ReplyLeaseUntilMs,
}
