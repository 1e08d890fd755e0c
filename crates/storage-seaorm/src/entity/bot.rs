//! A row of `bots`.

use sea_orm::entity::prelude::*;

/// A registered bot; `engine_settings` is a JSON object as text.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bots")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: String,
    pub(crate) name: String,
    #[sea_orm(column_type = "Text")]
    pub(crate) description: String,
    pub(crate) engine_kind: String,
    #[sea_orm(column_type = "Text")]
    pub(crate) engine_settings: String,
    pub(crate) created_at_ms: i64,
    pub(crate) updated_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
