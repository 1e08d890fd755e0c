//! The server's settings. Defaults make `confab` run at once on one machine: an
//! embedded SQLite file in the working directory, guests allowed, loopback only.
//!
//! [`Config`] is the one typed source of settings: [`App::build`](crate::App::build)
//! takes it, tests construct it directly, and [`load`] fills it from
//! `confab.toml`, `CONFAB_*` environment variables and flags. Its serde shape *is* the
//! file format: every field is a key, nested structs are tables, durations are
//! humantime strings ("30s", "24h"), and unknown keys are refused.

mod sources;

pub use sources::{DEFAULT_CONFIG_FILE, ENV_PREFIX, Sources, load, print_redacted, redact_url};

use std::net::SocketAddr;

use anyhow::Context as _;
use std::time::Duration;

pub use confab_api_axum::WsSettings;
use serde::{Deserialize, Serialize};

/// Everything the server needs to start.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// The HS256 signing secret for tokens; when absent one is generated on first
    /// start and kept in the database, so restarts and several instances agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<String>,
    /// Whether `POST /auth/guest` hands out guest identities.
    pub guests_enabled: bool,
    /// How long a guest token lives.
    #[serde(with = "humantime_serde")]
    pub guest_token_ttl: Duration,
    /// How long a bot may take for one reply.
    #[serde(with = "humantime_serde")]
    pub reply_timeout: Duration,
    /// How long a claim on a conversation's reply work lasts unless its instance
    /// renews it: after an instance dies, another takes its unanswered messages over
    /// once their lease runs out. Only matters with several instances (`events.url`).
    #[serde(with = "humantime_serde")]
    pub reply_lease: Duration,
    /// How long `?wait=true` waits for a reply.
    #[serde(with = "humantime_serde")]
    pub wait_timeout: Duration,
    /// How long shutdown waits for in-flight requests, then for replies being
    /// produced (each gets the full period).
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// WebSocket limits and timers.
    #[serde(with = "WsSettingsDef")]
    pub ws: WsSettings,
    /// Archiving and deleting idle conversations; off by default.
    pub retention: RetentionSettings,
    /// Sending outgoing webhooks (`[webhooks]`).
    pub webhooks: WebhookSettings,
    /// Request limits: rate, sockets, time, origins.
    pub limits: Limits,
    /// Logging.
    pub log: LogSettings,
    /// The event bus between instances.
    pub events: EventSettings,
    /// The chat page at `/`.
    pub web: WebSettings,
    /// Direct Line 3.0 for Bot Framework clients (`[directline]`).
    pub directline: DirectLineConfig,
    /// Bots created or updated at start (`[[bots]]`), besides the built-in ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
            reply_lease: Duration::from_secs(10),
            wait_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(10),
            ws: WsSettings::default(),
            retention: RetentionSettings::default(),
            webhooks: WebhookSettings::default(),
            limits: Limits::default(),
            log: LogSettings::default(),
            events: EventSettings::default(),
            web: WebSettings::default(),
            directline: DirectLineConfig::default(),
            bots: Vec::new(),
        }
    }
}

/// Limits that protect the server from one busy client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Messages one user may send per minute, sustained, over REST and WebSocket
    /// together; 0 turns the limit off.
    pub messages_per_minute: u32,
    /// Messages one user may send in a burst above the sustained rate.
    pub message_burst: u32,
    /// WebSockets one user may hold open at once; 0 means no limit.
    pub sockets_per_user: u32,
    /// How long a request may take to produce its response head; 0s turns it off.
    /// Streams (SSE, exports) and WebSockets are not cut once they have started.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Origins allowed to call the API from a browser page (CORS), e.g.
    /// `https://chat.example.com`; `*` allows any. None by default.
    pub cors_origins: Vec<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // Off unless configured: a sensible rate depends on the bots and clients
            // (a load test, a bridge relaying a whole team, a kiosk), and a wrong guess
            // would refuse legitimate traffic. confab.example.toml suggests values.
            messages_per_minute: 0,
            message_burst: 20,
            sockets_per_user: 16,
            request_timeout: Duration::from_secs(30),
            cors_origins: Vec::new(),
        }
    }
}

