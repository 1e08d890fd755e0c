//! confab's database schema as frozen migration files, applied in order by
//! [`Migrator`].
//!
//! A migration file is history: once released it never changes, and a schema change
//! is a new file named `mYYYYMMDD_NNNNNN_verb_noun.rs`. The number after the date
//! only orders the files of a day: `m20261125_000006` follows `000001` with no
//! migration missing in between (the history records no reason for the jump), and a
//! released file is never renamed to close the gap. Files use sea-query's
//! backend-neutral schema builder and never import the storage crate's entities, so
//! that they keep describing the schema as it was when they were written.
//!
//! # Conventions
//! - Times are `BIGINT` Unix milliseconds (`…_ms` columns), not SQL timestamp types:
//!   SQLite has no timestamp type and PostgreSQL's has microseconds, while the model
//!   carries milliseconds. Integers compare exactly on both backends, round-trip the
//!   model's `Timestamp` unchanged and make day buckets a division.
//! - Ids are `UUID` (PostgreSQL `uuid`, a 16-byte blob on SQLite); bot ids are text
//!   slugs.
//! - JSON (metadata, attachments, bot settings, session context) is stored as `TEXT`:
//!   it is opaque to every query, round-trips byte for byte on both backends, and
//!   PostgreSQL's `jsonb` would refuse `\u0000` escapes that clients may send.
//!
//! # Layout
//! - [`Migrator`]: every migration, oldest first.
//! - `m20261125_000001_create_tables`: bots, conversations, sessions, messages,
//!   server settings and their indexes.
//! - `m20261125_000006_create_management_indexes`: indexes for retention, selections
//!   by bot and analytics.
//! - `m20261203_000001_add_reply_leases`: the lease on a conversation's reply work,
//!   for several instances on one database.
//! - `m20261204_000001_add_handoff`: who answers a conversation (bot, queue or
//!   agent) and the log of handoffs for analytics.
//! - `m20261204_000002_add_message_search`: full-text search of message contents
//!   (FTS5 on SQLite, a GIN `tsvector` index on PostgreSQL).
//! - `m20261204_000003_add_webhooks`: outgoing webhooks' subscriptions and the outbox
//!   of their deliveries, filled by triggers in the transaction of each change.
//! - `m20261204_000004_add_feedback`: users' ratings of bot replies, on the message.
//! - `m20261204_000005_add_feedback_webhooks`: `feedback.created` webhooks.
//! - `m20261204_000006_drop_activity_indexes`: two of `m20261125_000006`'s indexes on
//!   `conversations`, which every message rewrote, go.
//! - `m20261205_000001_switch_message_webhook_trigger`: PostgreSQL's `message.created`
//!   outbox trigger is enabled only while a webhook is registered.
//! - `m20261206_000001_swap_sqlite_message_time_index`: SQLite indexes all messages'
//!   times instead of each conversation's; a conversation's messages around a time
//!   are found by seq.
//! - `m20261206_000002_slim_conversation_list_indexes`: the list's filtered indexes
//!   leave out `last_activity_ms`, which every message moves.

/// Re-exported so that callers can run [`Migrator`] without naming sea-orm-migration.
pub use sea_orm_migration::MigratorTrait;
use sea_orm_migration::{MigrationTrait, async_trait};

mod m20261125_000001_create_tables;
mod m20261125_000006_create_management_indexes;
mod m20261203_000001_add_reply_leases;
mod m20261204_000001_add_handoff;
mod m20261204_000002_add_message_search;
mod m20261204_000003_add_webhooks;
mod m20261204_000004_add_feedback;
mod m20261204_000005_add_feedback_webhooks;
mod m20261204_000006_drop_activity_indexes;
mod m20261205_000001_switch_message_webhook_trigger;
mod m20261206_000001_swap_sqlite_message_time_index;
mod m20261206_000002_slim_conversation_list_indexes;
mod m20261206_000003_slim_message_indexes;

/// Applies confab's migrations; `Migrator::up(&db, None)` brings a database to the
/// current schema.
#[derive(Debug, Clone, Copy, Default)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261125_000006_create_management_indexes::Migration),
            Box::new(m20261203_000001_add_reply_leases::Migration),
            Box::new(m20261204_000001_add_handoff::Migration),
            Box::new(m20261204_000002_add_message_search::Migration),
            Box::new(m20261204_000003_add_webhooks::Migration),
            Box::new(m20261204_000004_add_feedback::Migration),
            Box::new(m20261204_000005_add_feedback_webhooks::Migration),
            Box::new(m20261204_000006_drop_activity_indexes::Migration),
            Box::new(m20261205_000001_switch_message_webhook_trigger::Migration),
            Box::new(m20261206_000001_swap_sqlite_message_time_index::Migration),
            Box::new(m20261206_000002_slim_conversation_list_indexes::Migration),
            Box::new(m20261206_000003_slim_message_indexes::Migration),
        ]
    }
}
