//! One WebSocket connection's lifecycle: it opens with a `connected` status, runs a
//! reader (`connection`) that handles client frames in order, a
//! writer (`writer`) that drains a bounded queue into the socket
//! and pings, and one forwarder (`forward`) per followed
//! conversation; it ends when either side closes.
//!
//! Back-pressure: everything the socket sends goes through one bounded queue. A
//! forwarder that cannot place a frame within `send_timeout` means the peer does not
//! read; the connection is then closed with 1013 and the peer resumes with
//! `subscribe` + `after_seq`. Forwarders wait on their own queue only, and the event
//! bus never waits for them, so one slow reader never stalls the others.

use axum::extract::ws::WebSocket;
use confab_domain::user::Caller;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::state::AppState;
use crate::ws::close::{GOING_AWAY, close_once};
use crate::ws::connection::Connection;
use crate::ws::protocol::ServerFrame;
use crate::ws::writer::write_loop;

/// Serves one upgraded connection until either side closes it.
///
/// The set-up runs when this is called (inside the socket's task); the future returned
/// holds only what the session needs while it lasts. That future is part of every
/// socket's task for as long as the socket is open, mostly idle, so what it holds is
/// what 10 000 idle sockets cost (docs/benchmarks.md): the arguments of an `async fn`
/// would stay in it after they were moved out, and so would the state of any await
/// that is not boxed.
pub(crate) fn serve(
    socket: WebSocket,
    state: AppState,
    caller: Caller,
) -> impl Future<Output = ()> + Send + 'static {
    let settings = state.config.ws;
    let (sink, stream) = socket.split();
    let (outbox, queue) = mpsc::channel(settings.queue_capacity.max(1));
    let (close, close_signal) = watch::channel(None);
    // A stopping server closes the socket the way a peer's misbehaviour does: through
    // the close signal, which ends the reader and makes the writer send the frame.
    let on_shutdown = {
        let close = close.clone();
        let shutdown = state.shutdown.clone();
        tokio::spawn(async move {
            shutdown.stopping().await;
            close_once(&close, GOING_AWAY, "server shutting down");
        })
    };
    let writer = tokio::spawn(write_loop(
        sink,
        queue,
        close_signal.clone(),
        settings.ping_interval,
    ));
    let connected = ServerFrame::Status {
        status: "connected",
        user_id: Some(caller.user_id.to_string()),
        conversation_id: None,
        session_id: None,
    };
    // The queue is new and empty, so the greeting always fits.
    let _ = outbox.try_send(connected.to_text().into());
    let mut connection = Connection::new(state, caller, outbox, close);
    async move {
        connection.read_loop(stream, close_signal).await;
        connection.shut(GOING_AWAY, "closing");
        on_shutdown.abort();
        // Dropping the connection stops its forwarders and closes the writer's queue.
        drop(connection);
        // The writer sends the close frame; a peer that does not read cannot take it,
        // so the socket is dropped after `close_grace` instead.
        let mut writer = writer;
        if tokio::time::timeout(settings.close_grace, &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::*;

    /// The size of the future `make` returns, without calling it.
    fn future_size<A, B, C, F: Future>(_make: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// The session's future lives in every socket's task for the socket's life, idle
    /// or not: 10 000 idle sockets pay for each byte of it 10 000 times. It was 3 KiB
    /// before the set-up moved out of it and the refusal of binary frames was boxed
    /// (docs/benchmarks-history.md, change 18); an unboxed await or a captured value
    /// added to it shows here first.
    #[test]
    fn an_idle_sessions_future_stays_small() {
        let size = future_size(serve);
        assert!(size <= 1_536, "the session's future takes {size} bytes");
    }
}
