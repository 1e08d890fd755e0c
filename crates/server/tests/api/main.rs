//! End-to-end tests of the `confab` server: a real server on 127.0.0.1:0 over SQLite
//! files and (when `CONFAB_TEST_POSTGRES_URL` is set) PostgreSQL, driven by real HTTP,
//! WebSocket and SSE clients.

// A test binary has no public API: its helpers are `pub` for its own modules, and a
// failed unwrap is a failed test.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod helpers;
mod rest;
mod sse;
mod websocket;
