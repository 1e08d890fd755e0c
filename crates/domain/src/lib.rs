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
//! - [`event`]: what happens in a conversation, as published on the event bus.
//! - [`follow`]: replay from storage then live events, without gap or duplicate.
//! - [`ports`]: the traits adapters implement.
//! - [`service`]: [`ConversationService`](service::ConversationService), the use cases.
//! - [`batch`], [`admin`], [`analytics`]: management at scale: batch actions,
//!   streamed exports, analytics and retention ([`AdminService`](admin::AdminService)).
//! - [`bots`]: the bot registry's use cases ([`BotAdmin`](bots::BotAdmin)).
//! - [`reply`]: the pipeline that asks bot engines for replies, in order, once.
//! - [`lease`]: which instance answers a conversation when several share a database.
//! - `testing` (feature `test-util`): fakes, mocks and the storage contract suite.

pub mod admin;
pub mod analytics;
pub mod batch;
pub mod bot;
pub mod bots;
pub mod conversation;
pub mod error;
pub mod event;
pub mod follow;
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
