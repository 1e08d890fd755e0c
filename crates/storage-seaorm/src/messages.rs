//! `MessageRepository` for [`SeaOrmStore`]: appending with gap-free seqs, and paging
//! through history.

use std::sync::LazyLock;

use async_trait::async_trait;
use confab_domain::conversation::ConversationId;
use confab_domain::error::RepoError;
use confab_domain::message::{
    Appended, Feedback, HistoryBound, HistoryPage, HistoryQuery, Message, MessageId, NewMessage,
    Seq,
};
use confab_domain::ports::{MessageRepository, OwnAppend};
use confab_domain::search::SearchQuery;
use confab_domain::user::UserId;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Statement, TransactionTrait, Value,
};

use crate::append::why_not_advanced;
use crate::entity::{conversation, message};
use crate::error::repo_error;
use crate::rows::{millis, seq_value};
use crate::store::SeaOrmStore;

#[async_trait]
impl MessageRepository for SeaOrmStore {
    async fn append(&self, new: &NewMessage) -> Result<Appended, RepoError> {
        // Appends waiting at the same moment are stored together (`group_commit`).
        self.appends.append(&self.db, new).await
    }

    async fn append_own(&self, new: &NewMessage, owner: &UserId) -> Result<OwnAppend, RepoError> {
        self.appends.append_own(&self.db, new, owner).await
    }

    async fn history(
        &self,
        conversation: ConversationId,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, RepoError> {
        // One row more than asked tells whether more exist.
        let limit = u64::from(query.limit.get()) + 1;
        let backend = self.db.get_database_backend();
        let seq_bound = |bound| match bound {
            None => Some(None),
            Some(HistoryBound::Seq(seq)) => Some(Some(bound_seq(seq))),
            Some(HistoryBound::Time(_)) => None,
        };
        // Pages by seq read at most a page's rows, on the caller's worker.
        if let (Some(before), Some(after)) = (seq_bound(query.before), seq_bound(query.after)) {
            let statement = page_by_seq_statement(backend, conversation, before, after, limit);
            let read = self.select_statement::<Message>(statement).await?;
            return Ok(HistoryPage::from_read(read, query));
        }
        // A time bound costs a binary search over the seqs first; such a read goes
        // through the pool, off the tokio worker.
        let mut select = message::Entity::find()
            .filter(message::Column::ConversationId.eq(conversation.as_uuid()));
        if let Some(before) = query.before {
            select = select.filter(match before {
                HistoryBound::Seq(seq) => message::Column::Seq.lt(bound_seq(seq)),
                // Times below `at` are the seqs below the first at `at` or later.
                HistoryBound::Time(at) => first_seq_at(backend, conversation, millis(at), "seq < "),
            });
        }
        if let Some(after) = query.after {
            select = select.filter(match after {
                HistoryBound::Seq(seq) => message::Column::Seq.gt(bound_seq(seq)),
                // Times past `at`, in milliseconds, are the seqs from the first at
                // `at + 1` or later.
                HistoryBound::Time(at) => first_seq_at(
                    backend,
                    conversation,
                    millis(at).saturating_add(1),
                    "seq >= ",
                ),
            });
        }
        let read = in_page_order(select, query.after.is_some(), limit)
            .all(&self.db)
            .await
            .map_err(repo_error)?
            .into_iter()
            .map(Message::try_from)
            .collect::<Result<_, _>>()?;
        Ok(HistoryPage::from_read(read, query))
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
            return Err(why_not_advanced(&self.db, conversation).await);
        }
        Ok(())
    }

