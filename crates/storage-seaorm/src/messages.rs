//! `MessageRepository` for [`SeaOrmStore`]: appending with gap-free seqs, and paging
//! through history.

use async_trait::async_trait;
use confab_domain::conversation::{ConversationId, preview};
use confab_domain::error::RepoError;
use confab_domain::message::{
    Appended, ClientMessageId, HistoryBound, HistoryPage, HistoryQuery, Message, MessageId,
    NewMessage, Sender, Seq,
};
use confab_domain::ports::MessageRepository;
use confab_domain::timestamp::Timestamp;
use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::{conversation, message};
use crate::error::{RowError, repo_error};
use crate::rows::{message_row, millis, seq_value};
use crate::store::SeaOrmStore;

#[async_trait]
impl MessageRepository for SeaOrmStore {
    async fn append(&self, new: &NewMessage) -> Result<Appended, RepoError> {
        // SQLite has one writer at a time: appends are grouped into shared
        // transactions there (see `group_commit`).
        if self.db.get_database_backend() == DbBackend::Sqlite {
            self.append_grouped(new).await
        } else {
            self.append_alone(new).await
        }
    }

    async fn history(
        &self,
        conversation: ConversationId,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, RepoError> {
        let limit = u64::from(query.limit.get());
        let mut select = message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation.as_uuid()));
        if let Some(before) = query.before {
            select = select.filter(match before {
                HistoryBound::Seq(seq) => message::Column::Seq.lt(bound_seq(seq)),
                HistoryBound::Time(at) => message::Column::TimestampMs.lt(millis(at)),
            });
        }
        if let Some(after) = query.after {
            select = select.filter(match after {
                HistoryBound::Seq(seq) => message::Column::Seq.gt(bound_seq(seq)),
                HistoryBound::Time(at) => message::Column::TimestampMs.gt(millis(at)),
            });
        }
        // With `after` the page is the oldest messages past it; otherwise it is the
        // newest, read backwards through the (conversation_id, seq) index and turned
        // around. One row more than asked tells whether more exist that way.
        let forward = query.after.is_some();
        let select = if forward {
            select.order_by_asc(message::Column::Seq)
        } else {
            select.order_by_desc(message::Column::Seq)
        };
        let rows = select
            .limit(limit + 1)
            .all(&self.db)
            .await
            .map_err(repo_error)?;
        let has_more = rows.len() as u64 > limit;
        let mut messages = rows
            .into_iter()
            .take(query.limit.get() as usize)
            .map(Message::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        if !forward {
            messages.reverse();
        }
        Ok(HistoryPage { messages, has_more })
    }

    async fn mark_answered(&self, conversation: ConversationId, seq: Seq) -> Result<(), RepoError> {
        use conversation::Column;

        let answered = seq_value(seq)?;
        let updated = conversation::Entity::update_many()
            .col_expr(Column::RepliedSeq, Expr::val(answered))
            .filter(Column::Id.eq(conversation.as_uuid()))
            .filter(Column::RepliedSeq.lt(answered))
            .exec(&self.db)
            .await
            .map_err(repo_error)?;
        if updated.rows_affected == 0 {
            return Err(self.why_not_advanced(conversation).await);
        }
        Ok(())
    }

    async fn get(&self, conversation: ConversationId, id: MessageId) -> Result<Message, RepoError> {
        let row = message::Entity::find_by_id(id.as_uuid())
            .filter(message::Column::ConversationId.eq(conversation.as_uuid()))
            .one(&self.db)
            .await
            .map_err(repo_error)?
            .ok_or(RepoError::NotFound)?;
        Ok(Message::try_from(row)?)
    }
}

