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
//! - [`event`], [`lease`], [`analytics`], [`handoff`], [`search`], [`retry`]: what
//!   happens in a conversation (as published on the event bus), who holds a
//!   conversation's reply work, analytics' queries and figures, the rules of handing a
//!   conversation to a person, what a full-text search matches, and how long failed
//!   work waits before it tries again. These and the above are the model; they may refer to one another.
//! - [`ports`]: the traits adapters implement, the [`Ports`](ports::Ports) bundle and
//!   the helpers every layer above shares. It imports only the model.
//! - [`service`]: [`ConversationService`](service::ConversationService), a user's use
//!   cases: commands, history, following a conversation, batches and exports.
//! - [`reply`]: the pipeline that asks bot engines for replies, in order, once.
//! - [`admin`]: the administrator's use cases: [`AdminService`](admin::AdminService)
//!   (selections, exports, analytics, retention) and [`BotAdmin`](admin::BotAdmin).
//! - [`webhook`] (model) and [`webhooks`] (a layer beside `admin`): outgoing event
//!   webhooks, their subscriptions' use cases and the dispatcher that delivers them.
//! - `testing` (feature `test-util`): fakes, mocks and the storage contract suite.
//!
//! The layers import downwards only: `admin` → `service` → `reply` → `ports` → the
//! model; `cargo xtask tidy` checks that from the `crate::` paths.

//!
//! # Example
//!
//! A [`ConversationService`](service::ConversationService) on the in-memory fakes of
//! `testing` (feature `test-util`; without it the example compiles to nothing): a
//! user starts a conversation with the `echo` bot and waits for its reply.
//!
//! ```
//! # #[cfg(feature = "test-util")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::time::Duration;
//!
//! use confab_domain::bot::BotId;
//! use confab_domain::conversation::Metadata;
//! use confab_domain::reply::ReplySettings;
//! use confab_domain::service::{MessageDraft, StartConversation};
//! use confab_domain::testing::{ScriptedEngine, TestPorts, user};
//!
//! let fakes = TestPorts::with_engine(ScriptedEngine::echo());
//! fakes.seed_bot("echo");
//! let service = fakes.service(ReplySettings::default());
//! let ana = user("ana");
//! let started = service
//!     .start(&ana, StartConversation {
//!         bot_id: BotId::parse("echo")?,
//!         initial_message: Some(MessageDraft::parse("hello", Vec::new(), None)?),
//!         title: None,
//!         metadata: Metadata::default(),
//!     })
//!     .await?;
//! let hello = started.initial_message.expect("sent with the conversation");
//! let replies = service.await_replies(&hello, Duration::from_secs(5)).await?;
//! assert_eq!(replies[0].content.as_str(), "hello");
//! assert_eq!(replies[0].reply_to, Some(hello.id));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

pub mod admin;
pub mod analytics;
pub mod bot;
pub mod conversation;
pub mod error;
pub mod event;
pub mod handoff;
mod id;
pub mod lease;
pub mod message;
pub mod ports;
pub mod reply;
pub mod retry;
pub mod search;
pub mod service;
pub mod session;
pub mod timestamp;
pub mod user;
pub mod webhook;
pub mod webhooks;

#[cfg(any(test, feature = "test-util"))]
pub mod testing;
