//! Outgoing webhooks: the subscriptions (`webhooks`), the outbox of their deliveries
//! (`webhook_deliveries`), and the triggers that fill the outbox.
//!
//! A delivery is written by a trigger, in the transaction of the change it reports,
//! on every write path at once: appends (one statement on PostgreSQL, SQLite's group
//! commit), starting, archiving, unarchiving and deleting a conversation, handoff
//! changes and retention's erasure. A crash after the commit loses no event, and no
//! storage code can forget one. Each trigger first asks whether any subscription
//! exists (a look at an empty table), so a deployment without webhooks pays nothing
//! more.
//!
//! A delivery carries a snapshot of the row as the change left it (`data`, JSON
//! with the columns' names and stored values; ids in hex on SQLite), so it reports
//! what happened even when the record changes or is erased before it is sent.
//! `webhooks.events` is the list of event names between commas (`,a,b,`), so that a
//! `LIKE '%,name,%'` matches exactly one name. `seq` orders the deliveries: within a
//! conversation, every change takes the conversation's row lock (PostgreSQL) or the
//! write lock (SQLite) before its trigger draws a `seq`, so `seq` order is commit
//! order.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Adds the webhook tables and the outbox triggers.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Url,
    Events,
    SecretEnv,
    Description,
    CreatedAtMs,
    UpdatedAtMs,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Seq,
    Id,
    WebhookId,
    ConversationId,
    EventType,
    Data,
    State,
    Attempts,
    NextAttemptMs,
    LastError,
    CreatedAtMs,
    DeliveredAtMs,
    Holder,
    ClaimUntilMs,
}

/// A version 4 UUID as a 16-byte blob, from SQLite's own random source.
pub(crate) const SQLITE_UUID: &str = "unhex(substr(hex(randomblob(6)), 1, 12) || '4' \
    || substr(hex(randomblob(2)), 1, 3) || substr('89AB', 1 + (random() & 3), 1) \
    || substr(hex(randomblob(8)), 1, 15))";

const SQLITE_NOW_MS: &str = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

fn sqlite_conversation_json(row: &str) -> String {
    format!(
        "json_object('id', hex({row}.id), 'session_id', hex({row}.session_id), \
         'user_id', {row}.user_id, 'bot_id', {row}.bot_id, 'status', {row}.status, \
         'title', {row}.title, 'metadata', {row}.metadata, \
         'created_at_ms', {row}.created_at_ms, 'last_activity_ms', {row}.last_activity_ms, \
         'last_message', {row}.last_message, 'message_count', {row}.message_count, \
         'last_seq', {row}.last_seq, 'last_user_seq', {row}.last_user_seq, \
         'replied_seq', {row}.replied_seq, 'handoff', {row}.handoff, \
         'handoff_agent', {row}.handoff_agent, 'handoff_since_ms', {row}.handoff_since_ms)"
    )
}

pub(crate) const SQLITE_MESSAGE_JSON: &str = "json_object('id', hex(new.id), \
    'conversation_id', hex(new.conversation_id), 'seq', new.seq, 'sender', new.sender, \
    'sender_id', new.sender_id, 'content', new.content, 'attachments', new.attachments, \
    'suggestions', new.suggestions, 'client_message_id', new.client_message_id, \
    'reply_to', nullif(hex(new.reply_to), ''), 'timestamp_ms', new.timestamp_ms, \
    'metadata', new.metadata)";

/// One SQLite trigger: on `event` of the table, when `when` holds and a subscription
/// exists, a delivery of `kind` (an SQL expression) for each subscription wanting it.
pub(crate) fn sqlite_trigger(
    name: &str,
    event: &str,
    when: &str,
    kind: &str,
    conversation: &str,
    data: &str,
    at: &str,
) -> String {
    format!(
        "CREATE TRIGGER {name} {event} FOR EACH ROW \
         WHEN {when} EXISTS (SELECT 1 FROM webhooks) BEGIN \
         INSERT INTO webhook_deliveries (id, webhook_id, conversation_id, event_type, data, \
         state, attempts, next_attempt_ms, created_at_ms) \
         SELECT {SQLITE_UUID}, w.id, {conversation}, {kind}, {data}, 'pending', 0, {at}, {at} \
         FROM webhooks w WHERE w.events LIKE '%,' || {kind} || ',%'; END"
    )
}

