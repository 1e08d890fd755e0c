//! A row of `conversations`, with the counters that `append` maintains.

use sea_orm::entity::prelude::*;

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
