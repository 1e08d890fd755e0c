//! End-to-end tests of conversation management at scale: batch actions, streamed
//! exports, analytics and retention, on a real server over SQLite files and (when
//! `CONFAB_TEST_POSTGRES_URL` is set) PostgreSQL. Data that needs chosen timestamps
//! is seeded through the storage adapter on the server's own database.

mod analytics;
mod batch;
mod export;
mod helpers;
mod retention;