    async fn set_feedback(
        &self,
        conversation: ConversationId,
        id: MessageId,
        feedback: Option<Feedback>,
    ) -> Result<Message, RepoError> {
        let (rating, comment, at) = match &feedback {
            Some(feedback) => (
                Some(feedback.rating.as_str()),
                feedback.comment.as_ref().map(|c| c.as_str().to_owned()),
                Some(millis(feedback.at)),
            ),
            None => (None, None, None),
        };
        let txn = self.db.begin().await.map_err(repo_error)?;
        // The `feedback.created` webhook trigger draws its delivery's place in the
        // outbox inside this update; taking the conversation's row lock first, as
        // every other change of a conversation does, makes that place its commit
        // order among the conversation's events. SQLite's one writer does as much.
        if txn.get_database_backend() == DbBackend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT id FROM conversations WHERE id = $1 FOR UPDATE",
                [conversation.as_uuid().into()],
            ))
            .await
            .map_err(repo_error)?;
        }
        let row = message::Entity::update_many()
            .col_expr(message::Column::FeedbackRating, Expr::val(rating))
            .col_expr(message::Column::FeedbackComment, Expr::val(comment))
            .col_expr(message::Column::FeedbackAtMs, Expr::val(at))
            .filter(message::Column::ConversationId.eq(conversation.as_uuid()))
            .filter(message::Column::Id.eq(id.as_uuid()))
            .exec_with_returning(&txn)
            .await
            .map_err(repo_error)?
            .into_iter()
            .next()
            .ok_or(RepoError::NotFound)?;
        txn.commit().await.map_err(repo_error)?;
        Ok(Message::try_from(row)?)
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Message>, RepoError> {
        self.search_messages(query).await
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

/// `select` ordered and limited as a page: with `after` the oldest messages past it;
/// otherwise the newest, read backwards through the `(conversation_id, seq)` index
/// (and turned around by `HistoryPage::from_read`).
fn in_page_order(
    select: sea_orm::Select<message::Entity>,
    after: bool,
    limit: u64,
) -> sea_orm::Select<message::Entity> {
    let select = if after {
        select.order_by_asc(message::Column::Seq)
    } else {
        select.order_by_desc(message::Column::Seq)
    };
    select.limit(limit)
}

/// A page of `conversation`'s history between seqs, `limit` rows at most, as SeaORM
/// builds it.
fn page_by_seq(
    conversation: ConversationId,
    before: Option<i64>,
    after: Option<i64>,
    limit: u64,
) -> sea_orm::Select<message::Entity> {
    let mut select =
        message::Entity::find().filter(message::Column::ConversationId.eq(conversation.as_uuid()));
    if let Some(before) = before {
        select = select.filter(message::Column::Seq.lt(before));
    }
    if let Some(after) = after {
        select = select.filter(message::Column::Seq.gt(after));
    }
    in_page_order(select, after.is_some(), limit)
}

/// [`page_by_seq`] as a statement, its SQL built once per backend and bounds:
/// building it anew for each page was about 8 % of a page's CPU on SQLite. Its
/// parameters are the conversation, the bounds given and the limit, in that order.
fn page_by_seq_statement(
    backend: DbBackend,
    conversation: ConversationId,
    before: Option<i64>,
    after: Option<i64>,
    limit: u64,
) -> Statement {
    /// The SQL for each combination of bounds, indexed as `shape` below.
    fn built(backend: DbBackend) -> [String; 4] {
        std::array::from_fn(|shape| {
            let bound = |bit: usize| (shape & bit != 0).then_some(0);
            page_by_seq(
                ConversationId::from_uuid(uuid::Uuid::nil()),
                bound(1),
                bound(2),
                1,
            )
            .build(backend)
            .sql
        })
    }
    static SQLITE: LazyLock<[String; 4]> = LazyLock::new(|| built(DbBackend::Sqlite));
    static POSTGRES: LazyLock<[String; 4]> = LazyLock::new(|| built(DbBackend::Postgres));
    let shape = usize::from(before.is_some()) | usize::from(after.is_some()) << 1;
    let sql = match backend {
        DbBackend::Postgres => &POSTGRES[shape],
        DbBackend::Sqlite => &SQLITE[shape],
        // No other backend is compiled in; SeaORM's own statement should one be.
        _ => return page_by_seq(conversation, before, after, limit).build(backend),
    };
    let values: Vec<Value> = [
        Some(conversation.as_uuid().into()),
        before.map(Value::from),
        after.map(Value::from),
        Some(limit.into()),
    ]
    .into_iter()
    .flatten()
    .collect();
    Statement::from_sql_and_values(backend, sql.as_str(), values)
}

/// A seq as a query bound. A client may name a seq beyond any stored one (up to
/// `u64::MAX`); clamping it to the largest storable seq selects the same messages.
fn bound_seq(seq: Seq) -> i64 {
    i64::try_from(seq.get()).unwrap_or(i64::MAX)
}

/// `compared` (say `seq < `) followed by the first seq of `conversation` whose time
/// is `at_ms` or later, its last seq plus one where there is none: a condition on a
/// message's seq for a bound on its time, found by a binary search over its seqs.
///
/// Sound because a conversation's seqs run without a gap from 1 to its `last_seq`
/// (messages are deleted only with their conversation) and its times never decrease
/// in seq order, so the messages at `at_ms` or later are its newest ones. Each step
/// reads one message by `(conversation_id, seq)`; a conversation of a million
/// messages takes twenty. Filtering by time instead had both backends' planners
/// read the conversation back by seq until a page was found, up to every message
/// (docs/benchmarks.md), and SQLite has no index on a conversation's times
/// (`m20261206_000001_swap_sqlite_message_time_index`).
fn first_seq_at(
    backend: DbBackend,
    conversation: ConversationId,
    at_ms: i64,
    compared: &str,
) -> Expr {
    let id = sea_orm::Value::from(conversation.as_uuid());
    let at_ms = sea_orm::Value::from(at_ms);
    // sea-query reads `$n` in custom SQL for PostgreSQL only, and `?` for SQLite only.
    let (id_at, time_at, values) = match backend {
        DbBackend::Postgres => ("$1", "$2", vec![id, at_ms]),
        _ => ("?", "?", vec![id.clone(), at_ms.clone(), at_ms, id]),
    };
    // `lo` and `hi` bound the answer; the message at their middle says which half
    // holds it. PostgreSQL types the recursion by its first row, hence the cast.
    Expr::cust_with_values(
        format!(
            "{compared}(WITH RECURSIVE halves(lo, hi) AS ( \
               SELECT CAST(1 AS BIGINT), last_seq + 1 FROM conversations WHERE id = {id_at} \
               UNION ALL \
               SELECT CASE WHEN middle.timestamp_ms >= {time_at} \
                        THEN lo ELSE (lo + hi) / 2 + 1 END, \
                      CASE WHEN middle.timestamp_ms >= {time_at} \
                        THEN (lo + hi) / 2 ELSE hi END \
               FROM halves JOIN message_history AS middle \
                 ON middle.conversation_id = {id_at} AND middle.seq = (lo + hi) / 2 \
               WHERE lo < hi) \
             SELECT lo FROM halves WHERE lo >= hi)"
        ),
        values,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kept SQL, bound as `page_by_seq_statement` binds it, is what SeaORM builds
    /// for every combination of bounds, on both backends.
    #[test]
    fn kept_page_statements_are_what_seaorm_builds() {
        let conversation = ConversationId::from_uuid(uuid::Uuid::now_v7());
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            for (before, after) in [
                (None, None),
                (Some(9), None),
                (None, Some(3)),
                (Some(9), Some(3)),
            ] {
                assert_eq!(
                    page_by_seq_statement(backend, conversation, before, after, 51),
                    page_by_seq(conversation, before, after, 51).build(backend),
                    "{backend:?}, before {before:?}, after {after:?}"
                );
            }
        }
    }
}
