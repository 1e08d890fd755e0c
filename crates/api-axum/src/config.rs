//! The API layer's settings: [`ApiConfig`], the WebSocket limits and timers it
//! carries ([`WsSettings`]), which sites may embed the chat ([`EmbedOrigins`]) and the
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
    /// Which sites may embed the chat.
    pub embed_origins: EmbedOrigins,
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
            embed_origins: EmbedOrigins::default(),
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

/// The sites that may embed the chat (the widget of `/widget.js`, or the page in a
/// frame of their own): the page's CSP `frame-ancestors` and, for the site's own
/// scripts, the API's CORS origins. None by default: no site can frame the page.
///
/// Each entry is `'self'` (the chat's own origin, for frames only) or an origin,
/// `http(s)://host[:port]`. An origin is all that both uses can take: CORS compares
/// the browser's `Origin` header exactly, so paths, wildcards and bare schemes are
/// refused rather than half honoured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedOrigins {
    frame_ancestors: String,
    cors: Vec<String>,
}

impl EmbedOrigins {
    /// Parses the configured entries; `'none'` alone means none, as in CSP.
    ///
    /// # Errors
    /// An entry that is neither `'self'` nor an `http(s)://host[:port]` origin, or
    /// `'none'` beside other entries, described for the operator.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let entries: Vec<&str> = entries.iter().map(AsRef::as_ref).collect();
        if entries == ["'none'"] {
            return Ok(Self::default());
        }
        let mut sources: Vec<String> = Vec::new();
        let mut cors: Vec<String> = Vec::new();
        for entry in entries {
            if entry == "'self'" {
                sources.push(entry.to_owned());
                continue;
            }
            if entry == "'none'" {
                return Err("'none' cannot be listed with other origins".to_owned());
            }
            let origin = parse_origin(entry).ok_or_else(|| {
                format!(
                    "`{entry}` is not an origin: use 'self' or scheme://host[:port], such as https://shop.example.com"
                )
            })?;
            if !cors.contains(&origin) {
                sources.push(origin.clone());
                cors.push(origin);
            }
        }
        if sources.is_empty() {
            return Ok(Self::default());
        }
        Ok(Self {
            frame_ancestors: sources.join(" "),
            cors,
        })
    }

    /// The value of the page's `frame-ancestors` directive, e.g. `'none'` or
    /// `'self' https://shop.example.com`.
    pub fn frame_ancestors(&self) -> &str {
        &self.frame_ancestors
    }

    /// The origins, without `'self'`, in the form browsers send in `Origin`: what
    /// CORS should allow besides its own list.
    pub fn cors_origins(&self) -> &[String] {
        &self.cors
    }
}

impl Default for EmbedOrigins {
    fn default() -> Self {
        Self {
            frame_ancestors: "'none'".to_owned(),
            cors: Vec::new(),
        }
    }
}

/// `entry` as a browser serialises an origin (lower-case scheme and host, no default
/// port, no trailing slash), or `None` when it is not an `http(s)` origin.
fn parse_origin(entry: &str) -> Option<String> {
    let lower = entry.to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    let default_port = match scheme {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    // A pasted address often ends with `/`; any other path is not an origin.
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    };
    let port = match port {
        None => None,
        Some(digits) if (1..=5).contains(&digits.len()) => Some(digits.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    if !host_ok || port == Some(0) {
        return None;
    }
    Some(match port {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(entries: &[&str]) -> Result<(String, Vec<String>), String> {
        EmbedOrigins::parse(entries).map(|origins| {
            (
                origins.frame_ancestors().to_owned(),
                origins.cors_origins().to_vec(),
            )
        })
    }

    #[test]
    fn no_origins_means_no_site_may_frame_the_page_and_none_is_allowed_by_cors() {
        assert_eq!(parsed(&[]), Ok(("'none'".to_owned(), vec![])));
        assert_eq!(parsed(&["'none'"]), Ok(("'none'".to_owned(), vec![])));
    }

    #[test]
    fn origins_feed_both_the_frame_ancestors_and_cors_and_self_only_the_frames() {
        assert_eq!(
            parsed(&[
                "'self'",
                "https://shop.example.com",
                "http://127.0.0.1:8081"
            ]),
            Ok((
                "'self' https://shop.example.com http://127.0.0.1:8081".to_owned(),
                vec![
                    "https://shop.example.com".to_owned(),
                    "http://127.0.0.1:8081".to_owned()
                ]
            ))
        );
    }

    #[test]
    fn origins_are_written_as_browsers_send_them() {
        assert_eq!(
            parsed(&[
                "HTTPS://Shop.Example.com:443/",
                "http://[::1]:8080",
                "https://shop.example.com"
            ]),
            Ok((
                "https://shop.example.com http://[::1]:8080".to_owned(),
                vec![
                    "https://shop.example.com".to_owned(),
                    "http://[::1]:8080".to_owned()
                ]
            ))
        );
    }

    #[test]
    fn what_is_not_an_origin_is_refused_with_the_entry_named() {
        for bad in [
            "shop.example.com",
            "https:",
            "https://",
            "https://*.example.com",
            "https://shop.example.com/path",
            "https://shop.example.com; script-src *",
            "ftp://shop.example.com",
            "https://user@shop.example.com",
            "https://shop.example.com:0",
            "https://shop.example.com:70000",
            "https://-shop.example.com",
            "'unsafe-inline'",
            "",
        ] {
            let error = parsed(&[bad]).expect_err(bad);
            assert!(error.contains(&format!("`{bad}`")), "{bad}: {error}");
        }
        assert!(parsed(&["'none'", "'self'"]).is_err());
    }
}
