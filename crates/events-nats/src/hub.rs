//! The local side of the bus: one NATS subscription per followed conversation, decoded
//! once and fanned out to this instance's subscribers through a broadcast channel (as
//! one [`SharedEvent`] that they all hold, not a copy each), and what the connection's
//! events do to those subscriptions.
//!
//! Every local stream ends, never skips: when its subscriber lags, when the last
//! NATS connection came back after an outage (events published meanwhile are gone),
//! and when NATS reports dropped messages. The follower then re-subscribes and catches
//! up from storage by seq, which is why ending is always safe and a gap never is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use async_nats::{Event, Subscriber};
use confab_domain::conversation::ConversationId;
use confab_domain::event::{ConversationEvent, SharedEvent};
use confab_domain::ports::EventStream;
use futures::StreamExt;
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

use crate::metrics::{self, DropReason};
use crate::wire;

/// The conversations this instance follows on NATS, and the connection as the client's
/// events last told it.
pub(crate) struct Hub {
    capacity: usize,
    /// A std mutex: held only for map operations, never across an await, and taken from
    /// `Drop` and the client's event callback, which cannot await.
    state: Mutex<HubState>,
    next_id: AtomicU64,
    connection: watch::Sender<bool>,
}

struct HubState {
    entries: HashMap<ConversationId, Entry>,
    /// Whether the client's `Connected` event for the current connection was handled.
    /// Kept under the same lock as `entries` so that an entry opened before that event
    /// is certain to be ended by it.
    connected: bool,
    ever_connected: bool,
}

/// One conversation followed on NATS.
struct Entry {
    /// Tells this entry from a later one of the same conversation, so that a stale
    /// release or forwarder never removes its successor.
    id: u64,
    sender: broadcast::Sender<SharedEvent>,
    /// Whether the server is known to have taken the NATS subscription.
    confirmed: bool,
    forwarder: AbortHandle,
}

impl Drop for Entry {
    fn drop(&mut self) {
        // The forwarder owns the NATS subscription and a sender: stopping it
        // unsubscribes and, with the map's sender gone, ends every local stream.
        self.forwarder.abort();
    }
}

/// A local subscriber's place in an entry.
pub(crate) struct Joined {
    receiver: broadcast::Receiver<SharedEvent>,
    ticket: Ticket,
    /// Whether the subscriber must make sure the server took the NATS subscription
    /// before it relies on the stream.
    pub(crate) needs_confirmation: bool,
}

impl Joined {
    /// The entry this subscriber belongs to, for [`Hub::confirmed`].
    pub(crate) fn entry(&self) -> (ConversationId, u64) {
        (self.ticket.conversation, self.ticket.id)
    }
}

/// Releases a local subscriber's interest when its stream goes away.
struct Ticket {
    hub: Weak<Hub>,
    conversation: ConversationId,
    id: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.release(self.conversation, self.id);
        }
    }
}

/// A local stream's state. Fields drop in order: the receiver goes before the ticket
/// counts the receivers left.
struct Local {
    receiver: broadcast::Receiver<SharedEvent>,
    _ticket: Ticket,
}

impl Hub {
    /// A hub whose subscribers may fall `capacity` events behind.
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            state: Mutex::new(HubState {
                entries: HashMap::new(),
                connected: false,
                ever_connected: false,
            }),
            next_id: AtomicU64::new(0),
            connection: watch::Sender::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the entry of a conversation already followed on NATS.
    pub(crate) fn join(self: &Arc<Self>, conversation: ConversationId) -> Option<Joined> {
        let state = self.lock();
        let entry = state.entries.get(&conversation)?;
        Some(self.joined(&state, conversation, entry))
    }

