//! A row of `conversations`, with the counters that `append` maintains.

use std::sync::LazyLock;

use sea_orm::entity::prelude::*;
use sea_orm::{DbBackend, QueryTrait, Statement};

/// A conversation; `metadata` is a JSON object as text, times are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    #[sea_orm(unique)]
    pub(crate) session_id: Uuid,
    pub(crate) user_id: String,
    pub(crate) bot_id: String,
    pub(crate) status: String,
    pub(crate) title: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub(crate) metadata: String,
    pub(crate) created_at_ms: i64,
    pub(crate) last_activity_ms: i64,
    #[sea_orm(column_type = "Text", nullable)]
    pub(crate) last_message: Option<String>,
    pub(crate) message_count: i64,
    pub(crate) last_seq: i64,
    pub(crate) last_user_seq: i64,
    pub(crate) replied_seq: i64,
    /// The instance holding the reply lease, if any (see `leases.rs`).
    pub(crate) reply_holder: Option<Uuid>,
    /// When that lease runs out, in Unix milliseconds.
    pub(crate) reply_lease_until_ms: Option<i64>,
    /// Who answers: `bot`, `waiting` or `agent` (see `handoff.rs`).
    pub(crate) handoff: String,
    /// The agent holding the conversation, in state `agent`.
    pub(crate) handoff_agent: Option<String>,
    /// When the conversation entered its handoff state, unless with its bot.
    pub(crate) handoff_since_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// `Entity::find_by_id(id)` for `backend`, its SQL built once: replies read their
/// conversation, and so did every message sent before own appends (the SQLite
/// writer's read for them is this one too); building SeaORM's `Select` each time cost
/// the server more than SQLite's read itself (a profile of REST sends: 10 % of the
/// server's samples against 6 %).
pub(crate) fn by_id_statement(backend: DbBackend, id: Uuid) -> Statement {
    static SQLITE: LazyLock<String> = LazyLock::new(|| by_id_sql(DbBackend::Sqlite));
    static POSTGRES: LazyLock<String> = LazyLock::new(|| by_id_sql(DbBackend::Postgres));
    let sql = match backend {
        DbBackend::Postgres => &POSTGRES,
        _ => &SQLITE,
    };
    Statement::from_sql_and_values(backend, sql.as_str(), [id.into()])
}

/// The SQL of `find_by_id`, whose one parameter is the id.
fn by_id_sql(backend: DbBackend) -> String {
    Entity::find_by_id(Uuid::nil()).build(backend).sql
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept SQL is bound with the id alone: SeaORM's `find_by_id` must build no
    /// other parameter (a `LIMIT`, say) into it.
    #[test]
    fn the_kept_select_by_id_takes_the_id_alone() {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let built = Entity::find_by_id(Uuid::nil()).build(backend);
            let values = built.values.map(|values| values.0.len());
            assert_eq!(values, Some(1), "{backend:?}: {}", built.sql);
        }
    }
}
