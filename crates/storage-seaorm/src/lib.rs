//! confab's storage adapter: the repository ports of `confab_domain::ports` on SeaORM,
//! for SQLite (one instance, the default) and PostgreSQL (several instances).
//!
//! The backend is chosen at run time by the URL's scheme. Every query is written once
//! and runs unchanged on both backends: with SeaORM's builders, except the analytics
//! aggregates of `maintenance` and the append rule of `append`, plain SQL that SQLite
//! and PostgreSQL read alike. Only PostgreSQL's group commit adds SQL of its own. The
//! schema comes from `confab_migrations`.
//!
//! # Layout
//! - [`connect`] and [`migrate`]: open a pool with the pragmas confab needs, bring the
//!   schema up to date.
//! - [`SeaOrmStore`]: implements `ConversationRepository`, `MessageRepository`,
//!   `SessionRepository` and `BotRepository`, and keeps the server's signing secret.
//! - `handoff`: who answers a conversation, moved with its notice and logged for
//!   analytics, and the agents' queue.
//! - `leases`: `ReplyLeases` on [`SeaOrmStore`]: which instance answers a
//!   conversation, as a lease on its row.
//! - `maintenance`: `ConversationMaintenance` on [`SeaOrmStore`]: selections across
//!   users and the analytics summary as SQL aggregates.
//! - `append`: the append rule (a guarded `UPDATE` of the conversation, then the
//!   message), written once for both ways of storing a message.
//! - `group_commit`: appends waiting at the same moment stored together: in one
//!   transaction by one writer on SQLite, in one statement per batch by a few writers
//!   on PostgreSQL. On SQLite the writer also has the WAL checkpointed in the
//!   background, so that the commit crossing SQLite's own threshold (after which the
//!   WAL starts over) finds little left to copy.
//! - `direct_reads`: on a SQLite file, the reads of every message and history page
//!   (a conversation by id, a page of messages) on rusqlite connections of their own,
//!   run on the asking tokio worker instead of behind sqlx's thread per connection.
//! - `search`: full-text search of messages, in FTS5 on SQLite and `tsvector` on
//!   PostgreSQL.
//! - `webhooks`: `WebhookRepository` and `WebhookOutbox` on [`SeaOrmStore`]: the
//!   subscriptions, and the deliveries that the migration's triggers record in the
//!   transaction of each change, claimed by one dispatcher at a time.
//! - `entity`: the tables as SeaORM entities, private to this crate.
//! - `rows`: explicit conversions between rows and domain values.
//! - `sql`: SQL written by hand (`#n#` parameters), rendered for the backend.
//! - `error`: the one mapping from database errors to `RepoError`.
//! - [`testing`] (feature `test-util`): throwaway migrated SQLite and PostgreSQL
//!   databases for tests of this and other crates.

mod append;
mod bot_cache;
mod bots;
mod connection;
mod conversations;
mod direct_reads;
mod entity;
mod error;
mod group_commit;
mod handoff;
mod leases;
mod maintenance;
mod messages;
mod rows;
mod search;
mod sessions;
mod sql;
mod store;
mod webhooks;

#[cfg(test)]
mod fixtures;
#[cfg(feature = "test-util")]
pub mod testing;

pub use connection::{connect, migrate};
pub use store::SeaOrmStore;

/// The connection pool type [`connect`] returns, re-exported so that callers need not
/// depend on SeaORM themselves.
pub use sea_orm::DatabaseConnection;
