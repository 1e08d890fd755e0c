//! `ReplyLeases` on the `conversations` row: `reply_holder` and
//! `reply_lease_until_ms`. Each operation is one `UPDATE`, one round trip, atomic on
//! its own: PostgreSQL re-checks an `UPDATE`'s `WHERE` against the row as the
//! concurrent writer committed it, and SQLite has one writer at a time. Because the
//! lease shares its row with `last_user_seq`, which every user message's append
//! raises under the same row lock, the release's "nothing pending" condition sees
//! every append that committed before it.

use std::sync::LazyLock;

use async_trait::async_trait;
use confab_domain::conversation::Conversation;
use confab_domain::conversation::ConversationId;
use confab_domain::error::RepoError;
use confab_domain::lease::{Claim, LeaseHolder, Release};
use confab_domain::ports::ReplyLeases;
use confab_domain::timestamp::Timestamp;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QueryResult, QuerySelect,
};

use crate::entity::conversation::{self, Column};
use crate::error::repo_error;
use crate::rows::millis;
use crate::sql::{Template, statement};
use crate::store::SeaOrmStore;

/// Claims or renews the lease (`#1#` the holder, `#2#` until, `#3#` now) on
/// conversation `#4#`; a `RETURNING` clause follows. The row is written either way
/// (unchanged when another holds it), so that one statement both decides and tells a
/// refused claim from a missing conversation (no row).
const CLAIM_UPDATE: &str = "\
UPDATE conversations SET \
reply_holder = CASE WHEN reply_holder IS NULL OR reply_holder = #1# \
OR reply_lease_until_ms <= #3# THEN #1# ELSE reply_holder END, \
reply_lease_until_ms = CASE WHEN reply_holder IS NULL OR reply_holder = #1# \
OR reply_lease_until_ms <= #3# THEN #2# ELSE reply_lease_until_ms END \
WHERE id = #4#";

/// [`CLAIM_UPDATE`], saying whether the holder has the lease now.
static CLAIM: LazyLock<Template> =
    LazyLock::new(|| Template::new(format!("{CLAIM_UPDATE} RETURNING reply_holder = #1#")));

/// [`CLAIM_UPDATE`], saying whether the holder has the lease now (`held`), with the
/// row as the claim left it: `RETURNING` reads it in the same step, after any append
/// holding its lock, as a read right after would.
static CLAIM_READING: LazyLock<Template> = LazyLock::new(|| {
    Template::new(format!(
        "{CLAIM_UPDATE} RETURNING reply_holder = #1# AS held, *"
    ))
});

/// Lets go of holder `#2#`'s lease on conversation `#1#` unless user messages wait,
/// and says whether they do. `RETURNING` reads the row as this statement left it,
/// after waiting for any append holding its lock; a second statement would read a
/// newer row than the one decided on, and a `WITH` a snapshot from before the wait.
const RELEASE_SQL: &str = "\
UPDATE conversations SET \
reply_holder = CASE WHEN replied_seq >= last_user_seq THEN NULL ELSE reply_holder END, \
reply_lease_until_ms = CASE WHEN replied_seq >= last_user_seq THEN NULL \
ELSE reply_lease_until_ms END \
WHERE id = #1# AND reply_holder = #2# RETURNING replied_seq < last_user_seq";

impl SeaOrmStore {
    /// The row `claim` (a [`CLAIM_UPDATE`] with its `RETURNING`) returns;
    /// `RepoError::NotFound` when the conversation does not exist.
    async fn claim_row(
        &self,
        claim: &Template,
        conversation: ConversationId,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<QueryResult, RepoError> {
        let claim = claim.statement(
            &[
                holder.as_uuid().into(),
                millis(until).into(),
                millis(now).into(),
                conversation.as_uuid().into(),
            ],
            self.db.get_database_backend(),
        )?;
        self.db
            .query_one_raw(claim)
            .await
            .map_err(repo_error)?
            .ok_or(RepoError::NotFound)
    }
}

#[async_trait]
impl ReplyLeases for SeaOrmStore {
    async fn claim(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, RepoError> {
        let row = self
            .claim_row(&CLAIM, conversation, holder, now, until)
            .await?;
        row.try_get_by_index::<bool>(0).map_err(repo_error)
    }

    async fn claim_reading(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Claim, RepoError> {
        let row = self
            .claim_row(&CLAIM_READING, conversation, holder, now, until)
            .await?;
        if !row.try_get::<bool>("", "held").map_err(repo_error)? {
            return Ok(Claim::Taken);
        }
        let read = conversation::Model::from_query_result(&row, "").map_err(repo_error)?;
        Ok(Claim::Held(Some(Box::new(Conversation::try_from(read)?))))
    }

    async fn release(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
    ) -> Result<Release, RepoError> {
        let release = statement(
            RELEASE_SQL,
            &[conversation.as_uuid().into(), holder.as_uuid().into()],
            self.db.get_database_backend(),
        )?;
        // No row: `holder` held nothing to let go of, or the conversation is gone.
        let work_remains = match self.db.query_one_raw(release).await.map_err(repo_error)? {
            Some(row) => row.try_get_by_index::<bool>(0).map_err(repo_error)?,
            None => false,
        };
        Ok(if work_remains {
            Release::WorkRemains
        } else {
            Release::Released
        })
    }

    async fn orphaned(&self, now: Timestamp, limit: u32) -> Result<Vec<ConversationId>, RepoError> {
        // The pending condition is written exactly as the partial index
        // `idx_conversations_pending_replies` states it, so that both backends use
        // the index and only then look at the few pending rows' leases.
        let ids: Vec<uuid::Uuid> = conversation::Entity::find()
            .select_only()
            .column(Column::Id)
            .filter(Expr::col(Column::RepliedSeq).lt(Expr::col(Column::LastUserSeq)))
            .filter(
                Condition::any()
                    .add(Column::ReplyHolder.is_null())
                    .add(Column::ReplyLeaseUntilMs.lte(millis(now))),
            )
            .order_by_asc(Column::LastActivityMs)
            .order_by_asc(Column::Id)
            .limit(u64::from(limit))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_error)?;
        Ok(ids.into_iter().map(ConversationId::from_uuid).collect())
    }
}
