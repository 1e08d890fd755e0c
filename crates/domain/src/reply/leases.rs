//! The reply leases of a server alone on its database, which touch no storage.

use async_trait::async_trait;

use crate::conversation::ConversationId;
use crate::error::RepoError;
use crate::lease::{LeaseHolder, Release};
use crate::ports::ReplyLeases;
use crate::timestamp::Timestamp;

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
