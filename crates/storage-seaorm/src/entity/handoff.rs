//! A row of `handoffs`: one handoff, from the request until the conversation is back
//! with its bot, as analytics count it. Written only by `handoff.rs`.

use sea_orm::entity::prelude::*;

/// A handoff; `id` is the id of the notice that opened it; times are Unix
/// milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "handoffs")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) conversation_id: Uuid,
    pub(crate) bot_id: String,
    pub(crate) requested_at_ms: i64,
    pub(crate) claimed_at_ms: Option<i64>,
    pub(crate) agent_id: Option<String>,
    pub(crate) ended_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
