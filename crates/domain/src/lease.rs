//! Reply leases: which instance answers a conversation's pending user messages when
//! several instances share one database.
//!
//! Each instance has a [`LeaseHolder`] id. Before its reply worker asks a bot
//! anything, it claims the conversation's lease ([`ReplyLeases::claim`]) and renews
//! it while it works; when nothing is pending any more it lets go
//! ([`ReplyLeases::release`]), and storage refuses to let go while user messages
//! still wait, so a message stored on another instance in the meantime is never
//! left behind. A holder that dies stops renewing: once its lease runs out, any
//! instance's sweep ([`ReplyLeases::orphaned`]) finds the work and claims it.
//!
//! [`ReplyLeases`]: crate::ports::ReplyLeases
//! [`ReplyLeases::claim`]: crate::ports::ReplyLeases::claim
//! [`ReplyLeases::release`]: crate::ports::ReplyLeases::release
//! [`ReplyLeases::orphaned`]: crate::ports::ReplyLeases::orphaned

use async_trait::async_trait;

use crate::conversation::ConversationId;
use crate::error::RepoError;
use crate::ports::ReplyLeases;
use crate::timestamp::Timestamp;

crate::id::uuid_id! {
    /// One running instance's id as a lease holder; new at every start.
    LeaseHolder, "lease holder id"
}

/// What [`ReplyLeases::release`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The holder no longer holds the lease: it let go, or had lost it already.
    Released,
    /// User messages still wait, so the holder keeps the lease and must answer them.
    WorkRemains,
}

/// The leases of a server that is the only one on its database: every claim
/// succeeds and nothing is ever orphaned, so no storage is touched. One instance
/// serves each conversation's work through one worker anyway (the pipeline keeps
/// one per conversation), and its start-up recovery finds what a crash left.
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleInstanceLeases;

#[async_trait]
impl ReplyLeases for SingleInstanceLeases {
    async fn claim(
        &self,
        _conversation: ConversationId,
        _holder: LeaseHolder,
        _now: Timestamp,
        _until: Timestamp,
    ) -> Result<bool, RepoError> {
        Ok(true)
    }

    async fn release(
        &self,
        _conversation: ConversationId,
        _holder: LeaseHolder,
    ) -> Result<Release, RepoError> {
        Ok(Release::Released)
    }

    async fn orphaned(
        &self,
        _now: Timestamp,
        _limit: u32,
    ) -> Result<Vec<ConversationId>, RepoError> {
        Ok(Vec::new())
    }

    fn shared(&self) -> bool {
        false
    }
}
