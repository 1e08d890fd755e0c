//! The HTTP API as a client sees it, in one test binary: [`router`] driven request by
//! request with `tower::ServiceExt::oneshot`, over the real services on the domain's
//! in-memory store.
//!
//! # Layout
//! - `helpers`: `spawn_app`, the `AppState` of the real services on the in-memory
//!   store, and one helper per endpoint.
//! - `conversations`, `messages`, `history`: the conversations API.
//! - `errors`: bad input of every kind, answered with problem details.
//! - `auth`: bearer and guest tokens.
//! - `bots`, `meta`: the bots, health, routing and the OpenAPI document.
//! - `web`: the embedded chat page.
//!
//! [`router`]: confab_api_axum::router

// A test binary has no public API: its helpers are `pub` for its own modules, and a
// failed unwrap is a failed test.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod auth;
mod bots;
mod conversations;
mod errors;
mod helpers;
mod history;
mod messages;
mod meta;
mod web;
