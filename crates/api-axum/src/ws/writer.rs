//! The writer of one socket: drains the connection's bounded queue into the socket,
//! a burst at a time, pings the peer, and sends the close frame when the close signal
//! fires.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::SinkExt;
use futures::stream::SplitSink;
use tokio::sync::{mpsc, watch};

use crate::ws::close::{CloseReason, GOING_AWAY, TRY_AGAIN_LATER};

/// Frames written per flush at most, so that a busy socket still lets pings and the
/// close signal through.
const FRAMES_PER_FLUSH: usize = 64;

/// Writes `first` and whatever else is queued already, then flushes once: a user
/// message and the bot's answer arrive as a burst of frames (the echo, typing, the
/// reply, typing), and one write for the burst costs a system call instead of four.
async fn write_queued(
    sink: &mut SplitSink<WebSocket, Message>,
    queue: &mut mpsc::Receiver<Utf8Bytes>,
    first: Utf8Bytes,
) -> Result<(), axum::Error> {
    sink.feed(Message::Text(first)).await?;
    for _ in 1..FRAMES_PER_FLUSH {
        match queue.try_recv() {
            Ok(text) => sink.feed(Message::Text(text)).await?,
            Err(_) => break,
        }
    }
    sink.flush().await
}

/// Writes queued frames and pings until the close signal fires or the queue ends,
/// then sends the close frame.
pub(super) async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Utf8Bytes>,
    mut close_signal: watch::Receiver<CloseReason>,
    ping_interval: Duration,
) {
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
    loop {
        tokio::select! {
            biased;
            _ = close_signal.changed() => break,
            frame = queue.recv() => match frame {
                Some(text) => {
                    if write_queued(&mut sink, &mut queue, text).await.is_err() {
                        return;
                    }
                }
                None => break,
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
    let (code, reason) = (*close_signal.borrow()).unwrap_or((GOING_AWAY, "closing"));
    // What was queued before the close goes out first: above all the error frame of
    // the frame that made the connection close (the tenth bad frame in a row), which
    // the close signal would otherwise overtake. A peer that reads too slowly
    // (1013) would only hold the close frame back, so its queue is dropped.
    if code != TRY_AGAIN_LATER {
        for _ in 0..FRAMES_PER_FLUSH {
            let Ok(text) = queue.try_recv() else { break };
            if sink.feed(Message::Text(text)).await.is_err() {
                return;
            }
        }
    }
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    let _ = sink.close().await;
}
