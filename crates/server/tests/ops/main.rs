//! Operations tests of the `confab` server: configuration precedence and errors, the
//! CLI, metrics, readiness through a database outage, limits, and graceful shutdown
//! of the real binary under SIGTERM.

// A test binary has no public API: its helpers are `pub` for its own modules, and a
// failed unwrap is a failed test.
#![allow(unreachable_pub, clippy::unwrap_used)]

mod cli;
mod helpers;
mod limits;
mod observability;
mod readiness;
mod shutdown;
