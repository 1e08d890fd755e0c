//! Reply leases: which instance answers a conversation's pending user messages when
//! several instances share one database.
//!
//! Each instance has a [`LeaseHolder`] id. Before its reply worker asks a bot
//! anything, it claims the conversation's lease ([`ReplyLeases::claim_reading`], which
//! may return the conversation as the claim left it, for the worker's first look) and
//! renews it while it works ([`ReplyLeases::claim`]); when nothing is pending any more
//! it lets go
//! ([`ReplyLeases::release`]), and storage refuses to let go while user messages
//! still wait, so a message stored on another instance in the meantime is never
//! left behind. A holder that dies stops renewing: once its lease runs out, any
//! instance's sweep ([`ReplyLeases::orphaned`]) finds the work and claims it.
//!
//! [`ReplyLeases`]: crate::ports::ReplyLeases
//! [`ReplyLeases::claim`]: crate::ports::ReplyLeases::claim
//! [`ReplyLeases::claim_reading`]: crate::ports::ReplyLeases::claim_reading
//! [`ReplyLeases::release`]: crate::ports::ReplyLeases::release
//! [`ReplyLeases::orphaned`]: crate::ports::ReplyLeases::orphaned
//!
//! This module is model only (the holder's id and what letting go did); the leases
//! of a server alone on its database are [`SingleInstanceLeases`](crate::reply::SingleInstanceLeases).

use crate::conversation::Conversation;

crate::id::uuid_id! {
    /// One running instance's id as a lease holder; new at every start.
    LeaseHolder, "lease holder id"
}

/// What [`ReplyLeases::claim_reading`](crate::ports::ReplyLeases::claim_reading)
/// found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The holder holds the lease now: with the conversation as the claim left it,
    /// when the store read it in the same step, or `None` when it did not.
    Held(Option<Box<Conversation>>),
    /// Another holder's lease runs past `now`.
    Taken,
}

/// What [`ReplyLeases::release`](crate::ports::ReplyLeases::release) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The holder no longer holds the lease: it let go, or had lost it already.
    Released,
    /// User messages still wait, so the holder keeps the lease and must answer them.
    WorkRemains,
}
