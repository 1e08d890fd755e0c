//! A row of `user_sessions`.

use sea_orm::entity::prelude::*;

/// A conversation's session; `context` is a JSON object as text.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_sessions")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    #[sea_orm(unique)]
    pub(crate) conversation_id: Uuid,
    pub(crate) user_id: String,
    pub(crate) bot_id: String,
    #[sea_orm(column_type = "Text")]
    pub(crate) context: String,
    pub(crate) created_at_ms: i64,
    pub(crate) updated_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
