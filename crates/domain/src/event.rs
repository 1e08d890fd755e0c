//! What happens in a conversation, as the event bus carries it to subscribers, and
//! the shared form ([`SharedEvent`]) in which every subscriber of one conversation
//! receives the same event.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use crate::conversation::{ConversationId, ConversationStatus};
use crate::handoff::HandoffState;
use crate::message::{Feedback, Message, MessageId, Sender};
use crate::session::SessionId;

/// One thing that happened in a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationEvent {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its session, the id WebSocket clients address it by.
    pub session_id: SessionId,
    /// What happened.
    pub kind: EventKind,
}

/// The kinds of event.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "stored messages are most of the events: boxing them would add an allocation \
              to each, to save bytes on the rarer small ones"
)]
pub enum EventKind {
    /// A message was stored.
    Message(Message),
    /// Part of a bot reply that is still being produced; not stored.
    Delta {
        /// The id the stored reply will have.
        reply_id: MessageId,
        /// 0, 1, 2 … in the order of the parts.
        index: u32,
        /// The new text of this part, or all text so far when `snapshot` is set.
        content: String,
        /// Whether `content` is the whole text so far rather than one part.
        snapshot: bool,
    },
    /// Someone started or stopped typing.
    Typing {
        /// Who.
        sender: Sender,
        /// Started (`true`) or stopped.
        active: bool,
    },
    /// The conversation was archived or unarchived.
    Status(ConversationStatus),
    /// The conversation was deleted.
    Deleted,
    /// A user rated a bot reply, changed the rating, or took it back (`None`).
    Feedback {
        /// The rated reply.
        message_id: MessageId,
        /// The feedback as it now is.
        feedback: Option<Feedback>,
    },
    /// Who answers the user changed (see [`crate::handoff`]); the stored `system`
    /// message saying so is published as a [`EventKind::Message`] of its own.
    Handoff(HandoffState),
}

/// An event as the bus hands it to subscribers: one allocation that every subscriber
/// of the conversation shares, so that fanning an event out to N followers costs N
/// reference counts rather than N copies of a message with its content, metadata and
/// attachments.
///
/// It also keeps one encoding of the event (see [`SharedEvent::encoded`]), so that
/// followers that turn the event into the same bytes (the same frame for every socket)
/// encode it once per fan-out. The domain knows nothing of that encoding: it is any
/// value the adapter asks for, told apart by its type.
#[derive(Clone)]
pub struct SharedEvent(Arc<Shared>);

struct Shared {
    event: ConversationEvent,
    /// Only the first kind of encoding asked for is kept: the one frame that sockets
    /// and SSE streams share is the fan-out that matters, and a single slot is read
    /// without a lock or a map.
    encoding: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl SharedEvent {
    /// Shares `event` with whoever receives a clone.
    pub fn new(event: ConversationEvent) -> Self {
        Self(Arc::new(Shared {
            event,
            encoding: OnceLock::new(),
        }))
    }

    /// Whether `self` and `other` are the same allocation, not only equal events.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The event encoded by `encode`, which runs once for all holders of this event:
    /// later calls with an encoding of the same type get a clone of the first result,
    /// so `T` should be cheap to clone (shared bytes). Concurrent first calls wait for
    /// the one that encodes rather than encode twice.
    ///
    /// An encoding of another type than the one kept runs `encode` every time.
    pub fn encoded<T>(&self, encode: impl Fn(&ConversationEvent) -> T) -> T
    where
        T: Any + Clone + Send + Sync,
    {
        let kept = self
            .0
            .encoding
            .get_or_init(|| Box::new(encode(&self.0.event)));
        kept.downcast_ref::<T>()
            .cloned()
            .unwrap_or_else(|| encode(&self.0.event))
    }
}

impl Deref for SharedEvent {
    type Target = ConversationEvent;

    fn deref(&self) -> &ConversationEvent {
        &self.0.event
    }
}

impl fmt::Debug for SharedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.event.fmt(f)
    }
}

/// Equal when the events are, whether or not they share an allocation.
impl PartialEq for SharedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.0.event == other.0.event
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use uuid::Uuid;

    use super::*;

    fn deleted() -> ConversationEvent {
        ConversationEvent {
            conversation_id: ConversationId::from_uuid(Uuid::now_v7()),
            session_id: SessionId::from_uuid(Uuid::now_v7()),
            kind: EventKind::Deleted,
        }
    }

    #[test]
    fn holders_of_one_event_share_one_encoding() {
        let encodings = AtomicU32::new(0);
        let encode = |event: &ConversationEvent| {
            encodings.fetch_add(1, Ordering::Relaxed);
            Arc::new(format!("{:?}", event.kind))
        };
        let first = SharedEvent::new(deleted());
        let second = first.clone();
        let from_first = first.encoded(encode);
        let from_second = second.encoded(encode);
        assert!(Arc::ptr_eq(&from_first, &from_second));
        assert_eq!(encodings.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn an_encoding_of_another_type_is_made_each_time() {
        let first = SharedEvent::new(deleted());
        assert_eq!(*first.encoded(|_| Arc::new("kept")), "kept");
        let encodings = AtomicU32::new(0);
        let other = |_: &ConversationEvent| encodings.fetch_add(1, Ordering::Relaxed) + 1;
        assert_eq!(first.encoded(other), 1);
        assert_eq!(first.clone().encoded(other), 2);
        assert_eq!(*first.encoded(|_| Arc::new("again")), "kept");
    }
}
