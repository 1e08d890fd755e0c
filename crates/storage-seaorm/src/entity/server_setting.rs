//! A row of `server_settings`: one named value the server keeps, e.g. its JWT secret.

use sea_orm::entity::prelude::*;

/// A setting.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "server_settings")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) key: String,
    #[sea_orm(column_type = "Text")]
    pub(crate) value: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
