//! The first schema: bots, conversations, their sessions and messages, server settings,
//! and the indexes every query of the storage adapter relies on.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, string, string_null, text, text_null, uuid};

/// Creates every table of the first release.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(bots()).await?;
        manager.create_table(conversations()).await?;
        manager.create_table(user_sessions()).await?;
        manager.create_table(message_history()).await?;
        manager.create_table(server_settings()).await?;
        for index in indexes() {
            manager.create_index(index).await?;
        }
        // The reply worker asks for conversations whose user messages wait for a reply.
        // They are few at any time, so a partial index keeps that query cheap without
        // indexing every conversation. sea-query cannot express a partial index; this
        // statement is the same on SQLite and PostgreSQL.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_conversations_pending_replies \
                 ON conversations (last_activity_ms) \
                 WHERE replied_seq < last_user_seq",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children first, so that foreign keys never point at a dropped table.
        for table in [
            ServerSettings::Table.into_iden(),
            MessageHistory::Table.into_iden(),
            UserSessions::Table.into_iden(),
            Conversations::Table.into_iden(),
            Bots::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }

    // SQLite runs DDL inside transactions too; without one a failure half-way would
    // leave a schema that no migration describes.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Bots {
    Table,
    Id,
    Name,
    Description,
    EngineKind,
    EngineSettings,
    CreatedAtMs,
    UpdatedAtMs,
}

fn bots() -> TableCreateStatement {
    Table::create()
        .table(Bots::Table)
        .col(string(Bots::Id).primary_key())
        .col(string(Bots::Name))
        .col(text(Bots::Description))
        .col(string(Bots::EngineKind))
        .col(text(Bots::EngineSettings))
        .col(big_integer(Bots::CreatedAtMs))
        .col(big_integer(Bots::UpdatedAtMs))
        .to_owned()
}

#[derive(DeriveIden)]
enum Conversations {
    Table,
    Id,
    SessionId,
    UserId,
    BotId,
    Status,
    Title,
    Metadata,
    CreatedAtMs,
    LastActivityMs,
    LastMessage,
    MessageCount,
    LastSeq,
    LastUserSeq,
    RepliedSeq,
}

// `bot_id` has no foreign key to `bots` on purpose: a bot may be deleted while its
// conversations stay archived for their users.
fn conversations() -> TableCreateStatement {
    Table::create()
        .table(Conversations::Table)
        .col(uuid(Conversations::Id).primary_key())
        .col(uuid(Conversations::SessionId).unique_key())
        .col(string(Conversations::UserId))
        .col(string(Conversations::BotId))
        .col(string(Conversations::Status))
        .col(string_null(Conversations::Title))
        .col(text(Conversations::Metadata))
        .col(big_integer(Conversations::CreatedAtMs))
        .col(big_integer(Conversations::LastActivityMs))
        .col(text_null(Conversations::LastMessage))
        .col(big_integer(Conversations::MessageCount))
        .col(big_integer(Conversations::LastSeq))
        .col(big_integer(Conversations::LastUserSeq))
        .col(big_integer(Conversations::RepliedSeq))
        .to_owned()
}

#[derive(DeriveIden)]
enum UserSessions {
    Table,
    Id,
    ConversationId,
    UserId,
    BotId,
    Context,
    CreatedAtMs,
    UpdatedAtMs,
}

fn user_sessions() -> TableCreateStatement {
    Table::create()
        .table(UserSessions::Table)
        .col(uuid(UserSessions::Id).primary_key())
        .col(uuid(UserSessions::ConversationId).unique_key())
        .col(string(UserSessions::UserId))
        .col(string(UserSessions::BotId))
        .col(text(UserSessions::Context))
        .col(big_integer(UserSessions::CreatedAtMs))
        .col(big_integer(UserSessions::UpdatedAtMs))
        .foreign_key(
            ForeignKey::create()
                .name("fk_user_sessions_conversation")
                .from(UserSessions::Table, UserSessions::ConversationId)
                .to(Conversations::Table, Conversations::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

#[derive(DeriveIden)]
enum MessageHistory {
    Table,
    Id,
    ConversationId,
    Seq,
    Sender,
    SenderId,
    Content,
    Attachments,
    Suggestions,
    ClientMessageId,
    ReplyTo,
    TimestampMs,
    Metadata,
}

fn message_history() -> TableCreateStatement {
    Table::create()
        .table(MessageHistory::Table)
        .col(uuid(MessageHistory::Id).primary_key())
        .col(uuid(MessageHistory::ConversationId))
        .col(big_integer(MessageHistory::Seq))
        .col(string(MessageHistory::Sender))
        .col(string(MessageHistory::SenderId))
        .col(text(MessageHistory::Content))
        .col(text(MessageHistory::Attachments))
        .col(text(MessageHistory::Suggestions))
        .col(string_null(MessageHistory::ClientMessageId))
        .col(ColumnDef::new(MessageHistory::ReplyTo).uuid().null())
        .col(big_integer(MessageHistory::TimestampMs))
        .col(text(MessageHistory::Metadata))
        .foreign_key(
            ForeignKey::create()
                .name("fk_message_history_conversation")
                .from(MessageHistory::Table, MessageHistory::ConversationId)
                .to(Conversations::Table, Conversations::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

#[derive(DeriveIden)]
enum ServerSettings {
    Table,
    Key,
    Value,
}

fn server_settings() -> TableCreateStatement {
    Table::create()
        .table(ServerSettings::Table)
        .col(string(ServerSettings::Key).primary_key())
        .col(text(ServerSettings::Value))
        .to_owned()
}

fn indexes() -> Vec<IndexCreateStatement> {
    vec![
        // Gap-free seqs: two appends can never store the same position.
        Index::create()
            .name("idx_message_history_conversation_seq")
            .table(MessageHistory::Table)
            .col(MessageHistory::ConversationId)
            .col(MessageHistory::Seq)
            .unique()
            .to_owned(),
        // Idempotent sends. NULLs are distinct in a unique index on both backends, so
        // any number of messages may come without a client id.
        Index::create()
            .name("idx_message_history_conversation_client_message_id")
            .table(MessageHistory::Table)
            .col(MessageHistory::ConversationId)
            .col(MessageHistory::ClientMessageId)
            .unique()
            .to_owned(),
        // History bounded by time.
        Index::create()
            .name("idx_message_history_conversation_timestamp")
            .table(MessageHistory::Table)
            .col(MessageHistory::ConversationId)
            .col(MessageHistory::TimestampMs)
            .to_owned(),
        // A user's list, newest activity first, and its keyset cursor.
        Index::create()
            .name("idx_conversations_user_activity")
            .table(Conversations::Table)
            .col(Conversations::UserId)
            .col(Conversations::LastActivityMs)
            .col(Conversations::Id)
            .to_owned(),
        // The list filtered by bot, and by bot and status.
        Index::create()
            .name("idx_conversations_user_bot_status_activity")
            .table(Conversations::Table)
            .col(Conversations::UserId)
            .col(Conversations::BotId)
            .col(Conversations::Status)
            .col(Conversations::LastActivityMs)
            .to_owned(),
        // The list filtered by status only.
        Index::create()
            .name("idx_conversations_user_status_activity")
            .table(Conversations::Table)
            .col(Conversations::UserId)
            .col(Conversations::Status)
            .col(Conversations::LastActivityMs)
            .to_owned(),
    ]
}
