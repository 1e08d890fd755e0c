//! End-to-end tests of the `confab` server, in one test binary: a real server on
//! 127.0.0.1:0 over SQLite files and (when `CONFAB_TEST_POSTGRES_URL` is set)
//! PostgreSQL, driven by real HTTP, WebSocket and SSE clients, and the real binary
//! where a test needs a process of its own.
//!
//! # Layout
//! - `helpers`: the one harness of every module: `spawn_app` (on SQLite or
//!   PostgreSQL, with a configuration closure), the `on_every_backend!` macro, test
//!   databases, tokens and a WebSocket client. The `helpers` of `bots`, `management`
//!   and `ops` only add what their area needs.
//! - `rest`, `sse`, `websocket`: the conversations API, its events and `/ws`.
//! - `cluster`: several real processes on PostgreSQL and NATS: delivery across
//!   instances, kill -9 under load and mid-reply, a NATS outage.
//! - `faults`: the binary killed under load, a full disk under SQLite, PostgreSQL
//!   restarted under load: what was acknowledged is kept, once.
//! - `directline`: Direct Line 3.0: tokens, the stream, polling, errors, CORS.
//! - `bots`: the bot registry, engines against fake bot services, a restart mid-reply.
//! - `management`: batch actions, exports, analytics and retention.
//! - `ops`: configuration, the CLI, metrics, readiness, limits and shutdown.
//! - `ws_fuzz`: a property test sending arbitrary frames to `/ws` (10 000 cases).
//! - `webhooks`: outgoing webhooks to a receiver on 127.0.0.1, and every event
//!   arriving after a receiver outage and a kill -9.
//! - `authz`: authorization on every operation of the OpenAPI document, from a table
//!   that must cover it, and on `/ws`.

// A test binary has no public API: its helpers are `pub` for its own modules, and a
// failed unwrap is a failed test.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod authz;
mod bots;
mod cluster;
mod directline;
mod faults;
mod feedback;
mod handoff;
mod helpers;
mod management;
mod ops;
mod rest;
mod search;
mod sse;
mod webhooks;
mod websocket;
mod ws_fuzz;