/// The event bus that carries messages, deltas, typing and status between instances
/// (`[events]` in `confab.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// `nats://host:port` to share events with the other instances through NATS;
    /// absent, events stay in this process (one instance). Needs PostgreSQL: a
    /// SQLite database serves one instance only, so the pair is refused at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The chat page served at `/` (`[web]` in `confab.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "WebSettingsFile")]
pub struct WebSettings {
    /// Sites that may embed the chat (the widget of `/widget.js`, or the page in a
    /// frame): `'self'` or origins such as `https://shop.example.com`. They become the
    /// page's CSP `frame-ancestors` and join `limits.cors_origins`. None (the
    /// default): no site can frame the page. `frame_ancestors`, its older name, is
    /// still read.
    pub embed_origins: Vec<String>,
}

/// What `[web]` may say: [`WebSettings`] and `frame_ancestors`, the older name of
/// `embed_origins`. Not a serde alias: the defaults always name `embed_origins`, so
/// an old file would name the field twice; the old entries join the new ones.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WebSettingsFile {
    embed_origins: Vec<String>,
    frame_ancestors: Vec<String>,
}

impl From<WebSettingsFile> for WebSettings {
    fn from(file: WebSettingsFile) -> Self {
        let mut embed_origins = file.embed_origins;
        for origin in file.frame_ancestors {
            if !embed_origins.contains(&origin) {
                embed_origins.push(origin);
            }
        }
        Self { embed_origins }
    }
}

/// Direct Line 3.0 under `/v3/directline` (`[directline]` in `confab.toml`): which
/// secrets let Bot Framework clients in, and to which bot. The file names the
/// environment variable that holds each secret, never the secret, so that neither
/// the file nor `confab config print` shows one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectLineConfig {
    /// How long a conversation token lives (`expires_in`).
    #[serde(with = "humantime_serde")]
    pub token_ttl: Duration,
    /// `[[directline.secrets]]`: one table per secret.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<DirectLineSecretSource>,
}

impl Default for DirectLineConfig {
    fn default() -> Self {
        let api = confab_api_axum::DirectLineSettings::default();
        Self {
            token_ttl: api.token_ttl,
            secrets: Vec::new(),
        }
    }
}

/// One Direct Line secret: the bot it opens, and where the secret is kept: an
/// environment variable (`secret_env`) or a file (`secret_file`, as container
/// platforms mount secrets), exactly one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectLineSecretSource {
    /// The bot whose conversations the secret opens.
    pub bot_id: String,
    /// The environment variable that holds the secret (at least 16 printable ASCII
    /// characters). Not a `CONFAB_` name: those are configuration keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// A file that holds the secret; a trailing newline is not part of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<std::path::PathBuf>,
}

impl DirectLineConfig {
    /// The API's settings, each secret read from its variable (with `read_env`) or
    /// its file.
    ///
    /// # Errors
    /// A bot id that is not valid; a source that names no place or two, a variable
    /// that is a `CONFAB_` key or unset, a file that cannot be read; a secret too
    /// short or with spaces; one secret given to two bots.
    pub fn resolve(
        &self,
        read_env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<confab_api_axum::DirectLineSettings> {
        let mut secrets: Vec<confab_api_axum::DirectLineSecret> = Vec::new();
        for source in &self.secrets {
            let bot_id = confab_domain::bot::BotId::parse(&source.bot_id).map_err(|_| {
                anyhow::anyhow!(
                    "invalid configuration key `directline.secrets`: `{}` is not a valid bot id",
                    source.bot_id
                )
            })?;
            let (value, place) = source.read(&bot_id, &read_env)?;
            if let Some(other) = secrets.iter().find(|known| known.matches(&value)) {
                anyhow::bail!(
                    "the Direct Line secrets of bots `{}` and `{bot_id}` are the same; give each its own",
                    other.bot_id
                );
            }
            secrets.push(
                confab_api_axum::DirectLineSecret::parse(bot_id, &value)
                    .map_err(|problem| anyhow::anyhow!("{problem} ({place})"))?,
            );
        }
        Ok(confab_api_axum::DirectLineSettings {
            secrets,
            token_ttl: self.token_ttl,
        })
    }
}

impl DirectLineSecretSource {
    /// The secret and where it came from, for messages.
    fn read(
        &self,
        bot_id: &confab_domain::bot::BotId,
        read_env: &impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<(String, String)> {
        match (&self.secret_env, &self.secret_file) {
            (Some(name), None) => {
                let name = name.trim();
                anyhow::ensure!(
                    !name.is_empty() && !name.to_ascii_uppercase().starts_with(sources::ENV_PREFIX),
                    "invalid configuration key `directline.secrets`: secret_env `{name}` must name an environment variable outside {}*, which are configuration keys",
                    sources::ENV_PREFIX
                );
                let value = read_env(name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "the Direct Line secret of bot `{bot_id}` is missing: set the environment variable {name}"
                    )
                })?;
                Ok((value, format!("variable {name}")))
            }
            (None, Some(path)) => {
                let value = std::fs::read_to_string(path).with_context(|| {
                    format!(
                        "cannot read the Direct Line secret of bot `{bot_id}` from {}",
                        path.display()
                    )
                })?;
                Ok((
                    value.trim_end_matches(['\r', '\n']).to_owned(),
                    format!("file {}", path.display()),
                ))
            }
            _ => anyhow::bail!(
                "invalid configuration key `directline.secrets`: the secret of bot `{bot_id}` needs exactly one of secret_env and secret_file"
            ),
        }
    }
}

