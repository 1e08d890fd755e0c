//! The bus's metrics, recorded through the `metrics` facade (the server installs the
//! Prometheus recorder). The names are public so that the server and the docs cite
//! them rather than spell them again.

use std::time::{SystemTime, UNIX_EPOCH};

/// Counter: conversation events this instance handed to NATS.
pub const PUBLISHED_TOTAL: &str = "confab_bus_published_total";
/// Counter: publishes the NATS client refused while connected (closed client, payload
/// larger than the server takes, an event that could not be encoded).
pub const PUBLISH_FAILURES_TOTAL: &str = "confab_bus_publish_failures_total";
/// Counter: messages received from NATS, conversation events and bot changes, before
/// decoding.
pub const RECEIVED_TOTAL: &str = "confab_bus_received_total";
/// Counter: received messages that did not decode (corrupt, or written by a release
/// with another wire version) and were dropped.
pub const DECODE_FAILURES_TOTAL: &str = "confab_bus_decode_failures_total";
/// Counter: events lost on the bus, by `reason`: `disconnected` (published while NATS
/// was down), `slow_consumer` (one per report of messages dropped by the NATS client or
/// server), `lagged_subscriber` (events a local subscriber missed before its stream
/// ended). Followers recover every lost message from storage.
pub const DROPPED_TOTAL: &str = "confab_bus_dropped_total";
/// Counter: connections re-established after a disconnect.
pub const RECONNECTS_TOTAL: &str = "confab_bus_reconnects_total";
/// Gauge: 1 while connected to NATS, 0 otherwise.
pub const CONNECTED: &str = "confab_bus_connected";
/// Histogram: seconds from an event's publication on one instance to its receipt on
/// this one, as the two clocks tell it (negative skew counts as 0).
pub const DELIVERY_SECONDS: &str = "confab_bus_delivery_seconds";

/// Why an event was lost, the `reason` label of [`DROPPED_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    Disconnected,
    SlowConsumer,
    LaggedSubscriber,
}

impl DropReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::Disconnected => "disconnected",
            Self::SlowConsumer => "slow_consumer",
            Self::LaggedSubscriber => "lagged_subscriber",
        }
    }
}

/// Gives each metric its help text; describing again is harmless.
pub(crate) fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(PUBLISHED_TOTAL, "Conversation events published to NATS.");
    describe_counter!(
        PUBLISH_FAILURES_TOTAL,
        "Publishes the NATS client refused while connected."
    );
    describe_counter!(RECEIVED_TOTAL, "Messages received from NATS.");
    describe_counter!(
        DECODE_FAILURES_TOTAL,
        "Messages received from NATS that did not decode and were dropped."
    );
    describe_counter!(
        DROPPED_TOTAL,
        "Events lost on the bus, by reason; followers recover them from storage."
    );
    describe_counter!(
        RECONNECTS_TOTAL,
        "Reconnections to NATS after a disconnect."
    );
    describe_gauge!(CONNECTED, "1 while connected to NATS, 0 otherwise.");
    describe_histogram!(
        DELIVERY_SECONDS,
        Unit::Seconds,
        "Time from publication on an instance to receipt on this one."
    );
}

pub(crate) fn published() {
    ::metrics::counter!(PUBLISHED_TOTAL).increment(1);
}

pub(crate) fn publish_failed() {
    ::metrics::counter!(PUBLISH_FAILURES_TOTAL).increment(1);
}

pub(crate) fn received() {
    ::metrics::counter!(RECEIVED_TOTAL).increment(1);
}

pub(crate) fn decode_failed() {
    ::metrics::counter!(DECODE_FAILURES_TOTAL).increment(1);
}

pub(crate) fn dropped(reason: DropReason, events: u64) {
    ::metrics::counter!(DROPPED_TOTAL, "reason" => reason.as_str()).increment(events);
}

pub(crate) fn reconnected() {
    ::metrics::counter!(RECONNECTS_TOTAL).increment(1);
}

pub(crate) fn connected(up: bool) {
    ::metrics::gauge!(CONNECTED).set(if up { 1.0 } else { 0.0 });
}

/// Records the lag of an event published at `sent_at_us` and received now.
pub(crate) fn delivered(sent_at_us: u64) {
    let lag_us = now_us().saturating_sub(sent_at_us);
    // Exact up to 2^53 µs (285 years), far beyond any lag.
    #[allow(clippy::cast_precision_loss)]
    let seconds = lag_us as f64 / 1e6;
    ::metrics::histogram!(DELIVERY_SECONDS).record(seconds);
}

/// Microseconds since the Unix epoch on this instance's clock: the publication time the
/// envelope carries, compared on receipt with the receiver's clock.
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}
