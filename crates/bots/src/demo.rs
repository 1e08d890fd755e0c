//! The `demo` script bot compiled into confab, so a server with no configuration
//! has a bot that shows what scripts can do.

/// The demo bot's rules (see `demo.toml` next to this file).
pub const DEMO_RULES: &str = include_str!("demo.toml");
