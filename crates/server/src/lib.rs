//! The `confab` server: configuration, wiring of every adapter around the domain,
//! start-up and shutdown. This crate is the composition root and nothing else.
//!
//! # Layout
//! - [`config`]: the server's settings and their defaults.
//! - [`startup`]: [`App`](startup::App), which builds the server and runs it.
//! - `main.rs`: the command line.

pub mod config;
pub mod startup;

pub use config::Config;
pub use startup::App;
