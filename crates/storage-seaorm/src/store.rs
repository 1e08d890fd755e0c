//! [`SeaOrmStore`]: the repositories on one connection pool, and the server settings
//! kept beside them.

use std::sync::Arc;

use confab_domain::bot::BotId;
use confab_domain::error::RepoError;
use sea_orm::{DatabaseConnection, DatabaseTransaction, EntityTrait, IntoActiveModel, Statement};

use tokio::sync::OnceCell;

use crate::bot_cache::BotCache;
use crate::connection::begin_write;
use crate::direct_reads::{DirectReads, DirectRow};
use crate::entity::server_setting;
use crate::error::repo_error;
use crate::group_commit::AppendQueue;

/// The `server_settings` key of the JWT signing secret.
const JWT_SECRET: &str = "jwt_secret";

/// confab's storage on SeaORM: implements `ConversationRepository`,
/// `MessageRepository`, `SessionRepository` and `BotRepository` of
/// `confab_domain::ports` on SQLite and PostgreSQL.
///
/// Cloning is cheap and shares the pool.
#[derive(Debug, Clone)]
pub struct SeaOrmStore {
    pub(crate) db: DatabaseConnection,
    /// Appends waiting for a group-commit writer (`group_commit`).
    pub(crate) appends: Arc<AppendQueue>,
    /// Bots as last read (`bot_cache`).
    pub(crate) bots: Arc<BotCache>,
    /// Readers of a SQLite file beside the pool (`direct_reads`), set up on first use.
    direct: Arc<OnceCell<Option<DirectReads>>>,
}

impl SeaOrmStore {
    /// A store on `db`, a pool from [`connect`](crate::connect) whose schema
    /// [`migrate`](crate::migrate) brought up to date.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            direct: Arc::default(),
            db,
            appends: Arc::default(),
            bots: Arc::default(),
        }
    }

    /// This store, keeping a bot it read for `ttl` before reading it again (two
    /// seconds by default): longer saves reads, and is safe where every change
    /// reaches [`forget_bot`](Self::forget_bot) (one instance, or a bus that
    /// announces changes); shorter bounds how stale a missed change can be.
    #[must_use]
    pub fn with_bot_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.bots = Arc::new(BotCache::with_ttl(ttl));
        self
    }

    /// Drops what this store keeps of a bot, so that the next read goes to the
    /// database: for a change made through another store (another instance), which
    /// this one hears of from the event bus. Changes through this store drop it
    /// themselves.
    pub fn forget_bot(&self, id: &BotId) {
        self.bots.forget(id);
    }

    /// The secret that signs access tokens: the stored one, or `candidate` when none
    /// is stored yet, which is then stored for every later start and every instance.
    ///
    /// Instances starting together may each propose a candidate; the first insert
    /// wins and all of them return the winner.
    ///
    /// # Errors
    /// Only storage failures.
    pub async fn signing_secret(&self, candidate: &str) -> Result<String, RepoError> {
        let proposal = server_setting::Model {
            key: JWT_SECRET.to_owned(),
            value: candidate.to_owned(),
        };
        server_setting::Entity::insert(proposal.into_active_model())
            .on_conflict_do_nothing()
            .exec_without_returning(&self.db)
            .await
            .map_err(repo_error)?;
        let stored = server_setting::Entity::find_by_id(JWT_SECRET.to_owned())
            .one(&self.db)
            .await
            .map_err(repo_error)?;
        // The row was inserted above or before; only a concurrent manual delete could
        // remove it in between.
        stored
            .map(|setting| setting.value)
            .ok_or(RepoError::NotFound)
    }

    /// The rows `statement` (a select of all the columns of `T`'s entity, built for
    /// this store's backend, and kept: SeaORM builds a `Select` anew each time)
    /// selects, decoded: read directly on a SQLite file (`direct_reads`), through the
    /// pool otherwise. A direct read runs on the tokio worker, so only statements that
    /// read a bounded number of rows belong here; others go through the pool.
    pub(crate) async fn select_statement<T>(
        &self,
        statement: Statement,
    ) -> Result<Vec<T>, RepoError>
    where
        T: DirectRow + Send + Sync,
        <T::Entity as EntityTrait>::Model: Send + Sync,
    {
        let direct = self
            .direct
            .get_or_init(|| DirectReads::for_pool(&self.db))
            .await;
        if let Some(direct) = direct
            && let Some(read) = direct.rows(&statement)
        {
            return read;
        }
        let rows = T::Entity::find()
            .from_raw_sql(statement)
            .all(&self.db)
            .await
            .map_err(repo_error)?;
        Ok(rows
            .into_iter()
            .map(T::from_model)
            .collect::<Result<_, _>>()?)
    }

    /// Begins a transaction that will write ([`begin_write`]).
    pub(crate) async fn begin_write(&self) -> Result<DatabaseTransaction, RepoError> {
        begin_write(&self.db).await
    }
}