    /// Follows a conversation through `subscriber`, or joins the entry another caller
    /// opened meanwhile (dropping `subscriber`, which unsubscribes it).
    pub(crate) fn open(
        self: &Arc<Self>,
        conversation: ConversationId,
        subscriber: Subscriber,
    ) -> Joined {
        let mut state = self.lock();
        if let Some(entry) = state.entries.get(&conversation) {
            return self.joined(&state, conversation, entry);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let sender = broadcast::Sender::new(self.capacity);
        let forwarder = tokio::spawn(forward(
            Arc::downgrade(self),
            conversation,
            id,
            subscriber,
            sender.clone(),
        ))
        .abort_handle();
        let entry = Entry {
            id,
            sender,
            confirmed: false,
            forwarder,
        };
        let joined = self.joined(&state, conversation, &entry);
        state.entries.insert(conversation, entry);
        joined
    }

    fn joined(
        self: &Arc<Self>,
        state: &HubState,
        conversation: ConversationId,
        entry: &Entry,
    ) -> Joined {
        Joined {
            receiver: entry.sender.subscribe(),
            ticket: Ticket {
                hub: Arc::downgrade(self),
                conversation,
                id: entry.id,
            },
            // While the connection is not (yet) up, the Connected event to come ends
            // this entry, so there is nothing to confirm.
            needs_confirmation: state.connected && !entry.confirmed,
        }
    }

    /// Records that the server took the NATS subscription of an entry.
    pub(crate) fn confirmed(&self, (conversation, id): (ConversationId, u64)) {
        if let Some(entry) = self.lock().entries.get_mut(&conversation)
            && entry.id == id
        {
            entry.confirmed = true;
        }
    }

    /// Forgets an entry nobody listens to any more.
    fn release(&self, conversation: ConversationId, id: u64) {
        let mut state = self.lock();
        let unwatched = state
            .entries
            .get(&conversation)
            .is_some_and(|entry| entry.id == id && entry.sender.receiver_count() == 0);
        let removed = unwatched
            .then(|| state.entries.remove(&conversation))
            .flatten();
        drop(state);
        drop(removed);
    }

    /// Forgets an entry whatever its subscribers, so that their streams end.
    fn forget(&self, conversation: ConversationId, id: u64) {
        let mut state = self.lock();
        let current = state
            .entries
            .get(&conversation)
            .is_some_and(|entry| entry.id == id);
        let removed = current
            .then(|| state.entries.remove(&conversation))
            .flatten();
        drop(state);
        drop(removed);
    }

    /// How many conversations are followed on NATS.
    pub(crate) fn followed(&self) -> usize {
        self.lock().entries.len()
    }

    /// The connection as the client's events last told it.
    pub(crate) fn connection(&self) -> watch::Receiver<bool> {
        self.connection.subscribe()
    }

    /// Reacts to the NATS client's events.
    pub(crate) fn on_event(&self, event: &Event) {
        match event {
            Event::Connected => {
                let (ended, reconnected) = {
                    let mut state = self.lock();
                    state.connected = true;
                    let reconnected = std::mem::replace(&mut state.ever_connected, true);
                    (std::mem::take(&mut state.entries), reconnected)
                };
                // Events published while this instance was not connected are lost,
                // also for subscriptions queued meanwhile: ending every stream makes
                // each follower catch up from storage.
                if reconnected {
                    metrics::reconnected();
                    tracing::info!(ended = ended.len(), "reconnected to NATS");
                } else {
                    tracing::info!(ended = ended.len(), "connected to NATS");
                }
                drop(ended);
                metrics::connected(true);
                self.connection.send_replace(true);
            }
            Event::Disconnected => {
                self.lock().connected = false;
                metrics::connected(false);
                self.connection.send_replace(false);
                tracing::warn!("disconnected from NATS; events are dropped until it is back");
            }
            Event::Closed => {
                let ended = {
                    let mut state = self.lock();
                    state.connected = false;
                    std::mem::take(&mut state.entries)
                };
                drop(ended);
                metrics::connected(false);
                self.connection.send_replace(false);
                // With reconnects unlimited (`bus.rs`), a
                // client closes only when its last handle is dropped: the server is
                // stopping, which is no cause for a warning.
                tracing::info!("the NATS connection closed");
            }
            Event::SlowConsumer(sid) => {
                // The client does not say which subscription a sid is, so every local
                // stream ends: some of them missed events.
                let ended = std::mem::take(&mut self.lock().entries);
                metrics::dropped(DropReason::SlowConsumer, 1);
                tracing::warn!(sid, ended = ended.len(), "NATS dropped messages");
                drop(ended);
            }
            Event::LameDuckMode => tracing::info!("the NATS server is shutting down"),
            Event::Draining => tracing::info!("the NATS client is draining"),
            Event::ServerError(error) => tracing::warn!(%error, "NATS server error"),
            Event::ClientError(error) => tracing::warn!(%error, "NATS client error"),
        }
    }
}

/// A local subscriber's stream: every event of its entry until the entry ends or the
/// subscriber falls more than the hub's capacity behind.
pub(crate) fn stream(joined: Joined) -> EventStream {
    let local = Local {
        receiver: joined.receiver,
        _ticket: joined.ticket,
    };
    futures::stream::unfold(local, |mut local| async move {
        match local.receiver.recv().await {
            Ok(event) => Some((event, local)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                metrics::dropped(DropReason::LaggedSubscriber, missed);
                None
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
    .boxed()
}

/// Decodes each message of a conversation's NATS subscription once and hands it to the
/// conversation's local subscribers.
async fn forward(
    hub: Weak<Hub>,
    conversation: ConversationId,
    id: u64,
    mut subscriber: Subscriber,
    sender: broadcast::Sender<SharedEvent>,
) {
    while let Some(message) = subscriber.next().await {
        let Some(event) = receive(conversation, &message.payload) else {
            continue;
        };
        // An error means no receiver right now: the last one's ticket removes the
        // entry (and aborts this task), and a subscriber joining meanwhile keeps it.
        sender.send(SharedEvent::new(event)).ok();
    }
    // The client closed the subscription: end the local streams rather than leave them
    // waiting on a subscription that will never deliver.
    if let Some(hub) = hub.upgrade() {
        hub.forget(conversation, id);
    }
}

/// Decodes one message of `conversation`'s subject; `None` for a payload that does not
/// decode or belongs to another conversation, which is counted and dropped.
pub(crate) fn receive(conversation: ConversationId, payload: &[u8]) -> Option<ConversationEvent> {
    metrics::received();
    match wire::decode_event(payload) {
        Ok(received) if received.event.conversation_id == conversation => {
            metrics::delivered(received.sent_at_us);
            Some(received.event)
        }
        Ok(received) => {
            metrics::decode_failed();
            tracing::warn!(
                %conversation,
                other = %received.event.conversation_id,
                "dropped an event published on another conversation's subject"
            );
            None
        }
        Err(error) => {
            metrics::decode_failed();
            tracing::warn!(%conversation, %error, "dropped an event that did not decode");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::AtomicU64;

    use ::metrics::{
        Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
    };
    use confab_domain::event::EventKind;
    use confab_domain::session::SessionId;
    use uuid::Uuid;

    use super::*;

    /// Counts what is recorded, by metric name and labels.
    #[derive(Default)]
    struct Counts(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

    impl Counts {
        fn handle(&self, key: &Key) -> Arc<AtomicU64> {
            let labels: Vec<String> = key
                .labels()
                .map(|label| format!("{}={}", label.key(), label.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            Arc::clone(self.0.lock().unwrap().entry(name).or_default())
        }

        fn get(&self, name: &str) -> u64 {
            self.0
                .lock()
                .unwrap()
                .get(name)
                .map_or(0, |count| count.load(Ordering::Relaxed))
        }
    }

    impl Recorder for Counts {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.handle(key))
        }

        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.handle(key))
        }

        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    fn deleted(conversation: ConversationId) -> ConversationEvent {
        ConversationEvent {
            conversation_id: conversation,
            session_id: SessionId::from_uuid(Uuid::nil()),
            kind: EventKind::Deleted,
        }
    }

    #[test]
    fn payloads_that_do_not_decode_are_counted_and_dropped() {
        let counts = Counts::default();
        let conversation = ConversationId::from_uuid(Uuid::now_v7());
        let other = ConversationId::from_uuid(Uuid::now_v7());
        let good = wire::encode_event(&deleted(conversation), metrics::now_us()).unwrap();
        let misplaced = wire::encode_event(&deleted(other), metrics::now_us()).unwrap();
        let received = ::metrics::with_local_recorder(&counts, || {
            [&b"garbage"[..], &misplaced, &good]
                .into_iter()
                .filter_map(|payload| receive(conversation, payload))
                .collect::<Vec<_>>()
        });
        assert_eq!(received, vec![deleted(conversation)]);
        assert_eq!(counts.get("confab_bus_received_total{}"), 3);
        assert_eq!(counts.get("confab_bus_decode_failures_total{}"), 2);
    }

    #[test]
    fn a_lagging_subscriber_is_counted_as_a_drop() {
        let counts = Counts::default();
        let hub = Hub::new(2);
        let conversation = ConversationId::from_uuid(Uuid::now_v7());
        let sender = broadcast::Sender::new(2);
        let joined = Joined {
            receiver: sender.subscribe(),
            ticket: Ticket {
                hub: Arc::downgrade(&hub),
                conversation,
                id: 0,
            },
            needs_confirmation: false,
        };
        for _ in 0..5 {
            sender
                .send(SharedEvent::new(deleted(conversation)))
                .unwrap();
        }
        let mut stream = stream(joined);
        // Polled once, on this thread, so inside the recorder's scope.
        let ended = ::metrics::with_local_recorder(&counts, || {
            futures::FutureExt::now_or_never(stream.next())
        });
        assert_eq!(ended, Some(None));
        assert_eq!(
            counts.get("confab_bus_dropped_total{reason=lagged_subscriber}"),
            3
        );
    }
}
