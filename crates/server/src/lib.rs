//! The `confab` server: configuration, wiring of every adapter around the domain,
//! start-up and shutdown. This crate is the composition root and nothing else.
//!
//! # Layout
//! - [`cluster`]: what changes with several instances: the NATS bus, reply leases,
//!   bot changes announced to the others.
//! - [`config`]: the server's settings, their defaults, and loading them from
//!   `confab.toml`, `CONFAB_*` variables and flags.
//! - [`metering`]: decorators of the event bus and bot engines that feed metrics.
//! - [`monitoring`]: the Prometheus recorder and the readiness check (database and
//!   bus).
//! - [`startup`]: [`App`](startup::App), which builds the server and runs it.
//! - `main.rs`: the command line.

pub mod cluster;
pub mod config;
pub mod metering;
pub mod monitoring;
pub mod startup;
pub mod webhooks;

pub use config::Config;
pub use startup::App;
