//! The command line: subcommands and the flags that override configuration keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use confab_server::config::LogFormat;
use confab_server::config::Sources;
use figment::value::Value;

/// A conversation server for chatbots.
///
/// Settings come from confab.toml (or the file named by --config / CONFAB_CONFIG),
/// then CONFAB_* environment variables, then these flags; see docs/operations.md.
#[derive(Debug, Parser)]
#[command(name = "confab", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
}

/// Flags every subcommand takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// The configuration file [default: confab.toml when it exists].
    #[arg(long, global = true, env = "CONFAB_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Address and port to listen on (key `listen`).
    #[arg(long, global = true, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Database URL, sqlite://FILE?mode=rwc or postgres://USER@HOST/DB (key `database_url`).
    #[arg(long, global = true, value_name = "URL")]
    database_url: Option<String>,
    /// Whether POST /auth/guest hands out guest tokens (key `guests_enabled`).
    #[arg(long, global = true, value_name = "BOOL")]
    guests: Option<bool>,
    /// Log lines as text or JSON (key `log.format`).
    #[arg(long, global = true, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

impl GlobalArgs {
    /// The file and the flag overrides, for [`confab_server::config::load`].
    pub(crate) fn sources(&self) -> Sources {
        let mut flags = Vec::new();
        if let Some(listen) = self.listen {
            flags.push(("listen", Value::from(listen.to_string())));
        }
        if let Some(url) = &self.database_url {
            flags.push(("database_url", Value::from(url.clone())));
        }
        if let Some(guests) = self.guests {
            flags.push(("guests_enabled", Value::from(guests)));
        }
        if let Some(format) = self.log_format {
            let name = match format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            };
            flags.push(("log.format", Value::from(name)));
        }
        Sources {
            file: self.config.clone(),
            flags,
        }
    }
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply, inspect or roll back database migrations.
    Migrate {
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Mint an access token signed with the configured (or stored) secret.
    Token(TokenArgs),
    /// Show the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print the OpenAPI document of the HTTP API.
    #[command(hide = true)]
    Openapi,
}

/// `confab migrate …`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum MigrateAction {
    /// Apply every pending migration (the default).
    Up,
    /// List migrations and whether each is applied.
    Status,
    /// Roll back the most recent migrations.
    Down {
        /// How many to roll back.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
}

/// `confab config …`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum ConfigAction {
    /// Print the effective configuration as TOML, secrets redacted.
    Print,
}

/// `confab token …`.
#[derive(Debug, Clone, Args)]
pub(crate) struct TokenArgs {
    /// The user id the token names (its `sub`).
    #[arg(long)]
    pub(crate) user: String,
    /// An operator token: every conversation, bot administration, analytics.
    #[arg(long, conflicts_with_all = ["bot", "agent"])]
    pub(crate) admin: bool,
    /// An agent's token: the handoff queue and the conversations they claim.
    #[arg(long, conflicts_with = "bot")]
    pub(crate) agent: bool,
    /// A token for the external bot with this id.
    #[arg(long, value_name = "BOT_ID")]
    pub(crate) bot: Option<String>,
    /// How long the token lives, e.g. 15m, 1h, 30d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub(crate) ttl: Duration,
}
