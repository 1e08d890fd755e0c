//! `SessionRepository` for [`SeaOrmStore`]: the bots' per-conversation state.

use async_trait::async_trait;
use confab_domain::error::RepoError;
use confab_domain::ports::SessionRepository;
use confab_domain::session::{Session, SessionId};
use confab_domain::timestamp::Timestamp;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::entity::session;
use crate::error::repo_error;
use crate::rows::{context_text, millis};
use crate::store::SeaOrmStore;

#[async_trait]
impl SessionRepository for SeaOrmStore {
    async fn get(&self, id: SessionId) -> Result<Session, RepoError> {
        let row = session::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
            .map_err(repo_error)?
            .ok_or(RepoError::NotFound)?;
        Ok(Session::try_from(row)?)
    }

    async fn save_context(
        &self,
        id: SessionId,
        context: &serde_json::Map<String, serde_json::Value>,
        at: Timestamp,
    ) -> Result<(), RepoError> {
        let updated = session::Entity::update_many()
            .col_expr(session::Column::Context, Expr::val(context_text(context)?))
            .col_expr(session::Column::UpdatedAtMs, Expr::val(millis(at)))
            .filter(session::Column::Id.eq(id.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(repo_error)?;
        if updated.rows_affected == 0 {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }
}
