//! confab's domain: the model of conversations between users and bots, the ports
//! through which it reaches storage, bots and subscribers, and the use cases that
//! enforce every rule of the contract.
//!
//! This crate knows no adapter library (no HTTP, no SQL, no WebSocket); `cargo xtask
//! tidy` checks that. Adapters depend on it, never the reverse.
//!
//! # Layout
//! - [`error`]: [`DomainError`](error::DomainError), [`ValidationError`](error::ValidationError)
//!   and the errors ports return.
//! - [`timestamp`], [`user`], [`bot`], [`conversation`], [`session`], [`message`]: the
//!   model, as parsed newtypes; a value of one of these types is always valid.
//! - [`event`], [`lease`], [`analytics`]: what happens in a conversation (as published
//!   on the event bus), who holds a conversation's reply work, analytics' queries and
//!   figures. These and the above are the model; they may refer to one another.
//! - [`ports`]: the traits adapters implement, the [`Ports`](ports::Ports) bundle and
//!   the helpers every layer above shares. It imports only the model.
//! - [`service`]: [`ConversationService`](service::ConversationService), a user's use
//!   cases: commands, history, following a conversation, batches and exports.
//! - [`reply`]: the pipeline that asks bot engines for replies, in order, once.
//! - [`admin`]: the administrator's use cases: [`AdminService`](admin::AdminService)
//!   (selections, exports, analytics, retention) and [`BotAdmin`](admin::BotAdmin).
//! - `testing` (feature `test-util`): fakes, mocks and the storage contract suite.
//!
//! The layers import downwards only: `admin` → `service` → `reply` → `ports` → the
//! model; `cargo xtask tidy` checks that from the `crate::` paths.

pub mod admin;
pub mod analytics;
pub mod bot;
pub mod conversation;
pub mod error;
pub mod event;
mod id;
pub mod lease;
pub mod message;
pub mod ports;
pub mod reply;
pub mod service;
pub mod session;
pub mod timestamp;
pub mod user;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;
