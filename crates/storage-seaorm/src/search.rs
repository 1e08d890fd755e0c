//! Full-text search on [`SeaOrmStore`]: one query per backend, each in its own
//! engine (SQLite's FTS5 table `message_search`, PostgreSQL's `tsvector` GIN index;
//! see the migration `m20261204_000002_add_message_search`), both fed the query's
//! words as the domain split them, so that they match alike.

use confab_domain::error::RepoError;
use confab_domain::message::Message;
use confab_domain::search::{SearchCursor, SearchOrder, SearchQuery, SearchScope};
use sea_orm::{DbBackend, EntityTrait, Value};

use crate::entity::message;
use crate::error::repo_error;
use crate::rows::millis;
use crate::sql::statement;
use crate::store::SeaOrmStore;

impl SeaOrmStore {
    pub(crate) async fn search_messages(
        &self,
        query: &SearchQuery,
    ) -> Result<Vec<Message>, RepoError> {
        let backend = self.db.get_database_backend();
        let terms = query.text.terms();
        // Each word is a run of letters and digits: quoting it is all either query
        // language needs, and neither can read an operator into it.
        let (from, matches, rank) = match backend {
            DbBackend::Postgres => (
                "message_history m",
                "to_tsvector('simple', m.content) @@ to_tsquery('simple', #1#)",
                "ts_rank(to_tsvector('simple', m.content), to_tsquery('simple', #1#)) DESC",
            ),
            _ => (
                "message_search s JOIN message_history m ON m.id = s.message_id",
                "message_search MATCH #1#",
                "s.rank",
            ),
        };
        let words = match backend {
            DbBackend::Postgres => terms.join(" & "),
            _ => terms
                .iter()
                .map(|term| format!("\"{term}\""))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let mut parameters: Vec<Value> = vec![words.into()];
        let mut parameter = |value: Value| {
            parameters.push(value);
            format!("#{}#", parameters.len())
        };
        let mut sql = format!(
            "SELECT m.* FROM {from} JOIN conversations c ON c.id = m.conversation_id \
             WHERE {matches}"
        );
        if let SearchScope::User(user) = &query.scope {
            sql.push_str(&format!(
                " AND c.user_id = {}",
                parameter(user.as_str().into())
            ));
        }
        if let Some(bot) = &query.bot_id {
            sql.push_str(&format!(
                " AND c.bot_id = {}",
                parameter(bot.as_str().into())
            ));
        }
        if let Some(status) = query.status {
            sql.push_str(&format!(
                " AND c.status = {}",
                parameter(status.as_str().into())
            ));
        }
        let mut offset = 0;
        match query.cursor {
            Some(SearchCursor::Before { timestamp, id }) => {
                let at = parameter(millis(timestamp).into());
                let id = parameter(id.as_uuid().into());
                sql.push_str(&format!(" AND (m.timestamp_ms, m.id) < ({at}, {id})"));
            }
            Some(SearchCursor::Offset(skip)) => {
                offset = i64::try_from(skip).unwrap_or(i64::MAX);
            }
            None => {}
        }
        let order = match query.order {
            SearchOrder::Newest => "m.timestamp_ms DESC, m.id DESC".to_owned(),
            SearchOrder::Rank => format!("{rank}, m.timestamp_ms DESC, m.id DESC"),
        };
        let limit = parameter(i64::from(query.limit.get() + 1).into());
        let offset = parameter(offset.into());
        sql.push_str(&format!(" ORDER BY {order} LIMIT {limit} OFFSET {offset}"));
        let rows = message::Entity::find()
            .from_raw_sql(statement(&sql, &parameters, backend)?)
            .all(&self.db)
            .await
            .map_err(repo_error)?;
        Ok(rows
            .into_iter()
            .map(Message::try_from)
            .collect::<Result<Vec<_>, _>>()?)
    }
}
