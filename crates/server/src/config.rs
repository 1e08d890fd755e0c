//! The server's settings. Defaults make `confab` run at once on one machine: an
//! embedded SQLite file in the working directory, guests allowed, loopback only.

use std::net::SocketAddr;
use std::time::Duration;

pub use confab_api_axum::ws::WsSettings;

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// The HS256 signing secret for tokens; when absent one is generated on first
    /// start and kept in the database, so restarts and several instances agree.
    pub jwt_secret: Option<String>,
    /// Whether `POST /auth/guest` hands out guest identities.
    pub guests_enabled: bool,
    /// How long a guest token lives.
    pub guest_token_ttl: Duration,
    /// How long a bot may take for one reply.
    pub reply_timeout: Duration,
    /// How long `?wait=true` waits for a reply.
    pub wait_timeout: Duration,
    /// How long shutdown waits for replies being produced.
    pub shutdown_grace: Duration,
    /// WebSocket limits and timers.
    pub ws: WsSettings,
    /// Archiving and deleting idle conversations; off by default.
    pub retention: RetentionSettings,
    /// Bots created or updated at start (`[[bots]]`), besides the built-in ones.
    pub bots: Vec<confab_bots::declaration::BotDeclaration>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://confab.db?mode=rwc".to_owned(),
            jwt_secret: None,
            guests_enabled: true,
            guest_token_ttl: Duration::from_secs(24 * 60 * 60),
            reply_timeout: Duration::from_secs(30),
            wait_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            ws: WsSettings::default(),
            retention: RetentionSettings::default(),
            bots: Vec::new(),
        }
    }
}

/// When idle conversations are archived and deleted (`[retention]` in `confab.toml`).
/// Both are off by default: confab never removes data unless told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Archive active conversations without a message for longer than this, e.g.
    /// `"30d"`.
    pub archive_after: Option<Duration>,
    /// Delete conversations (archived or not) without a message for longer than this,
    /// e.g. `"365d"`.
    pub delete_after: Option<Duration>,
    /// How often the policy is applied; the first sweep runs at start-up.
    pub sweep_interval: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            archive_after: None,
            delete_after: None,
            sweep_interval: Duration::from_secs(60 * 60),
        }
    }
}
