//! The handoff part of `ConversationRepository` on [`SeaOrmStore`]: the state on the
//! conversation's row, moved by one guarded `UPDATE` in a write transaction that
//! also keeps the `handoffs` log and appends the notice, and the listings of the
//! agents' queue.
//!
//! The guard compares the state the caller read (`handoff` and `handoff_agent`), so
//! that PostgreSQL's row lock, or SQLite's write lock, lets exactly one of two
//! concurrent claims through; the other's `UPDATE` matches no row and the whole
//! transaction rolls back.

use confab_domain::conversation::{Conversation, ConversationId};
use confab_domain::error::RepoError;
use confab_domain::handoff::{HandoffChange, HandoffListing, HandoffState};
use confab_domain::message::{Message, NewMessage};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Value,
};

use crate::append::{append_within, why_not_advanced};
use crate::entity::{conversation, handoff};
use crate::error::repo_error;
use crate::rows::millis;
use crate::sql::statement;
use crate::store::SeaOrmStore;

/// Moves conversation `#4#` to state `#1#` with agent `#2#` since `#3#`, provided it
/// is in state `#5#` with agent `#6#` (`''` for none), and returns its bot.
const MOVE_SQL: &str = "\
UPDATE conversations SET handoff = #1#, handoff_agent = #2#, handoff_since_ms = #3# \
WHERE id = #4# AND handoff = #5# AND COALESCE(handoff_agent, '') = #6# \
RETURNING bot_id";

impl SeaOrmStore {
    pub(crate) async fn move_handoff(
        &self,
        id: ConversationId,
        change: &HandoffChange,
        notice: &NewMessage,
    ) -> Result<Message, RepoError> {
        if notice.conversation_id != id {
            return Err(RepoError::Conflict);
        }
        let at = millis(notice.timestamp);
        let to = &change.to;
        let parameters: [Value; 6] = [
            to.as_str().into(),
            to.holder().map(|agent| agent.as_str().to_owned()).into(),
            (!to.bot_answers()).then_some(at).into(),
            id.as_uuid().into(),
            change.from.as_str().into(),
            change
                .from
                .holder()
                .map_or("", |agent| agent.as_str())
                .into(),
        ];
        let txn = self.begin_write().await?;
        let moved = txn
            .query_one_raw(statement(
                MOVE_SQL,
                &parameters,
                txn.get_database_backend(),
            )?)
            .await
            .map_err(repo_error)?;
        let Some(row) = moved else {
            txn.rollback().await.map_err(repo_error)?;
            return Err(why_not_advanced(&self.db, id).await);
        };
        let bot_id: String = row.try_get_by_index(0).map_err(repo_error)?;
        let stored = async {
            log(&txn, id, &bot_id, to, notice).await?;
            append_within(&txn, notice).await
        }
        .await;
        match stored {
            Ok(stored) => {
                txn.commit().await.map_err(repo_error)?;
                Ok(stored)
            }
            Err(error) => {
                txn.rollback().await.map_err(repo_error)?;
                Err(error)
            }
        }
    }

    pub(crate) async fn list_in_handoff(
        &self,
        listing: &HandoffListing,
        limit: u32,
    ) -> Result<Vec<Conversation>, RepoError> {
        let query = match listing {
            HandoffListing::Waiting => conversation::Entity::find()
                .filter(conversation::Column::Handoff.eq(HandoffState::Waiting.as_str())),
            HandoffListing::HeldBy(agent) => conversation::Entity::find()
                .filter(conversation::Column::Handoff.eq("agent"))
                .filter(conversation::Column::HandoffAgent.eq(agent.as_str())),
        };
        let rows = query
            .order_by_asc(conversation::Column::HandoffSinceMs)
            .order_by_asc(conversation::Column::Id)
            .limit(u64::from(limit))
            .all(&self.db)
            .await
            .map_err(repo_error)?;
        Ok(rows
            .into_iter()
            .map(Conversation::try_from)
            .collect::<Result<Vec<_>, _>>()?)
    }
}

/// Keeps the `handoffs` log for a move to `to`: a request opens a handoff (closing
/// one an admin moved back to the queue), a claim records its agent, a return to
/// the bot closes it.
async fn log(
    txn: &DatabaseTransaction,
    id: ConversationId,
    bot_id: &str,
    to: &HandoffState,
    notice: &NewMessage,
) -> Result<(), RepoError> {
    let at = millis(notice.timestamp);
    let open = handoff::Entity::update_many()
        .filter(handoff::Column::ConversationId.eq(id.as_uuid()))
        .filter(handoff::Column::EndedAtMs.is_null());
    match to {
        HandoffState::Waiting => {
            open.col_expr(handoff::Column::EndedAtMs, Expr::val(at))
                .exec(txn)
                .await
                .map_err(repo_error)?;
            handoff::Entity::insert(
                handoff::Model {
                    id: notice.id.as_uuid(),
                    conversation_id: id.as_uuid(),
                    bot_id: bot_id.to_owned(),
                    requested_at_ms: at,
                    claimed_at_ms: None,
                    agent_id: None,
                    ended_at_ms: None,
                }
                .into_active_model(),
            )
            .exec_without_returning(txn)
            .await
            .map_err(repo_error)?;
        }
        HandoffState::Agent(agent) => {
            open.col_expr(handoff::Column::ClaimedAtMs, Expr::val(at))
                .col_expr(handoff::Column::AgentId, Expr::val(agent.as_str()))
                .exec(txn)
                .await
                .map_err(repo_error)?;
        }
        HandoffState::Bot => {
            open.col_expr(handoff::Column::EndedAtMs, Expr::val(at))
                .exec(txn)
                .await
                .map_err(repo_error)?;
        }
    }
    Ok(())
}
