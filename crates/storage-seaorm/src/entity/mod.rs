//! SeaORM entities: one module per table, rows exactly as the migrations define them.
//!
//! Entities are private to this crate: the rest of confab sees domain types only, and
//! `rows` converts between the two.

pub(crate) mod bot;
pub(crate) mod conversation;
pub(crate) mod handoff;
pub(crate) mod message;
pub(crate) mod server_setting;
pub(crate) mod session;
