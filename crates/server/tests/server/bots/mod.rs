//! End-to-end tests of bots: the admin API, bots declared in the configuration,
//! real engines against fake bot services, reply order, and a server killed
//! mid-reply.
//!
//! # Layout
//! - `helpers`: the real binary and HTTP helpers for it and in-process servers.
//! - `fakes`: a fake webhook bot and a fake OpenAI-compatible model on 127.0.0.1.
//! - `admin`: `POST /bots`, `PATCH` and `DELETE /bots/{id}`.
//! - `config`: `[[bots]]` in `confab.toml` read by the real binary.
//! - `engines`: configured bots answering over REST and `/ws`, in order.
//! - `restart`: the binary killed between the user's message and the reply.

mod admin;
mod config;
mod engines;
mod fakes;
mod handoff;
mod helpers;
mod restart;
