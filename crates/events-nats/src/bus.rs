//! [`NatsEventBus`]: the [`EventBus`] port over core NATS publish/subscribe, plus the
//! announcements of bot changes that keep every instance's bot cache fresh.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Subscriber};
use async_trait::async_trait;
use confab_domain::bot::BotId;
use confab_domain::conversation::ConversationId;
use confab_domain::error::EventBusError;
use confab_domain::event::ConversationEvent;
use confab_domain::ports::{EventBus, EventStream};
use futures::StreamExt;
use futures::stream::BoxStream;
use uuid::Uuid;

use crate::hub::{self, Hub};
use crate::metrics::{self, DropReason};
use crate::{NatsError, NatsSettings, wire};

/// Longest wait of a subscription on NATS, at each of its two steps: the client
/// queueing it (its queue fills only when a long outage piles up commands) and the
/// server acknowledging it (see [`NatsEventBus::subscribe`](EventBus::subscribe)),
/// which takes that long only when the connection fails meanwhile, and then the stream
/// ends at the reconnect anyway.
pub const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The event bus of a cluster: conversation events go through a NATS server to the
/// subscribers of every instance, this one included.
///
/// NATS only makes delivery fast; storage stays the source of truth. Every event that
/// the bus loses (NATS down, a subscriber too slow) ends the affected local streams,
/// and followers then catch up from storage by seq.
pub struct NatsEventBus {
    client: Client,
    hub: Arc<Hub>,
    prefix: String,
}

impl NatsEventBus {
    /// Connects to the NATS server at `settings.url`.
    ///
    /// An unreachable server is not an error: the client keeps trying in the
    /// background, [`is_connected`](Self::is_connected) is `false` meanwhile, and
    /// subscriptions taken before the connection is up end once it is (so that their
    /// followers catch up from storage).
    ///
    /// # Errors
    /// [`NatsError::InvalidSubjectPrefix`] for a prefix that is not a NATS subject,
    /// [`NatsError::Connect`] for a URL the client cannot parse.
    pub async fn connect(settings: NatsSettings) -> Result<Self, NatsError> {
        check_prefix(&settings.subject_prefix)?;
        metrics::describe();
        metrics::connected(false);
        let hub = Hub::new(settings.local_capacity);
        let events = Arc::downgrade(&hub);
        let client = ConnectOptions::new()
            .name("confab")
            .retry_on_initial_connect()
            // Reconnect for ever: an outage ends when NATS is back, and the client
            // closes only when the server stops (see `Hub::on_event`).
            .max_reconnects(None)
            .event_callback(move |event| {
                // A weak reference: the client outlives nothing it calls back into,
                // and dropping the bus drops its subscriptions.
                if let Some(hub) = events.upgrade() {
                    hub.on_event(&event);
                }
                std::future::ready(())
            })
            .connect(settings.url.as_str())
            .await
            .map_err(NatsError::Connect)?;
        Ok(Self {
            client,
            hub,
            prefix: settings.subject_prefix,
        })
    }

    /// Whether the client is connected to a NATS server now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }

    /// Waits until the client is connected and the bus has ended the streams that the
    /// outage (or the start) made incomplete; returns at once when that is so. For
    /// readiness checks and tests; bound it with a timeout.
    pub async fn wait_until_connected(&self) {
        self.wait_for_connection(true).await;
    }

    /// Waits until the client has lost its connection; returns at once when it has.
    /// Bound it with a timeout.
    pub async fn wait_until_disconnected(&self) {
        self.wait_for_connection(false).await;
    }

    async fn wait_for_connection(&self, up: bool) {
        let mut connection = self.hub.connection();
        loop {
            let told = *connection.borrow_and_update();
            if told == up && self.is_connected() == up {
                return;
            }
            if told == up {
                // The client raises its event an instant before it updates its state.
                tokio::task::yield_now().await;
            } else if connection.changed().await.is_err() {
                return;
            }
        }
    }

    /// How many conversations this instance holds a NATS subscription for: one per
    /// conversation with local subscribers, however many they are.
    pub fn followed_conversations(&self) -> usize {
        self.hub.followed()
    }

    /// Tells every instance, this one included, that a bot was created, changed or
    /// deleted.
    ///
    /// # Errors
    /// `EventBusError::Unavailable` when NATS is not connected or refuses the message;
    /// the announcement is then lost.
    pub async fn announce_bot_change(&self, bot: &BotId) -> Result<(), EventBusError> {
        let payload = wire::encode_bot_change(bot).map_err(NatsError::Encode)?;
        self.send(self.bots_subject(), payload).await
    }

