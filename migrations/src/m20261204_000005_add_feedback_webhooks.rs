//! `feedback.created` webhooks, and the feedback columns in `message.created`'s
//! snapshot.
//!
//! The outbox triggers (`m20261204_000003_add_webhooks`) came before the feedback
//! columns (`m20261204_000004_add_feedback`). On PostgreSQL `row_to_json` copies
//! every column, so snapshots already carry them; SQLite's `json_object` names its
//! columns, so its message trigger is made again with them.
//!
//! Feedback is reported when it is given or changed, not when it is removed: a
//! receiver learns of a removal from the message itself, and "created" with no
//! rating would say nothing. Setting the same feedback again changes no column and
//! records nothing.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261204_000003_add_webhooks::{
    POSTGRES_FUNCTION, SQLITE_MESSAGE_JSON, sqlite_trigger,
};

/// Adds the `feedback.created` triggers.
#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

/// The message snapshot of 000003 and the feedback columns.
fn sqlite_message_json() -> String {
    let base = SQLITE_MESSAGE_JSON.trim_end_matches(')');
    format!(
        "{base}, 'feedback_rating', new.feedback_rating, \
         'feedback_comment', new.feedback_comment, 'feedback_at_ms', new.feedback_at_ms)"
    )
}

/// Only a rating set or changed is feedback given.
const SQLITE_FEEDBACK_WHEN: &str = "new.feedback_rating IS NOT NULL \
    AND (old.feedback_rating IS NOT new.feedback_rating \
    OR old.feedback_comment IS NOT new.feedback_comment \
    OR old.feedback_at_ms IS NOT new.feedback_at_ms) AND";

fn sqlite_message_created(data: &str) -> String {
    sqlite_trigger(
        "webhook_message_created",
        "AFTER INSERT ON message_history",
        "",
        "'message.created'",
        "new.conversation_id",
        data,
        "new.timestamp_ms",
    )
}

fn sqlite_up() -> Vec<String> {
    let data = sqlite_message_json();
    vec![
        "DROP TRIGGER IF EXISTS webhook_message_created".to_owned(),
        sqlite_message_created(&data),
        sqlite_trigger(
            "webhook_feedback_created",
            "AFTER UPDATE OF feedback_rating, feedback_comment, feedback_at_ms \
             ON message_history",
            SQLITE_FEEDBACK_WHEN,
            "'feedback.created'",
            "new.conversation_id",
            &data,
            "new.feedback_at_ms",
        ),
    ]
}

fn sqlite_down() -> Vec<String> {
    vec![
        "DROP TRIGGER IF EXISTS webhook_feedback_created".to_owned(),
        "DROP TRIGGER IF EXISTS webhook_message_created".to_owned(),
        sqlite_message_created(SQLITE_MESSAGE_JSON),
    ]
}

/// 000003's function with one more case: an update of a message is its feedback.
const POSTGRES_FUNCTION_WITH_FEEDBACK: &str = "\
CREATE OR REPLACE FUNCTION confab_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
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
        IF TG_OP = 'UPDATE' THEN
            kind := 'feedback.created';
            at_ms := NEW.feedback_at_ms;
        ELSE
            kind := 'message.created';
            at_ms := NEW.timestamp_ms;
        END IF;
        conversation := NEW.conversation_id;
        snapshot := row_to_json(NEW)::text;
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

const POSTGRES_FEEDBACK_TRIGGER: &str = "CREATE TRIGGER webhook_feedback_created \
    AFTER UPDATE OF feedback_rating, feedback_comment, feedback_at_ms ON message_history \
    FOR EACH ROW WHEN (NEW.feedback_rating IS NOT NULL \
    AND (OLD.feedback_rating IS DISTINCT FROM NEW.feedback_rating \
    OR OLD.feedback_comment IS DISTINCT FROM NEW.feedback_comment \
    OR OLD.feedback_at_ms IS DISTINCT FROM NEW.feedback_at_ms)) \
    EXECUTE FUNCTION confab_webhook_outbox('feedback')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(POSTGRES_FUNCTION_WITH_FEEDBACK)
                    .await?;
                db.execute_unprepared(POSTGRES_FEEDBACK_TRIGGER).await?;
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
                db.execute_unprepared(
                    "DROP TRIGGER IF EXISTS webhook_feedback_created ON message_history",
                )
                .await?;
                let previous =
                    POSTGRES_FUNCTION.replacen("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1);
                db.execute_unprepared(&previous).await?;
            }
            _ => {
                for statement in sqlite_down() {
                    db.execute_unprepared(&statement).await?;
                }
            }
        }
        Ok(())
    }

    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
