//! `BotRepository` for [`SeaOrmStore`]: the registry of bots.

use async_trait::async_trait;
use confab_domain::bot::{Bot, BotId};
use confab_domain::error::RepoError;
use confab_domain::ports::BotRepository;
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, IntoActiveModel, QueryOrder};

use crate::entity::bot;
use crate::error::repo_error;
use crate::store::SeaOrmStore;

#[async_trait]
impl BotRepository for SeaOrmStore {
    async fn get(&self, id: &BotId) -> Result<Bot, RepoError> {
        if let Some(bot) = self.bots.get(id) {
            return Ok(bot);
        }
        let generation = self.bots.generation();
        let row = bot::Entity::find_by_id(id.as_str().to_owned())
            .one(&self.db)
            .await
            .map_err(repo_error)?
            .ok_or(RepoError::NotFound)?;
        let bot = Bot::try_from(row)?;
        self.bots.put(generation, bot.clone());
        Ok(bot)
    }

    async fn list(&self) -> Result<Vec<Bot>, RepoError> {
        let rows = bot::Entity::find()
            .order_by_asc(bot::Column::Id)
            .all(&self.db)
            .await
            .map_err(repo_error)?;
        Ok(rows
            .into_iter()
            .map(Bot::try_from)
            .collect::<Result<Vec<_>, _>>()?)
    }

    async fn upsert(&self, bot: &Bot) -> Result<(), RepoError> {
        let row = bot::Model::try_from(bot)?;
        // One statement, so that concurrent upserts of a bot cannot both try to
        // insert it; `created_at_ms` is not in the update list and so keeps the
        // first registration's time.
        let result = bot::Entity::insert(row.into_active_model())
            .on_conflict(
                OnConflict::column(bot::Column::Id)
                    .update_columns([
                        bot::Column::Name,
                        bot::Column::Description,
                        bot::Column::EngineKind,
                        bot::Column::EngineSettings,
                        bot::Column::UpdatedAtMs,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(repo_error);
        // After the write, so that a read beside it cannot keep the old row.
        self.bots.forget(&bot.id);
        result?;
        Ok(())
    }

    async fn delete(&self, id: &BotId) -> Result<(), RepoError> {
        let deleted = bot::Entity::delete_by_id(id.as_str().to_owned())
            .exec(&self.db)
            .await
            .map_err(repo_error);
        self.bots.forget(id);
        let deleted = deleted?;
        if deleted.rows_affected == 0 {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }
}
