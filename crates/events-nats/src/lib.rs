//! The NATS event bus: conversation events shared by every confab instance of a
//! cluster, over core NATS publish/subscribe (no JetStream: storage is the source of
//! truth, the bus only makes delivery fast, and whatever it loses followers recover
//! from storage by seq).
//!
//! Subjects are `{prefix}.conversation.{uuid}` for a conversation's events,
//! `{prefix}.bots` for bot changes and `{prefix}.echo.{id}` for the round trips that
//! confirm new subscriptions. Each instance holds one NATS subscription per
//! conversation with local subscribers and fans it out to them; its own publishes
//! reach its own subscribers through NATS too, so that every subscriber sees one
//! publisher's events in the order NATS gave them.
//!
//! # Layout
//! - [`NatsEventBus`] (`bus.rs`): connecting, publishing, subscribing, bot changes.
//! - `hub.rs`: the per-conversation subscriptions and their local fan-out, and what
//!   disconnects, reconnects and slow-consumer reports do to them.
//! - `wire.rs`: the versioned JSON documents on the wire and their mapping to the model.
//! - [`metrics`]: the names of the bus's metrics.

mod bus;
mod hub;
pub mod metrics;
mod wire;

pub use bus::{NatsEventBus, SUBSCRIBE_TIMEOUT};

/// Where and how to reach NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsSettings {
    /// The server's URL, e.g. `nats://127.0.0.1:4222`; the client learns the other
    /// servers of a NATS cluster from it.
    pub url: String,
    /// The first tokens of every subject, so that several deployments can share one
    /// NATS server; `confab` by default.
    pub subject_prefix: String,
    /// How many events a local subscriber may fall behind before its stream ends (it
    /// then resumes from storage); 1024 by default.
    pub local_capacity: usize,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            subject_prefix: "confab".to_owned(),
            local_capacity: 1024,
        }
    }
}

/// What went wrong with NATS. Port methods return it as the source of
/// `EventBusError::Unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The client could not be set up, e.g. for a URL it cannot parse.
    #[error("cannot connect to NATS")]
    Connect(#[source] async_nats::ConnectError),
    /// The subject prefix is empty, has an empty token, whitespace or a wildcard.
    #[error("invalid NATS subject prefix {0:?}")]
    InvalidSubjectPrefix(String),
    /// The client is not connected now; nothing was sent.
    #[error("not connected to NATS")]
    Disconnected,
    /// The event could not be written as JSON.
    #[error("cannot encode the event")]
    Encode(#[source] serde_json::Error),
    /// The client refused to publish.
    #[error("NATS publish failed")]
    Publish(#[source] async_nats::PublishError),
    /// The client refused to subscribe.
    #[error("NATS subscribe failed")]
    Subscribe(#[source] async_nats::SubscribeError),
    /// The client's command queue stayed full for [`SUBSCRIBE_TIMEOUT`]: commands
    /// piled up during a long outage.
    #[error("the NATS client's queue is full")]
    Backlog,
}