/// How the server logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` for people at a terminal, `json` (one object a line) for collectors.
    pub format: LogFormat,
    /// Which events to log, as a `tracing` filter, e.g. `info` or
    /// `info,confab_api_axum=debug`.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            filter: "info".to_owned(),
        }
    }
}

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// The file shape of [`WsSettings`], which lives in the API crate without serde.
#[derive(Serialize, Deserialize)]
#[serde(remote = "WsSettings", deny_unknown_fields)]
struct WsSettingsDef {
    queue_capacity: usize,
    #[serde(with = "humantime_serde")]
    send_timeout: Duration,
    #[serde(with = "humantime_serde")]
    ping_interval: Duration,
    #[serde(with = "humantime_serde")]
    idle_timeout: Duration,
    max_frame_bytes: usize,
    max_bad_frames: u32,
    #[serde(with = "humantime_serde")]
    close_grace: Duration,
    max_ref_chars: usize,
}

/// When idle conversations are archived and deleted (`[retention]` in `confab.toml`).
/// Both are off by default: confab never removes data unless told to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Archive active conversations without a message for longer than this, e.g.
    /// `"30d"`.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub archive_after: Option<Duration>,
    /// Delete conversations (archived or not) without a message for longer than this,
    /// e.g. `"365d"`.
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub delete_after: Option<Duration>,
    /// How often the policy is applied; the first sweep runs at start-up.
    #[serde(with = "humantime_serde")]
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

/// How outgoing webhooks are sent (`[webhooks]` in `confab.toml`). Subscriptions
/// themselves are data, managed through `/webhooks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// The wait after a first failed attempt; it doubles with each further failure.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// How long one attempt may take, connecting included.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Attempts in flight at once, per instance.
    pub concurrency: u32,
    /// How often to look for deliveries due when there was nothing to send.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long an instance holds a delivery it is sending: longer than `timeout`;
    /// after a crash, its deliveries are sent again once this runs out.
    #[serde(with = "humantime_serde")]
    pub claim: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        let dispatch = confab_domain::webhooks::DispatchSettings::default();
        Self {
            max_attempts: dispatch.retry.max_attempts,
            initial_backoff: dispatch.retry.initial_backoff,
            max_backoff: dispatch.retry.max_backoff,
            timeout: Duration::from_secs(10),
            concurrency: dispatch.concurrency,
            poll_interval: dispatch.poll_interval,
            claim: dispatch.claim,
        }
    }
}

