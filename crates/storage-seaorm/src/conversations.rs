//! `ConversationRepository` for [`SeaOrmStore`]: conversations with their sessions.

use async_trait::async_trait;
use confab_domain::conversation::{
    Conversation, ConversationChange, ConversationId, ConversationPage, ListPosition, ListQuery,
};
use confab_domain::error::RepoError;
use confab_domain::handoff::{HandoffChange, HandoffListing};
use confab_domain::message::{Message, NewMessage};
use confab_domain::ports::ConversationRepository;
use confab_domain::session::{Session, SessionId};
use confab_domain::user::UserId;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::{conversation, handoff, message, session};
use crate::error::repo_error;
use crate::rows::millis;
use crate::store::SeaOrmStore;

/// The largest offset a query can carry: SQL offsets are signed 64-bit.
const MAX_OFFSET: u64 = i64::MAX as u64;

#[async_trait]
impl ConversationRepository for SeaOrmStore {
    async fn create(
        &self,
        conversation: &Conversation,
        session: &Session,
    ) -> Result<(), RepoError> {
        let conversation_row = conversation::Model::try_from(conversation)?;
        let session_row = session::Model::try_from(session)?;
        let txn = self.begin_write().await?;
        // A duplicate id of either kind is a unique violation, which `repo_error`
        // reports as `Conflict`; dropping the transaction then rolls back the other
        // insert.
        conversation::Entity::insert(conversation_row.into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(repo_error)?;
        session::Entity::insert(session_row.into_active_model())
            .exec_without_returning(&txn)
            .await
            .map_err(repo_error)?;
        txn.commit().await.map_err(repo_error)
    }

    async fn get(&self, id: ConversationId) -> Result<Conversation, RepoError> {
        let by_id = conversation::by_id_statement(self.db.get_database_backend(), id.as_uuid());
        let row = self
            .select_statement::<conversation::Model>(by_id)
            .await?
            .pop()
            .ok_or(RepoError::NotFound)?;
        Ok(Conversation::try_from(row)?)
    }

    async fn get_by_session(&self, id: SessionId) -> Result<Conversation, RepoError> {
        let row = conversation::Entity::find()
            .filter(conversation::Column::SessionId.eq(id.as_uuid()))
            .one(&self.db)
            .await
            .map_err(repo_error)?
            .ok_or(RepoError::NotFound)?;
        Ok(Conversation::try_from(row)?)
    }

    async fn list(&self, user: &UserId, query: &ListQuery) -> Result<ConversationPage, RepoError> {
        let mut filter = Condition::all().add(conversation::Column::UserId.eq(user.as_str()));
        if let Some(bot_id) = &query.filter.bot_id {
            filter = filter.add(conversation::Column::BotId.eq(bot_id.as_str()));
        }
        if let Some(status) = query.filter.status {
            filter = filter.add(conversation::Column::Status.eq(status.as_str()));
        }
        let total = conversation::Entity::find()
            .filter(filter.clone())
            .count(&self.db)
            .await
            .map_err(repo_error)?;

        let limit = u64::from(query.limit.get());
        let mut page = conversation::Entity::find()
            .filter(filter)
            .order_by_desc(conversation::Column::LastActivityMs)
            .order_by_desc(conversation::Column::Id)
            // One more than asked tells whether another page follows.
            .limit(limit + 1);
        page = match query.position {
            ListPosition::Offset(offset) => page.offset(std::cmp::min(offset, MAX_OFFSET)),
            ListPosition::After(cursor) => page.filter(
                Expr::tuple([
                    Expr::col(conversation::Column::LastActivityMs),
                    Expr::col(conversation::Column::Id),
                ])
                .lt(Expr::tuple([
                    Expr::val(millis(cursor.last_activity)),
                    Expr::val(cursor.id.as_uuid()),
                ])),
            ),
        };
        let rows = page.all(&self.db).await.map_err(repo_error)?;
        let read = rows
            .into_iter()
            .map(Conversation::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ConversationPage::from_read(read, query, total))
    }

    async fn update(
        &self,
        id: ConversationId,
        change: &ConversationChange,
    ) -> Result<Conversation, RepoError> {
        if change.is_empty() {
            // An UPDATE without SET is no statement; an empty change changes nothing
            // and still reports a missing conversation.
            return self.get(id).await;
        }
        let mut update =
            conversation::Entity::update_many().filter(conversation::Column::Id.eq(id.as_uuid()));
        if let Some(status) = change.status {
            update = update.col_expr(conversation::Column::Status, Expr::val(status.as_str()));
        }
        if let Some(title) = &change.title {
            update = update.col_expr(conversation::Column::Title, Expr::val(title.as_str()));
        }
        if let Some(metadata) = &change.metadata {
            let text = serde_json::to_string(metadata.as_map())
                .map_err(|e| RepoError::Internal(Box::new(e)))?;
            update = update.col_expr(conversation::Column::Metadata, Expr::val(text));
        }
        let row = update
            .exec_with_returning(&self.db)
            .await
            .map_err(repo_error)?
            .into_iter()
            .next()
            .ok_or(RepoError::NotFound)?;
        Ok(Conversation::try_from(row)?)
    }

    async fn delete(&self, id: ConversationId) -> Result<(), RepoError> {
        let txn = self.begin_write().await?;
        // The foreign keys cascade, but only where the connection enforces them
        // (SQLite needs `foreign_keys=ON`); deleting the children explicitly erases
        // them on a pool opened any way.
        message::Entity::delete_many()
            .filter(message::Column::ConversationId.eq(id.as_uuid()))
            .exec(&txn)
            .await
            .map_err(repo_error)?;
        session::Entity::delete_many()
            .filter(session::Column::ConversationId.eq(id.as_uuid()))
            .exec(&txn)
            .await
            .map_err(repo_error)?;
        handoff::Entity::delete_many()
            .filter(handoff::Column::ConversationId.eq(id.as_uuid()))
            .exec(&txn)
            .await
            .map_err(repo_error)?;
        let deleted = conversation::Entity::delete_by_id(id.as_uuid())
            .exec(&txn)
            .await
            .map_err(repo_error)?;
        if deleted.rows_affected == 0 {
            txn.rollback().await.map_err(repo_error)?;
            return Err(RepoError::NotFound);
        }
        txn.commit().await.map_err(repo_error)
    }

    async fn change_handoff(
        &self,
        id: ConversationId,
        change: &HandoffChange,
        notice: &NewMessage,
    ) -> Result<Message, RepoError> {
        self.move_handoff(id, change, notice).await
    }

    async fn in_handoff(
        &self,
        listing: &HandoffListing,
        limit: u32,
    ) -> Result<Vec<Conversation>, RepoError> {
        self.list_in_handoff(listing, limit).await
    }

    async fn with_pending_replies(&self, limit: u32) -> Result<Vec<ConversationId>, RepoError> {
        // The condition is written exactly as the partial index
        // `idx_conversations_pending_replies` states it, so that both backends use it.
        let ids: Vec<uuid::Uuid> = conversation::Entity::find()
            .select_only()
            .column(conversation::Column::Id)
            .filter(
                Expr::col(conversation::Column::RepliedSeq)
                    .lt(Expr::col(conversation::Column::LastUserSeq)),
            )
            .order_by_asc(conversation::Column::LastActivityMs)
            .limit(u64::from(limit))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_error)?;
        Ok(ids.into_iter().map(ConversationId::from_uuid).collect())
    }
}
