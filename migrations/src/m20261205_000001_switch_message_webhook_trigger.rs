//! PostgreSQL: the `message.created` outbox trigger is enabled only while a webhook
//! is registered.
//!
//! `webhook_message_created` fires for every stored message. With no webhook
//! registered (most deployments) it still called its PL/pgSQL function, which looked
//! at `webhooks` and returned: about 40 µs of PostgreSQL's time per message, a tenth of
//! an append (docs/benchmarks.md). A statement trigger on `webhooks` now enables it
//! when the first webhook is registered and disables it when the last is deleted,
//! whichever instance, code path or SQL session makes the change. It takes
//! `message_history`'s `SHARE ROW EXCLUSIVE` lock before it counts the webhooks, so
//! two such changes at once are applied one after the other, each counting what the
//! other committed, and a message stored meanwhile waits for the change to commit.
//! A message committed before a webhook's registration commits is not delivered to
//! it, as before.
//!
//! The other outbox triggers stay as they are: they fire on a conversation's start,
//! deletion, archiving or handoff, never on the path of a message. SQLite's triggers
//! look for a webhook in their `WHEN` clause, which costs no call.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

/// Adds `webhook_switch` on `webhooks` and sets the trigger's state once.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

const SWITCH_FUNCTION: &str = "\
CREATE FUNCTION confab_webhook_switch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE message_history IN SHARE ROW EXCLUSIVE MODE;
    IF EXISTS (SELECT 1 FROM webhooks) THEN
        ALTER TABLE message_history ENABLE TRIGGER webhook_message_created;
    ELSE
        ALTER TABLE message_history DISABLE TRIGGER webhook_message_created;
    END IF;
    RETURN NULL;
END;
$$";

const SWITCH_TRIGGER: &str = "CREATE TRIGGER webhook_switch \
    AFTER INSERT OR DELETE ON webhooks FOR EACH STATEMENT \
    EXECUTE FUNCTION confab_webhook_switch()";

/// The state the switch would have set, for a database that has webhooks already.
const SWITCH_NOW: &str = "DO $$ BEGIN \
    IF NOT EXISTS (SELECT 1 FROM webhooks) THEN \
    ALTER TABLE message_history DISABLE TRIGGER webhook_message_created; \
    END IF; END $$";

const DOWN: [&str; 3] = [
    "DROP TRIGGER IF EXISTS webhook_switch ON webhooks",
    "DROP FUNCTION IF EXISTS confab_webhook_switch()",
    "ALTER TABLE message_history ENABLE TRIGGER webhook_message_created",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for statement in [SWITCH_FUNCTION, SWITCH_TRIGGER, SWITCH_NOW] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for statement in DOWN {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
