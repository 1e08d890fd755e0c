//! Full-text search on [`SeaOrmStore`]: in each backend's own engine (SQLite's FTS5
//! table `message_search`, PostgreSQL's `tsvector` GIN index; see the migration
//! `m20261204_000002_add_message_search`), both fed the query's words as the domain
//! split them, so that they match alike.
//!
//! One plan answers every query exactly: all matches joined to their conversations,
//! sorted, and the page taken (`every_match`). Rank order and rare words need no
//! other. For a word most messages hold, it reads and sorts every one of them to
//! return twenty, so newest-first pages first try a plan that reads only the newest
//! matches, and use its page only when it is provably the one the full sort gives:
//!
//! - `sqlite`: walks the matches in the index's rowid order in growing chunks, and
//!   stops once the messages newer than its page have all been checked.
//! - `postgres`: filters the newest messages of the conversations searched, and
//!   falls back to the full sort when too few of them match.

mod postgres;
mod sqlite;

use confab_domain::error::RepoError;
use confab_domain::message::Message;
use confab_domain::search::{SearchCursor, SearchOrder, SearchQuery, SearchScope};
use sea_orm::{DbBackend, EntityTrait, Statement, Value};

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
        // A store returns one result more than the page, so that the service knows
        // whether a next page exists.
        let wanted = usize::try_from(query.limit.get())
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let newest_first = query.order == SearchOrder::Newest
            && !matches!(query.cursor, Some(SearchCursor::Offset(_)));
        let rows = if !newest_first {
            self.every_match(query).await?
        } else if self.db.get_database_backend() == DbBackend::Postgres {
            match self.newest_postgres(query, wanted).await? {
                Some(rows) => rows,
                None => self.every_match(query).await?,
            }
        } else {
            self.newest_sqlite(query, wanted).await?
        };
        Ok(rows
            .into_iter()
            .map(Message::try_from)
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// Every match of `query`, sorted in its order, and the page taken: exact for
    /// every query, and as slow as the word is common.
    async fn every_match(&self, query: &SearchQuery) -> Result<Vec<message::Model>, RepoError> {
        let backend = self.db.get_database_backend();
        let mut sql = Sql::new(query, backend);
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
        let filters = sql.conversation_filters(query);
        let mut offset = 0;
        let cursor = match query.cursor {
            Some(SearchCursor::Offset(skip)) => {
                offset = i64::try_from(skip).unwrap_or(i64::MAX);
                String::new()
            }
            _ => sql.before_cursor(query),
        };
        let order = match query.order {
            SearchOrder::Newest => NEWEST_FIRST.to_owned(),
            SearchOrder::Rank => format!("{rank}, {NEWEST_FIRST}"),
        };
        let limit = sql.bind(i64::from(query.limit.get() + 1));
        let offset = sql.bind(offset);
        sql.text = format!(
            "SELECT m.* FROM {from} JOIN conversations c ON c.id = m.conversation_id \
             WHERE {matches}{filters}{cursor} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
        );
        message::Entity::find()
            .from_raw_sql(sql.statement()?)
            .all(&self.db)
            .await
            .map_err(repo_error)
    }
}

/// Newest first, the order of the newest-first pages and of their cursors, for
/// messages named `m`.
const NEWEST_FIRST: &str = "m.timestamp_ms DESC, m.id DESC";

/// Hand-written search SQL being put together: its text, with the query's words as
/// parameter `#1#`, and the values of its parameters.
struct Sql {
    text: String,
    parameters: Vec<Value>,
    backend: DbBackend,
}

impl Sql {
    /// No text yet, and `query`'s words as the first parameter. Each word is a run of
    /// letters and digits: quoting it is all either query language needs, and
    /// neither can read an operator into it.
    fn new(query: &SearchQuery, backend: DbBackend) -> Self {
        let terms = query.text.terms();
        let words = match backend {
            DbBackend::Postgres => terms.join(" & "),
            _ => terms
                .iter()
                .map(|term| format!("\"{term}\""))
                .collect::<Vec<_>>()
                .join(" "),
        };
        Self {
            text: String::new(),
            parameters: vec![words.into()],
            backend,
        }
    }

    /// A new parameter holding `value`, as it is written in the text.
    fn bind(&mut self, value: impl Into<Value>) -> String {
        self.parameters.push(value.into());
        format!("#{}#", self.parameters.len())
    }

    /// `AND …` conditions on the conversation `c` for the query's scope, bot and
    /// status; empty for everyone's conversations in any status.
    fn conversation_filters(&mut self, query: &SearchQuery) -> String {
        let mut filters = String::new();
        if let SearchScope::User(user) = &query.scope {
            let user = self.bind(user.as_str());
            filters.push_str(&format!(" AND c.user_id = {user}"));
        }
        if let Some(bot) = &query.bot_id {
            let bot = self.bind(bot.as_str());
            filters.push_str(&format!(" AND c.bot_id = {bot}"));
        }
        if let Some(status) = query.status {
            let status = self.bind(status.as_str());
            filters.push_str(&format!(" AND c.status = {status}"));
        }
        filters
    }

    /// `AND …` conditions keeping the messages `m` that come after a newest-first
    /// cursor; empty without one. The time alone is stated too, so that an index on
    /// times (PostgreSQL's on a conversation's) can serve the condition.
    fn before_cursor(&mut self, query: &SearchQuery) -> String {
        let Some(SearchCursor::Before { timestamp, id }) = query.cursor else {
            return String::new();
        };
        let at = self.bind(millis(timestamp));
        let id = self.bind(id.as_uuid());
        format!(" AND m.timestamp_ms <= {at} AND (m.timestamp_ms, m.id) < ({at}, {id})")
    }

    fn statement(&self) -> Result<Statement, RepoError> {
        statement(&self.text, &self.parameters, self.backend)
    }
}
