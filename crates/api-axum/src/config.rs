//! The API layer's settings: [`ApiConfig`] and the WebSocket limits and timers it
//! carries ([`WsSettings`]). Plain data with defaults; the server fills them from its
//! configuration file.

use std::time::Duration;

/// Settings of the API layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiConfig {
    /// WebSocket limits and timers.
    pub ws: WsSettings,
    /// Whether `POST /auth/guest` hands out guest tokens.
    pub guests_enabled: bool,
    /// How long a guest token lives.
    pub guest_token_ttl: Duration,
    /// How long `?wait=true` waits for a bot's replies.
    pub wait_timeout: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            ws: WsSettings::default(),
            guests_enabled: true,
            guest_token_ttl: Duration::from_secs(24 * 60 * 60),
            wait_timeout: Duration::from_secs(10),
        }
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
