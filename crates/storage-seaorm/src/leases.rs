//! `ReplyLeases` on the `conversations` row: `reply_holder` and
//! `reply_lease_until_ms`. Each operation is one conditional `UPDATE`, atomic on its
//! own: PostgreSQL re-checks an `UPDATE`'s `WHERE` against the row as the
//! concurrent writer committed it, and SQLite has one writer at a time. Because the
//! lease shares its row with `last_user_seq`, which every user message's append
//! raises under the same row lock, the release's "nothing pending" condition sees
//! every append that committed before it.

use async_trait::async_trait;
use confab_domain::conversation::ConversationId;
use confab_domain::error::RepoError;
use confab_domain::lease::{LeaseHolder, Release};
use confab_domain::ports::ReplyLeases;
use confab_domain::timestamp::Timestamp;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entity::conversation::{self, Column};
use crate::error::repo_error;
use crate::rows::millis;
use crate::store::SeaOrmStore;

#[async_trait]
impl ReplyLeases for SeaOrmStore {
    async fn claim(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, RepoError> {
        let claimed = conversation::Entity::update_many()
            .col_expr(Column::ReplyHolder, Expr::val(holder.as_uuid()))
            .col_expr(Column::ReplyLeaseUntilMs, Expr::val(millis(until)))
            .filter(Column::Id.eq(conversation.as_uuid()))
            .filter(
                Condition::any()
                    .add(Column::ReplyHolder.is_null())
                    .add(Column::ReplyHolder.eq(holder.as_uuid()))
                    .add(Column::ReplyLeaseUntilMs.lte(millis(now))),
            )
            .exec(&self.db)
            .await
            .map_err(repo_error)?;
        if claimed.rows_affected > 0 {
            return Ok(true);
        }
        // Held by another, or no such conversation: only the second is an error.
        let exists = conversation::Entity::find_by_id(conversation.as_uuid())
            .select_only()
            .column(Column::Id)
            .into_tuple::<uuid::Uuid>()
            .one(&self.db)
            .await
            .map_err(repo_error)?;
        match exists {
            Some(_) => Ok(false),
            None => Err(RepoError::NotFound),
        }
    }

    async fn release(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
    ) -> Result<Release, RepoError> {
        let released = conversation::Entity::update_many()
            .col_expr(Column::ReplyHolder, Expr::val(Option::<uuid::Uuid>::None))
            .col_expr(Column::ReplyLeaseUntilMs, Expr::val(Option::<i64>::None))
            .filter(Column::Id.eq(conversation.as_uuid()))
            .filter(Column::ReplyHolder.eq(holder.as_uuid()))
            .filter(Expr::col(Column::RepliedSeq).gte(Expr::col(Column::LastUserSeq)))
            .exec(&self.db)
            .await
            .map_err(repo_error)?;
        if released.rows_affected > 0 {
            return Ok(Release::Released);
        }
        // Not released: because work remains, or because there was nothing of
        // `holder`'s to let go of.
        let still_held_with_work = conversation::Entity::find_by_id(conversation.as_uuid())
            .select_only()
            .column(Column::Id)
            .filter(Column::ReplyHolder.eq(holder.as_uuid()))
            .filter(Expr::col(Column::RepliedSeq).lt(Expr::col(Column::LastUserSeq)))
            .into_tuple::<uuid::Uuid>()
            .one(&self.db)
            .await
            .map_err(repo_error)?;
        Ok(match still_held_with_work {
            Some(_) => Release::WorkRemains,
            None => Release::Released,
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
