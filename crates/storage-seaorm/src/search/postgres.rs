//! Newest-first search on PostgreSQL without sorting every match.
//!
//! The GIN index finds a word's matches in no useful order, so a common word costs a
//! sort of all its matches. Instead, read the newest messages of the conversations
//! searched (each conversation's newest through the index on its times, then the
//! newest of those) and test each for the words with the same expression the index
//! holds. When that prefix of the newest-first order holds a full page of matches,
//! or is every message searched, the page is exactly the full sort's: every message
//! left out is older than every one read. Otherwise (a rarer word, where the GIN
//! index is quick) the caller falls back to the full sort.
//!
//! The prefix costs up to its size for each conversation searched, so it is tried
//! only over a bounded number of conversations; a search over more (an
//! administrator's, or a bot's over all its conversations) sorts every match.

use sea_orm::{ConnectionTrait, FromQueryResult, QueryResult};
use uuid::Uuid;

use confab_domain::error::RepoError;
use confab_domain::search::SearchQuery;

use super::{NEWEST_FIRST, Sql};
use crate::entity::message;
use crate::error::repo_error;
use crate::store::SeaOrmStore;

/// How many newest messages are tested, in pages (the limit plus one): a page fills
/// from them for a word in about one message of ten.
const PREFIX_PAGES: usize = 16;

/// The most conversations searched for which the prefix is tried.
const PREFIX_CONVERSATIONS: i64 = 64;

impl SeaOrmStore {
    /// The `wanted` newest matches of `query`, newest first, when the newest messages
    /// searched show them; `None` when only sorting every match can.
    pub(super) async fn newest_postgres(
        &self,
        query: &SearchQuery,
        wanted: usize,
    ) -> Result<Option<Vec<message::Model>>, RepoError> {
        let mut sql = Sql::new(query, self.db.get_database_backend());
        let prefix = wanted.saturating_mul(PREFIX_PAGES);
        let filters = sql.conversation_filters(query);
        let cursor = sql.before_cursor(query);
        let most = sql.bind(PREFIX_CONVERSATIONS);
        let size = sql.bind(i64::try_from(prefix).unwrap_or(i64::MAX));
        let limit = sql.bind(i64::try_from(wanted).unwrap_or(i64::MAX));
        // One more conversation than the most tells that there are too many, and
        // the prefix is then left empty rather than read. The outer join returns
        // the counts even when nothing matches.
        sql.text = format!(
            "WITH searched AS (SELECT c.id FROM conversations c WHERE TRUE{filters} \
                               LIMIT {most} + 1), \
             prefix AS (SELECT m.* FROM searched c CROSS JOIN LATERAL \
                          (SELECT * FROM message_history m \
                           WHERE m.conversation_id = c.id{cursor} \
                           ORDER BY {NEWEST_FIRST} LIMIT {size}) m \
                        WHERE (SELECT count(*) FROM searched) <= {most} \
                        ORDER BY {NEWEST_FIRST} LIMIT {size}) \
             SELECT (SELECT count(*) FROM searched) AS searched_conversations, \
                    (SELECT count(*) FROM prefix) AS prefix_messages, hit.* \
             FROM (SELECT 1) AS one LEFT JOIN LATERAL \
               (SELECT m.* FROM prefix m \
                WHERE to_tsvector('simple', m.content) @@ to_tsquery('simple', #1#) \
                ORDER BY {NEWEST_FIRST} LIMIT {limit}) hit ON TRUE"
        );
        let rows = self
            .db
            .query_all_raw(sql.statement()?)
            .await
            .map_err(repo_error)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let searched: i64 = first
            .try_get("", "searched_conversations")
            .map_err(repo_error)?;
        let read: i64 = first.try_get("", "prefix_messages").map_err(repo_error)?;
        if searched > PREFIX_CONVERSATIONS {
            return Ok(None);
        }
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            found.extend(message_in(row)?);
        }
        let everything_read = usize::try_from(read).is_ok_and(|read| read < prefix);
        Ok((found.len() == wanted || everything_read).then_some(found))
    }
}

/// The message in the `m.*` columns of `row`, or `None` where an outer join left
/// them empty.
fn message_in(row: &QueryResult) -> Result<Option<message::Model>, RepoError> {
    let id: Option<Uuid> = row.try_get("", "id").map_err(repo_error)?;
    match id {
        Some(_) => message::Model::from_query_result(row, "")
            .map(Some)
            .map_err(repo_error),
        None => Ok(None),
    }
}
