//! Forwarding one followed conversation to a socket: each event becomes a server
//! frame in the connection's queue. A queue that stays full for `send_timeout` means
//! the peer does not read; the forwarder then closes the connection with 1013 rather
//! than wait, so the event bus never waits for a slow socket.
//!
//! The frame of a live event is the one every follower of the conversation queues
//! (see [`EventFrame`]): N sockets on one conversation cost one encoding per event.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use confab_domain::service::FollowStream;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::ws::close::{CloseReason, TOO_SLOW, TRY_AGAIN_LATER};
use crate::ws::protocol::{EventFrame, ServerFrame};

/// A running forwarder of one followed conversation.
pub(super) struct Forwarder {
    task: JoinHandle<()>,
    /// Set once the follow failed for good, before its `error` frame is queued: a
    /// send right after it must follow the conversation again, or its acknowledgement
    /// (the stored message coming back) would never arrive, even while the queue is
    /// full and the task is still placing that frame.
    failed: Arc<AtomicBool>,
}

impl Forwarder {
    /// Whether the conversation's events no longer reach the socket through it.
    pub(super) fn ended(&self) -> bool {
        self.failed.load(Ordering::Acquire) || self.task.is_finished()
    }

    /// Stops the task and with it the follow's subscription to the bus.
    pub(super) fn abort(&self) {
        self.task.abort();
    }
}

/// Spawns the task that forwards `events` into `outbox` until they end, the queue
/// closes, or the peer reads too slowly.
pub(super) fn forward(
    mut events: FollowStream,
    outbox: mpsc::Sender<Utf8Bytes>,
    close: watch::Sender<CloseReason>,
    send_timeout: Duration,
) -> Forwarder {
    let failed = Arc::new(AtomicBool::new(false));
    let failing = Arc::clone(&failed);
    let task = tokio::spawn(async move {
        while let Some(item) = events.next().await {
            let text = match item {
                Ok(event) => EventFrame::of(&event).text,
                Err(error) => {
                    failing.store(true, Ordering::Release);
                    let error = ApiError::from(error);
                    let frame = ServerFrame::Error {
                        code: error.code().as_str(),
                        message: error.detail().to_owned(),
                        reference: None,
                    };
                    frame.to_text().into()
                }
            };
            match outbox.send_timeout(text, send_timeout).await {
                Ok(()) => {}
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                    close.send_replace(Some((TRY_AGAIN_LATER, TOO_SLOW)));
                    return;
                }
                Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
            }
        }
    });
    Forwarder { task, failed }
}

#[cfg(test)]
mod tests {
    use confab_domain::conversation::ConversationId;
    use confab_domain::event::{ConversationEvent, EventKind, SharedEvent};
    use confab_domain::message::Sender;
    use confab_domain::session::SessionId;
    use futures::StreamExt as _;
    use uuid::Uuid;

    use super::*;

    const SEND_TIMEOUT: Duration = Duration::from_secs(5);

    /// Forwards `event` as the only event of a followed conversation; returns the text
    /// queued for the socket.
    async fn forwarded(event: SharedEvent) -> Utf8Bytes {
        let (outbox, mut queue) = mpsc::channel(1);
        let (close, _close_signal) = watch::channel(None);
        let events = futures::stream::iter([Ok(event)]).boxed();
        forward(events, outbox, close, SEND_TIMEOUT)
            .task
            .await
            .expect("the forwarder ran to the end");
        queue.recv().await.expect("a frame was queued")
    }

    fn typing() -> ConversationEvent {
        ConversationEvent {
            conversation_id: ConversationId::from_uuid(Uuid::now_v7()),
            session_id: SessionId::from_uuid(Uuid::now_v7()),
            kind: EventKind::Typing {
                sender: Sender::Bot,
                active: true,
            },
        }
    }

    #[tokio::test]
    async fn a_follow_that_failed_counts_as_ended_while_its_error_frame_waits_for_room() {
        use confab_domain::error::{DomainError, RepoError};

        let (outbox, _queue) = mpsc::channel(1);
        outbox
            .try_send("earlier".into())
            .expect("room for one frame");
        let (close, _close_signal) = watch::channel(None);
        let failure = DomainError::Storage(RepoError::Internal("a bug".into()));
        let events = futures::stream::iter([Err(failure)]).boxed();
        let forwarder = forward(events, outbox, close, SEND_TIMEOUT);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !forwarder.ended() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the failed follow does not count as ended"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            !forwarder.task.is_finished(),
            "the error frame is still waiting for room in the full queue"
        );
        forwarder.abort();
    }

    #[tokio::test]
    async fn followers_of_one_event_queue_the_same_encoded_frame() {
        let original = typing();
        let event = SharedEvent::new(original.clone());
        let first = forwarded(event.clone()).await;
        let second = forwarded(event).await;
        assert_eq!(first.as_str().as_ptr(), second.as_str().as_ptr());
        assert_eq!(first, ServerFrame::from_event(&original).to_text());
    }

    #[tokio::test]
    async fn equal_events_that_are_not_shared_are_encoded_each_on_its_own() {
        // As a follower's replay from storage is: its own event, not the bus's.
        let original = typing();
        let first = forwarded(SharedEvent::new(original.clone())).await;
        let second = forwarded(SharedEvent::new(original)).await;
        assert_eq!(first, second);
        assert_ne!(first.as_str().as_ptr(), second.as_str().as_ptr());
    }
}