    /// The ids of the bots announced by any instance from now on. The stream ends if
    /// the NATS client closes; announcements made while NATS is down are lost.
    ///
    /// # Errors
    /// `EventBusError::Unavailable` when the NATS client is closed.
    pub async fn bot_changes(&self) -> Result<BoxStream<'static, BotId>, EventBusError> {
        let subscriber = self.nats_subscribe(self.bots_subject()).await?;
        if *self.hub.connection().borrow() {
            self.confirm().await;
        }
        Ok(subscriber
            .filter_map(|message| {
                metrics::received();
                let bot = wire::decode_bot_change(&message.payload)
                    .inspect_err(|error| {
                        metrics::decode_failed();
                        tracing::warn!(%error, "dropped a bot change that did not decode");
                    })
                    .ok();
                std::future::ready(bot)
            })
            .boxed())
    }

    fn conversation_subject(&self, conversation: ConversationId) -> String {
        format!("{}.conversation.{}", self.prefix, conversation)
    }

    fn bots_subject(&self) -> String {
        format!("{}.bots", self.prefix)
    }

    /// Publishes unless NATS is down, in which case the caller must not wait: the
    /// client would queue the message until it reconnects.
    async fn send(&self, subject: String, payload: Vec<u8>) -> Result<(), EventBusError> {
        if !self.is_connected() {
            metrics::dropped(DropReason::Disconnected, 1);
            return Err(NatsError::Disconnected.into());
        }
        match self.client.publish(subject, payload.into()).await {
            Ok(()) => {
                metrics::published();
                Ok(())
            }
            Err(error) => {
                metrics::publish_failed();
                Err(NatsError::Publish(error).into())
            }
        }
    }

    /// Subscribes to `subject`; while disconnected, the client queues the subscription
    /// and sends it once connected.
    async fn nats_subscribe(&self, subject: String) -> Result<Subscriber, NatsError> {
        tokio::time::timeout(SUBSCRIBE_TIMEOUT, self.client.subscribe(subject))
            .await
            .map_err(|_| NatsError::Backlog)?
            .map_err(NatsError::Subscribe)
    }

    /// Waits until the server has handled every command this client sent before, so
    /// that a subscription just sent is in force: a message the client sends to itself
    /// comes back only after the server handled what came before it (the server reads a
    /// connection's commands in order). Gives up when the connection drops meanwhile
    /// (the reconnect ends the stream anyway) or after [`SUBSCRIBE_TIMEOUT`].
    async fn confirm(&self) -> bool {
        let round_trip = async {
            // Under the prefix, so that a deployment granting confab `{prefix}.>` alone
            // allows it.
            let subject = format!("{}.echo.{}", self.prefix, Uuid::now_v7().simple());
            let mut echo = self
                .client
                .subscribe(subject.clone())
                .await
                .map_err(NatsError::Subscribe)?;
            self.client
                .publish(subject, Vec::new().into())
                .await
                .map_err(NatsError::Publish)?;
            Ok::<_, NatsError>(echo.next().await.is_some())
        };
        let mut connection = self.hub.connection();
        tokio::select! {
            outcome = tokio::time::timeout(SUBSCRIBE_TIMEOUT, round_trip) => match outcome {
                Ok(Ok(echoed)) => echoed,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "could not confirm a NATS subscription");
                    false
                }
                Err(_) => {
                    tracing::warn!("the NATS server did not confirm a subscription in time");
                    false
                }
            },
            _ = connection.wait_for(|up| !up) => false,
        }
    }
}

#[async_trait]
impl EventBus for NatsEventBus {
    async fn publish(&self, event: ConversationEvent) -> Result<(), EventBusError> {
        let payload = wire::encode_event(&event, metrics::now_us()).map_err(|error| {
            metrics::publish_failed();
            NatsError::Encode(error)
        })?;
        self.send(self.conversation_subject(event.conversation_id), payload)
            .await
    }

    /// Subscribes, sharing the conversation's NATS subscription with the other local
    /// subscribers. While connected, returns once the NATS server has taken the
    /// subscription, so that an event any instance publishes afterwards is delivered.
    /// While disconnected, the subscription is queued and the stream ends when the
    /// connection is back (events published meanwhile are lost on the bus).
    async fn subscribe(&self, conversation: ConversationId) -> Result<EventStream, EventBusError> {
        let joined = match self.hub.join(conversation) {
            Some(joined) => joined,
            None => {
                let subscriber = self
                    .nats_subscribe(self.conversation_subject(conversation))
                    .await?;
                self.hub.open(conversation, subscriber)
            }
        };
        if joined.needs_confirmation && self.confirm().await {
            self.hub.confirmed(joined.entry());
        }
        Ok(hub::stream(joined))
    }
}

impl fmt::Debug for NatsEventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsEventBus")
            .field("prefix", &self.prefix)
            .field("connected", &self.is_connected())
            .field("followed_conversations", &self.followed_conversations())
            .finish_non_exhaustive()
    }
}

impl From<NatsError> for EventBusError {
    fn from(error: NatsError) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

/// Refuses a prefix that would not make valid, wildcard-free subjects.
fn check_prefix(prefix: &str) -> Result<(), NatsError> {
    let valid = !prefix.is_empty()
        && prefix.split('.').all(|token| {
            !token.is_empty()
                && !token
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '*' || c == '>')
        });
    if valid {
        Ok(())
    } else {
        Err(NatsError::InvalidSubjectPrefix(prefix.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_must_be_plain_subjects() {
        for good in ["confab", "confab.prod", "team-a.confab_1"] {
            assert!(check_prefix(good).is_ok(), "{good} refused");
        }
        for bad in [
            "", "confab.", ".confab", "a..b", "a b", "confab.*", "confab.>",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad:?} accepted");
        }
    }
}