fn sqlite_up() -> Vec<String> {
    vec![
        sqlite_trigger(
            "webhook_message_created",
            "AFTER INSERT ON message_history",
            "",
            "'message.created'",
            "new.conversation_id",
            SQLITE_MESSAGE_JSON,
            "new.timestamp_ms",
        ),
        sqlite_trigger(
            "webhook_conversation_started",
            "AFTER INSERT ON conversations",
            "",
            "'conversation.started'",
            "new.id",
            &sqlite_conversation_json("new"),
            "new.created_at_ms",
        ),
        sqlite_trigger(
            "webhook_conversation_status",
            "AFTER UPDATE OF status ON conversations",
            "old.status IS NOT new.status AND",
            "(CASE new.status WHEN 'archived' THEN 'conversation.archived' \
             ELSE 'conversation.unarchived' END)",
            "new.id",
            &sqlite_conversation_json("new"),
            SQLITE_NOW_MS,
        ),
        sqlite_trigger(
            "webhook_handoff_changed",
            "AFTER UPDATE OF handoff, handoff_agent ON conversations",
            "(old.handoff IS NOT new.handoff OR old.handoff_agent IS NOT new.handoff_agent) AND",
            "'handoff.changed'",
            "new.id",
            &sqlite_conversation_json("new"),
            SQLITE_NOW_MS,
        ),
        sqlite_trigger(
            "webhook_conversation_deleted",
            "AFTER DELETE ON conversations",
            "",
            "'conversation.deleted'",
            "old.id",
            &sqlite_conversation_json("old"),
            SQLITE_NOW_MS,
        ),
    ]
}

const SQLITE_DOWN: [&str; 5] = [
    "DROP TRIGGER IF EXISTS webhook_message_created",
    "DROP TRIGGER IF EXISTS webhook_conversation_started",
    "DROP TRIGGER IF EXISTS webhook_conversation_status",
    "DROP TRIGGER IF EXISTS webhook_handoff_changed",
    "DROP TRIGGER IF EXISTS webhook_conversation_deleted",
];

/// One function for every trigger: which event it is follows from the table, the
/// operation and the trigger's argument. `row_to_json` keeps the columns' names, as
/// the SQLite triggers spell them.
pub(crate) const POSTGRES_FUNCTION: &str = "\
CREATE FUNCTION confab_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    conversation uuid;
    snapshot text;
    at_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhooks) THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'message_history' THEN
        kind := 'message.created';
        conversation := NEW.conversation_id;
        snapshot := row_to_json(NEW)::text;
        at_ms := NEW.timestamp_ms;
    ELSIF TG_OP = 'DELETE' THEN
        kind := 'conversation.deleted';
        conversation := OLD.id;
        snapshot := row_to_json(OLD)::text;
    ELSE
        IF TG_OP = 'INSERT' THEN
            kind := 'conversation.started';
            at_ms := NEW.created_at_ms;
        ELSIF TG_ARGV[0] = 'status' THEN
            kind := CASE NEW.status WHEN 'archived' THEN 'conversation.archived'
                    ELSE 'conversation.unarchived' END;
        ELSE
            kind := 'handoff.changed';
        END IF;
        conversation := NEW.id;
        snapshot := row_to_json(NEW)::text;
    END IF;
    INSERT INTO webhook_deliveries (id, webhook_id, conversation_id, event_type, data,
        state, attempts, next_attempt_ms, created_at_ms)
    SELECT gen_random_uuid(), w.id, conversation, kind, snapshot, 'pending', 0, at_ms, at_ms
    FROM webhooks w WHERE w.events LIKE '%,' || kind || ',%';
    RETURN NULL;
END;
$$";

const POSTGRES_UP: [&str; 4] = [
    "CREATE TRIGGER webhook_message_created AFTER INSERT ON message_history \
     FOR EACH ROW EXECUTE FUNCTION confab_webhook_outbox()",
    "CREATE TRIGGER webhook_conversation_started_or_deleted \
     AFTER INSERT OR DELETE ON conversations \
     FOR EACH ROW EXECUTE FUNCTION confab_webhook_outbox()",
    "CREATE TRIGGER webhook_conversation_status AFTER UPDATE OF status ON conversations \
     FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) \
     EXECUTE FUNCTION confab_webhook_outbox('status')",
    "CREATE TRIGGER webhook_handoff_changed \
     AFTER UPDATE OF handoff, handoff_agent ON conversations FOR EACH ROW \
     WHEN (OLD.handoff IS DISTINCT FROM NEW.handoff \
     OR OLD.handoff_agent IS DISTINCT FROM NEW.handoff_agent) \
     EXECUTE FUNCTION confab_webhook_outbox('handoff')",
];

