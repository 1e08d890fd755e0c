//! The in-process event bus: [`InProcessEventBus`] carries conversation events to the
//! subscribers of one server instance. Several instances need a shared bus instead
//! (NATS); this one is the default for a single instance.
//!
//! An event is wrapped once, when published, in a [`SharedEvent`]: the broadcast
//! channel clones it for each subscriber, which for a shared event is a reference
//! count, not a copy of the message it carries.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use confab_domain::conversation::ConversationId;
use confab_domain::error::EventBusError;
use confab_domain::event::{ConversationEvent, SharedEvent};
use confab_domain::ports::{EventBus, EventStream};
use futures::StreamExt;
use tokio::sync::broadcast;

/// A broadcast channel per conversation with subscribers.
///
/// A subscriber that falls more than `capacity` events behind loses its stream (it
/// ends), as the [`EventBus`] port allows: the subscriber resumes from storage. That
/// keeps one slow reader from holding memory or slowing the publisher.
#[derive(Debug)]
pub struct InProcessEventBus {
    capacity: usize,
    /// A std mutex: held only for a map operation, never across an await.
    channels: Mutex<HashMap<ConversationId, broadcast::Sender<SharedEvent>>>,
}

impl InProcessEventBus {
    /// A bus whose subscribers may fall `capacity` events behind.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            channels: Mutex::new(HashMap::new()),
        }
    }
}

impl Default for InProcessEventBus {
    fn default() -> Self {
        Self::new(1024)
    }
}

#[async_trait]
impl EventBus for InProcessEventBus {
    async fn publish(&self, event: ConversationEvent) -> Result<(), EventBusError> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = channels.get(&event.conversation_id) {
            let conversation = event.conversation_id;
            // An error means every receiver is gone: forget the channel so that
            // conversations nobody watches cost nothing.
            if sender.send(SharedEvent::new(event)).is_err() {
                channels.remove(&conversation);
            }
        }
        Ok(())
    }

    async fn subscribe(&self, conversation: ConversationId) -> Result<EventStream, EventBusError> {
        let receiver = {
            let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
            channels
                .entry(conversation)
                .or_insert_with(|| broadcast::channel(self.capacity).0)
                .subscribe()
        };
        let stream = futures::stream::unfold(receiver, |mut receiver| async move {
            match receiver.recv().await {
                Ok(event) => Some((event, receiver)),
                // Lagged: events were lost, so the stream must end rather than go on
                // with a gap. Closed: the bus is gone.
                Err(
                    broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed,
                ) => None,
            }
        });
        Ok(stream.boxed())
    }
}

#[cfg(test)]
mod tests {
    use confab_domain::conversation::ConversationStatus;
    use confab_domain::event::EventKind;
    use confab_domain::session::SessionId;
    use uuid::Uuid;

    use super::*;

    fn status_event(conversation: ConversationId) -> ConversationEvent {
        ConversationEvent {
            conversation_id: conversation,
            session_id: SessionId::from_uuid(Uuid::nil()),
            kind: EventKind::Status(ConversationStatus::Archived),
        }
    }

    #[tokio::test]
    async fn every_subscriber_of_a_conversation_gets_each_event_once() {
        let bus = InProcessEventBus::default();
        let conversation = ConversationId::from_uuid(Uuid::now_v7());
        let other = ConversationId::from_uuid(Uuid::now_v7());
        let mut first = bus.subscribe(conversation).await.unwrap();
        let mut second = bus.subscribe(conversation).await.unwrap();
        let mut unrelated = bus.subscribe(other).await.unwrap();
        bus.publish(status_event(conversation)).await.unwrap();
        bus.publish(status_event(other)).await.unwrap();
        assert_eq!(*first.next().await.unwrap(), status_event(conversation));
        assert_eq!(*second.next().await.unwrap(), status_event(conversation));
        assert_eq!(*unrelated.next().await.unwrap(), status_event(other));
    }

    #[tokio::test]
    async fn subscribers_of_a_conversation_share_one_event_rather_than_copies() {
        let bus = InProcessEventBus::default();
        let conversation = ConversationId::from_uuid(Uuid::now_v7());
        let mut first = bus.subscribe(conversation).await.unwrap();
        let mut second = bus.subscribe(conversation).await.unwrap();
        bus.publish(status_event(conversation)).await.unwrap();
        let (first, second) = (first.next().await.unwrap(), second.next().await.unwrap());
        assert!(first.ptr_eq(&second));
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_sees_its_stream_end() {
        let bus = InProcessEventBus::new(2);
        let conversation = ConversationId::from_uuid(Uuid::now_v7());
        let mut slow = bus.subscribe(conversation).await.unwrap();
        for _ in 0..5 {
            bus.publish(status_event(conversation)).await.unwrap();
        }
        assert!(slow.next().await.is_none());
    }

    #[tokio::test]
    async fn publishing_without_subscribers_keeps_no_channel() {
        let bus = InProcessEventBus::default();
        let conversation = ConversationId::from_uuid(Uuid::now_v7());
        drop(bus.subscribe(conversation).await.unwrap());
        bus.publish(status_event(conversation)).await.unwrap();
        assert!(bus.channels.lock().unwrap().is_empty());
    }
}
