//! Operations tests of the `confab` server: configuration precedence and errors, the
//! CLI, metrics, readiness through a database outage, limits, graceful shutdown of
//! the real binary under SIGTERM, the chat page's security headers and its files.

mod cli;
mod headers;
pub mod helpers;
mod limits;
mod observability;
mod readiness;
mod settings;
mod shutdown;
mod web;
