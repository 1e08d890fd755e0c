//! Fakes, mocks and the storage contract suite for tests (feature `test-util`).
//!
//! - [`memory`]: [`InMemoryStore`], every repository port in memory.
//! - [`fakes`]: [`SteppingClock`], [`FixedClock`], [`SequentialIds`],
//!   [`RecordingEventBus`], [`ScriptedEngine`] and [`StaticEngines`].
//! - [`fixtures`]: [`TestPorts`], [`in_memory_ports`] and helpers for bots and callers.
//! - [`contract`]: the storage contract suite every storage adapter runs through
//!   [`storage_contract_tests!`](crate::storage_contract_tests).
//! - [`analytics`]: a data set with handoffs and the summary every adapter must give
//!   for it.
//!
//! The mocks are mockall's, generated on the ports themselves:
//! `confab_domain::ports::MockConversationRepository` and its siblings.

// Test support: a failed expectation here is a failed test, so panicking is right.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod analytics;
pub mod contract;
pub mod fakes;
pub mod fixtures;
pub mod memory;

pub use fakes::{
    FixedClock, RecordingEventBus, ScriptedEngine, SequentialIds, StaticEngines, SteppingClock,
    TEST_START_MILLIS, test_start,
};
pub use fixtures::{
    TestPorts, bot_reply, in_memory_ports, seed_bot, seed_bot_in, start_conversation, test_bot,
    user, user_message,
};
pub use memory::InMemoryStore;
