//! How the server closes a socket: the close codes it sends and the one signal every
//! task of a connection watches, holding the first reason given.

use tokio::sync::watch;

/// Close code: the server is going away or the peer was silent too long.
pub(super) const GOING_AWAY: u16 = 1001;
/// Close code: the peer broke RFC 6455 itself (a text frame that is not UTF-8, a
/// stray continuation, a reserved opcode, a fragmented control frame, a frame over
/// the hard limit); the protocol library cannot read on after such a frame.
pub(super) const PROTOCOL_ERROR: u16 = 1002;
/// Close code: the peer broke the protocol repeatedly.
pub(super) const POLICY_VIOLATION: u16 = 1008;
/// Close code: the peer reads too slowly; try again later.
pub(super) const TRY_AGAIN_LATER: u16 = 1013;

/// The close reason for a peer that reads too slowly.
pub(super) const TOO_SLOW: &str = "reading too slowly; resume with subscribe and after_seq";

/// Why the server closes a connection; `None` while it stays open.
pub(super) type CloseReason = Option<(u16, &'static str)>;

/// Asks for the connection to close with `code`, unless a reason was given already:
/// the peer learns the cause that came first.
pub(super) fn close_once(close: &watch::Sender<CloseReason>, code: u16, reason: &'static str) {
    close.send_if_modified(|current| {
        if current.is_none() {
            *current = Some((code, reason));
            true
        } else {
            false
        }
    });
}