const POSTGRES_DOWN: [&str; 5] = [
    "DROP TRIGGER IF EXISTS webhook_message_created ON message_history",
    "DROP TRIGGER IF EXISTS webhook_conversation_started_or_deleted ON conversations",
    "DROP TRIGGER IF EXISTS webhook_conversation_status ON conversations",
    "DROP TRIGGER IF EXISTS webhook_handoff_changed ON conversations",
    "DROP FUNCTION IF EXISTS confab_webhook_outbox()",
];

fn webhooks() -> TableCreateStatement {
    Table::create()
        .table(Webhooks::Table)
        .col(ColumnDef::new(Webhooks::Id).uuid().not_null().primary_key())
        .col(ColumnDef::new(Webhooks::Url).text().not_null())
        .col(ColumnDef::new(Webhooks::Events).text().not_null())
        .col(ColumnDef::new(Webhooks::SecretEnv).string().not_null())
        .col(ColumnDef::new(Webhooks::Description).text().not_null())
        .col(
            ColumnDef::new(Webhooks::CreatedAtMs)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(Webhooks::UpdatedAtMs)
                .big_integer()
                .not_null(),
        )
        .to_owned()
}

// `conversation_id` has no foreign key: a conversation's deliveries, its
// `conversation.deleted` among them, outlive it.
fn webhook_deliveries() -> TableCreateStatement {
    Table::create()
        .table(WebhookDeliveries::Table)
        .col(
            ColumnDef::new(WebhookDeliveries::Seq)
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(
            ColumnDef::new(WebhookDeliveries::Id)
                .uuid()
                .not_null()
                .unique_key(),
        )
        .col(
            ColumnDef::new(WebhookDeliveries::WebhookId)
                .uuid()
                .not_null(),
        )
        .col(
            ColumnDef::new(WebhookDeliveries::ConversationId)
                .uuid()
                .not_null(),
        )
        .col(
            ColumnDef::new(WebhookDeliveries::EventType)
                .string()
                .not_null(),
        )
        .col(ColumnDef::new(WebhookDeliveries::Data).text().not_null())
        .col(ColumnDef::new(WebhookDeliveries::State).string().not_null())
        .col(
            ColumnDef::new(WebhookDeliveries::Attempts)
                .integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(WebhookDeliveries::NextAttemptMs)
                .big_integer()
                .null(),
        )
        .col(ColumnDef::new(WebhookDeliveries::LastError).text().null())
        .col(
            ColumnDef::new(WebhookDeliveries::CreatedAtMs)
                .big_integer()
                .not_null(),
        )
        .col(
            ColumnDef::new(WebhookDeliveries::DeliveredAtMs)
                .big_integer()
                .null(),
        )
        .col(ColumnDef::new(WebhookDeliveries::Holder).uuid().null())
        .col(
            ColumnDef::new(WebhookDeliveries::ClaimUntilMs)
                .big_integer()
                .null(),
        )
        .foreign_key(
            ForeignKey::create()
                .name("fk_webhook_deliveries_webhook")
                .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                .to(Webhooks::Table, Webhooks::Id)
                .on_delete(ForeignKeyAction::Cascade),
        )
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(webhooks()).await?;
        manager.create_table(webhook_deliveries()).await?;
        let db = manager.get_connection();
        // The order rule asks for a subscription and conversation's oldest pending
        // delivery; the list pages a subscription's deliveries by `seq`. Pending
        // deliveries are few, so their index is partial (the same text on both).
        for statement in [
            "CREATE INDEX idx_webhook_deliveries_order \
             ON webhook_deliveries (webhook_id, conversation_id, seq) WHERE state = 'pending'",
            "CREATE INDEX idx_webhook_deliveries_due \
             ON webhook_deliveries (next_attempt_ms) WHERE state = 'pending'",
            "CREATE INDEX idx_webhook_deliveries_list ON webhook_deliveries (webhook_id, seq)",
        ] {
            db.execute_unprepared(statement).await?;
        }
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(POSTGRES_FUNCTION).await?;
                for statement in POSTGRES_UP {
                    db.execute_unprepared(statement).await?;
                }
            }
            _ => {
                for statement in sqlite_up() {
                    db.execute_unprepared(&statement).await?;
                }
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                for statement in POSTGRES_DOWN {
                    db.execute_unprepared(statement).await?;
                }
            }
            _ => {
                for statement in SQLITE_DOWN {
                    db.execute_unprepared(statement).await?;
                }
            }
        }
        for table in [
            WebhookDeliveries::Table.into_iden(),
            Webhooks::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
