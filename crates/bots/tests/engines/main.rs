//! The engines driven through the domain's real reply pipeline (on in-memory
//! storage) against fake bot services listening on 127.0.0.1.
//!
//! # Layout
//! - `support`: a conversation harness and helpers shared by the engine tests.
//! - `openai`: the `openai` engine against a fake chat completions server.
//! - `webhook`: the `webhook` engine against a fake bot service checking signatures.
//! - `script`: the `script` engine from a rules file on disk.

mod openai;
mod script;
mod support;
mod webhook;
