//! Operations tests of the `confab` server: configuration precedence and errors, the
//! CLI, metrics, readiness through a database outage, limits, and graceful shutdown
//! of the real binary under SIGTERM.

mod cli;
pub mod helpers;
mod limits;
mod observability;
mod readiness;
mod settings;
mod shutdown;
