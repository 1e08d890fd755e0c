//! Forwarding one followed conversation to a socket: each event becomes a server
//! frame in the connection's queue. A queue that stays full for `send_timeout` means
//! the peer does not read; the forwarder then closes the connection with 1013 rather
//! than wait, so the event bus never waits for a slow socket.

use std::time::Duration;

use confab_domain::service::FollowStream;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::ws::close::{CloseReason, TOO_SLOW, TRY_AGAIN_LATER};
use crate::ws::protocol::ServerFrame;

/// Spawns the task that forwards `events` into `outbox` until they end, the queue
/// closes, or the peer reads too slowly.
pub(super) fn forward(
    mut events: FollowStream,
    outbox: mpsc::Sender<String>,
    close: watch::Sender<CloseReason>,
    send_timeout: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(item) = events.next().await {
            let frame = match item {
                Ok(event) => ServerFrame::from_event(event),
                Err(error) => {
                    let error = ApiError::from(error);
                    ServerFrame::Error {
                        code: error.code().as_str(),
                        message: error.detail().to_owned(),
                        reference: None,
                    }
                }
            };
            match outbox.send_timeout(frame.to_text(), send_timeout).await {
                Ok(()) => {}
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                    close.send_replace(Some((TRY_AGAIN_LATER, TOO_SLOW)));
                    return;
                }
                Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
            }
        }
    })
}
