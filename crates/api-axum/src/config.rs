//! The API layer's settings: [`ApiConfig`], the WebSocket limits and timers it
//! carries ([`WsSettings`]), who may frame the chat page ([`FrameAncestors`]) and the
//! Direct Line secrets ([`DirectLineSettings`]).
//! Plain data with defaults; the server fills them from its configuration file.

use std::time::Duration;

/// Settings of the API layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// WebSocket limits and timers.
    pub ws: WsSettings,
    /// Whether `POST /auth/guest` hands out guest tokens.
    pub guests_enabled: bool,
    /// How long a guest token lives.
    pub guest_token_ttl: Duration,
    /// How long `?wait=true` waits for a bot's replies.
    pub wait_timeout: Duration,
    /// Which pages may show the chat page in a frame.
    pub frame_ancestors: FrameAncestors,
    /// The Direct Line 3.0 routes under `/v3/directline`.
    pub directline: DirectLineSettings,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            ws: WsSettings::default(),
            guests_enabled: true,
            guest_token_ttl: Duration::from_secs(24 * 60 * 60),
            wait_timeout: Duration::from_secs(10),
            frame_ancestors: FrameAncestors::default(),
            directline: DirectLineSettings::default(),
        }
    }
}

/// The Direct Line 3.0 routes' settings: which secret opens which bot, and how long
/// the tokens they hand out live. With no secrets every Direct Line call is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectLineSettings {
    /// The secrets, one or more per bot.
    pub secrets: Vec<DirectLineSecret>,
    /// How long a conversation token lives (`expires_in`); clients refresh it halfway.
    pub token_ttl: Duration,
}

impl Default for DirectLineSettings {
    fn default() -> Self {
        Self {
            secrets: Vec::new(),
            token_ttl: Duration::from_secs(60 * 60),
        }
    }
}

/// A Direct Line secret and the bot it opens. Its `Debug` form hides the secret, so
/// that printing the settings never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct DirectLineSecret {
    /// The bot the secret's holder talks to.
    pub bot_id: confab_domain::bot::BotId,
    secret: String,
}

impl DirectLineSecret {
    /// Shortest secret accepted: a guessable secret would open every conversation of
    /// its bot.
    pub const MIN_CHARS: usize = 16;

    /// A secret for `bot_id`; the caller checks its length with [`Self::parse`] when
    /// it comes from outside.
    pub fn new(bot_id: confab_domain::bot::BotId, secret: impl Into<String>) -> Self {
        Self {
            bot_id,
            secret: secret.into(),
        }
    }

    /// A secret for `bot_id` read from configuration.
    ///
    /// # Errors
    /// A secret shorter than [`Self::MIN_CHARS`] or with characters that cannot
    /// travel in an `Authorization` header (whitespace, control characters).
    pub fn parse(bot_id: confab_domain::bot::BotId, secret: &str) -> Result<Self, String> {
        if secret.chars().count() < Self::MIN_CHARS {
            return Err(format!(
                "the Direct Line secret of bot `{bot_id}` is shorter than {} characters",
                Self::MIN_CHARS
            ));
        }
        if !secret.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "the Direct Line secret of bot `{bot_id}` must be printable ASCII without spaces"
            ));
        }
        Ok(Self::new(bot_id, secret))
    }

    /// The secret itself, for comparing with what a client presents.
    pub(crate) fn expose(&self) -> &str {
        &self.secret
    }

    /// Whether this is the secret `value`, for refusing one secret given to two bots.
    pub fn matches(&self, value: &str) -> bool {
        self.secret == value
    }
}

impl std::fmt::Debug for DirectLineSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectLineSecret")
            .field("bot_id", &self.bot_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The sources of the chat page's `frame-ancestors` directive: which pages may show
/// it in a frame. `'none'` by default; a site that embeds the chat lists its origin
/// (`https://shop.example.com`).
///
/// Each source is checked to be one CSP source expression, so that a value cannot
/// end the directive and add others to the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameAncestors(String);

impl FrameAncestors {
    /// The directive's value for `sources`: `'none'` when there are none.
    ///
    /// # Errors
    /// A source that is not a CSP source expression (`'self'`, `'none'` alone, a
    /// scheme such as `https:`, or `[scheme://]host[:port][/path]` with an optional
    /// `*.` before the host), described for the operator.
    pub fn parse<S: AsRef<str>>(sources: &[S]) -> Result<Self, String> {
        let sources: Vec<&str> = sources.iter().map(AsRef::as_ref).collect();
        if sources.is_empty() {
            return Ok(Self::default());
        }
        for source in &sources {
            let keyword = matches!(*source, "'self'" | "'none'");
            let plain = !source.is_empty()
                && source.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(
                            c,
                            '-' | '.' | '_' | '~' | ':' | '/' | '*' | '[' | ']' | '%' | '+'
                        )
                });
            if !keyword && !plain {
                return Err(format!(
                    "`{source}` is not a source: use 'self', 'none', a scheme such as https: or an origin such as https://shop.example.com"
                ));
            }
        }
        if sources.len() > 1 && sources.contains(&"'none'") {
            return Err("'none' cannot be listed with other sources".to_owned());
        }
        Ok(Self(sources.join(" ")))
    }

    /// The directive's value, e.g. `'none'` or `'self' https://shop.example.com`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for FrameAncestors {
    fn default() -> Self {
        Self("'none'".to_owned())
    }
}

/// Limits and timers of WebSocket connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsSettings {
    /// Frames queued for one socket before a forwarder waits.
    pub queue_capacity: usize,
    /// How long a forwarder waits for room in a full queue before the socket is closed
    /// with 1013 as too slow.
    pub send_timeout: Duration,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// How long a silent peer is kept.
    pub idle_timeout: Duration,
    /// Largest client frame handled; larger ones get a `payload_too_large` error.
    pub max_frame_bytes: usize,
    /// Invalid frames in a row after which the socket is closed with 1008.
    pub max_bad_frames: u32,
    /// How long the writer gets to send the close frame once the connection ends; a
    /// peer that does not read cannot take it, and its socket is dropped after this.
    pub close_grace: Duration,
    /// Characters of a frame's `ref` (or `client_message_id`) that its error frames
    /// echo; the rest is cut, so that a client cannot make every error frame large.
    pub max_ref_chars: usize,
}

impl Default for WsSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            send_timeout: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            max_frame_bytes: 64 * 1024,
            max_bad_frames: 10,
            close_grace: Duration::from_secs(2),
            max_ref_chars: 128,
        }
    }
}
