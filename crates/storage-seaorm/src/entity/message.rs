//! A row of `message_history`.

use sea_orm::entity::prelude::*;

/// A stored message; `attachments`, `suggestions` and `metadata` are JSON as text.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_history")]
pub(crate) struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub(crate) id: Uuid,
    pub(crate) conversation_id: Uuid,
    pub(crate) seq: i64,
    pub(crate) sender: String,
    pub(crate) sender_id: String,
    #[sea_orm(column_type = "Text")]
    pub(crate) content: String,
    #[sea_orm(column_type = "Text")]
    pub(crate) attachments: String,
    #[sea_orm(column_type = "Text")]
    pub(crate) suggestions: String,
    pub(crate) client_message_id: Option<String>,
    pub(crate) reply_to: Option<Uuid>,
    pub(crate) timestamp_ms: i64,
    #[sea_orm(column_type = "Text")]
    pub(crate) metadata: String,
    /// The user's rating of a bot reply: `up` or `down`.
    pub(crate) feedback_rating: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub(crate) feedback_comment: Option<String>,
    pub(crate) feedback_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub(crate) enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