impl WebhookSettings {
    /// The dispatcher's settings.
    ///
    /// # Errors
    /// Settings that cannot work, naming the key.
    pub fn dispatch(&self) -> anyhow::Result<confab_domain::webhooks::DispatchSettings> {
        if self.max_attempts == 0 {
            anyhow::bail!("invalid configuration key `webhooks.max_attempts`: must be at least 1");
        }
        if self.concurrency == 0 {
            anyhow::bail!("invalid configuration key `webhooks.concurrency`: must be at least 1");
        }
        if self.timeout.is_zero() || self.poll_interval.is_zero() {
            anyhow::bail!(
                "invalid configuration keys `webhooks.timeout` and `webhooks.poll_interval`: \
                 must be more than 0s"
            );
        }
        if self.claim <= self.timeout {
            anyhow::bail!(
                "invalid configuration key `webhooks.claim`: must be longer than \
                 `webhooks.timeout`, or another instance may send a delivery still in flight"
            );
        }
        if self.max_backoff < self.initial_backoff {
            anyhow::bail!(
                "invalid configuration key `webhooks.max_backoff`: must be at least \
                 `webhooks.initial_backoff`"
            );
        }
        Ok(confab_domain::webhooks::DispatchSettings {
            retry: confab_domain::webhook::RetryPolicy {
                max_attempts: self.max_attempts,
                initial_backoff: self.initial_backoff,
                max_backoff: self.max_backoff,
            },
            concurrency: self.concurrency,
            claim: self.claim,
            poll_interval: self.poll_interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(bot: &str, env: &str) -> DirectLineSecretSource {
        DirectLineSecretSource {
            bot_id: bot.to_owned(),
            secret_env: Some(env.to_owned()),
            secret_file: None,
        }
    }

    fn resolve(
        secrets: Vec<DirectLineSecretSource>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<confab_api_axum::DirectLineSettings> {
        DirectLineConfig {
            secrets,
            ..DirectLineConfig::default()
        }
        .resolve(|name| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn direct_line_secrets_are_read_from_their_variables() {
        let settings = resolve(
            vec![source("echo", "DL_ECHO"), source("demo", "DL_DEMO")],
            &[
                ("DL_ECHO", "echo-secret-0123456789"),
                ("DL_DEMO", "demo-secret-0123456789"),
            ],
        )
        .expect("resolved");
        let bots: Vec<&str> = settings.secrets.iter().map(|s| s.bot_id.as_str()).collect();
        assert_eq!(bots, ["echo", "demo"]);
        assert!(settings.secrets[1].matches("demo-secret-0123456789"));
        assert!(
            !format!("{settings:?}").contains("demo-secret"),
            "Debug shows the secret"
        );
    }

    #[test]
    fn unusable_direct_line_secrets_stop_the_start_with_the_reason() {
        let long = "a-long-enough-secret-value";
        let refused = [
            (vec![source("echo", "CONFAB_DL")], "outside CONFAB_"),
            (
                vec![source("echo", "UNSET")],
                "set the environment variable UNSET",
            ),
            (vec![source("not a bot", "DL")], "not a valid bot id"),
            (
                vec![source("echo", "DL"), source("demo", "DL")],
                "are the same",
            ),
            (
                vec![DirectLineSecretSource {
                    secret_env: None,
                    ..source("echo", "DL")
                }],
                "exactly one of secret_env and secret_file",
            ),
        ];
        for (secrets, reason) in refused {
            let error = resolve(secrets, &[("DL", long), ("CONFAB_DL", long)])
                .expect_err("refused")
                .to_string();
            assert!(error.contains(reason), "{error}");
        }
        let short = resolve(vec![source("echo", "DL")], &[("DL", "short")])
            .expect_err("refused")
            .to_string();
        assert!(short.contains("shorter than 16"), "{short}");
        let spaced = resolve(
            vec![source("echo", "DL")],
            &[("DL", "with spaces in the secret")],
        )
        .expect_err("refused")
        .to_string();
        assert!(spaced.contains("without spaces"), "{spaced}");
    }

    #[test]
    fn a_direct_line_secret_file_loses_its_trailing_newline() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "file-secret-0123456789\n").expect("written");
        let settings = resolve(
            vec![DirectLineSecretSource {
                bot_id: "echo".to_owned(),
                secret_env: None,
                secret_file: Some(path),
            }],
            &[],
        )
        .expect("resolved");
        assert!(settings.secrets[0].matches("file-secret-0123456789"));
    }
}