impl SeaOrmStore {
    /// Appends `new` in a transaction of its own.
    pub(crate) async fn append_alone(&self, new: &NewMessage) -> Result<Appended, RepoError> {
        let txn = self.begin_write().await?;
        // Advancing the conversation first takes its row lock (PostgreSQL) or the
        // write lock (SQLite) before anything is read, so concurrent appends queue
        // here and each sees the seq its predecessor committed.
        let Some(advanced) = advance(&txn, new).await? else {
            txn.rollback().await.map_err(repo_error)?;
            return Err(self.why_not_advanced(new.conversation_id).await);
        };
        let seq = Seq::new(
            u64::try_from(advanced.last_seq)
                .map_err(|_| RowError::new("conversations", "negative last_seq"))?,
        );
        // `advance` set last_activity to this message's timestamp, raised to the
        // previous message's if the clock stepped back.
        let timestamp = Timestamp::from_unix_millis(advanced.last_activity_ms)
            .map_err(|_| RowError::new("conversations", "last_activity out of range"))?;
        let row = message_row(new, seq, timestamp)?;
        let inserted = message::Entity::insert(row.into_active_model())
            .exec_without_returning(&txn)
            .await;
        match inserted {
            Ok(_) => {
                txn.commit().await.map_err(repo_error)?;
                Ok(Appended::Stored(new.stored(seq, timestamp)))
            }
            Err(error) => {
                let error = repo_error(error);
                // PostgreSQL refuses every statement of a transaction after an error,
                // so the original is looked up after the rollback.
                txn.rollback().await.map_err(repo_error)?;
                match (error, &new.client_message_id) {
                    (RepoError::Conflict, Some(client_id)) => self
                        .by_client_message_id(new.conversation_id, client_id)
                        .await?
                        .map(Appended::Existing)
                        .ok_or(RepoError::Conflict),
                    (error, _) => Err(error),
                }
            }
        }
    }

    /// Why `advance` matched no row: the conversation is missing, or the reply it
    /// would record was stored before.
    pub(crate) async fn why_not_advanced(&self, id: ConversationId) -> RepoError {
        match conversation::Entity::find_by_id(id.as_uuid())
            .one(&self.db)
            .await
        {
            Ok(Some(_)) => RepoError::Conflict,
            Ok(None) => RepoError::NotFound,
            Err(error) => repo_error(error),
        }
    }

    pub(crate) async fn by_client_message_id(
        &self,
        conversation: ConversationId,
        client_id: &ClientMessageId,
    ) -> Result<Option<Message>, RepoError> {
        let row = message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation.as_uuid()))
            .filter(message::Column::ClientMessageId.eq(client_id.as_str()))
            .one(&self.db)
            .await
            .map_err(repo_error)?;
        Ok(row.map(Message::try_from).transpose()?)
    }
}

/// Moves the conversation on by one message in a single `UPDATE … RETURNING`:
/// `last_seq` and `message_count` up by one, `last_activity` to the message's time
/// (never below the previous message's), `last_message` to its preview, `last_user_seq`
/// for user messages, and `replied_seq` for replies, but only while that reply is
/// still pending. Returns the conversation as updated, or `None` when no row matched:
/// the conversation is missing or the reply was stored before.
pub(crate) async fn advance<C: ConnectionTrait>(
    db: &C,
    new: &NewMessage,
) -> Result<Option<conversation::Model>, RepoError> {
    use conversation::Column;

    let at = millis(new.timestamp);
    let next_seq = || Expr::col(Column::LastSeq).add(1);
    // SET expressions read the row as it was before the statement, so `last_seq` here
    // is the previous message's seq and `last_activity_ms` its timestamp.
    let activity: SimpleExpr = Expr::case(
        Expr::col(Column::LastSeq)
            .gt(0)
            .and(Expr::col(Column::LastActivityMs).gt(at)),
        Expr::col(Column::LastActivityMs),
    )
    .finally(Expr::val(at))
    .into();
    let mut update = conversation::Entity::update_many()
        .col_expr(Column::LastSeq, next_seq())
        .col_expr(Column::MessageCount, Expr::col(Column::MessageCount).add(1))
        .col_expr(Column::LastActivityMs, activity)
        .col_expr(
            Column::LastMessage,
            Expr::val(preview(new.content.as_str())),
        )
        .filter(Column::Id.eq(new.conversation_id.as_uuid()));
    if new.sender == Sender::User {
        update = update.col_expr(Column::LastUserSeq, next_seq());
    }
    if let Some(reply_to) = new.reply_to {
        let answered = seq_value(reply_to.seq)?;
        update = update
            .col_expr(Column::RepliedSeq, Expr::val(answered))
            .filter(Column::RepliedSeq.lt(answered));
    }
    let rows = update.exec_with_returning(db).await.map_err(repo_error)?;
    Ok(rows.into_iter().next())
}

/// A seq as a query bound. A client may name a seq beyond any stored one (up to
/// `u64::MAX`); clamping it to the largest storable seq selects the same messages.
fn bound_seq(seq: Seq) -> i64 {
    i64::try_from(seq.get()).unwrap_or(i64::MAX)
}
