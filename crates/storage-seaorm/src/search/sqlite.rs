//! Newest-first search on SQLite without sorting every match.
//!
//! FTS5 hands out a word's matches in rowid order, newest rowid first, at the cost
//! of reading its index alone; the rowid is the message's at insertion. Insertion
//! order is nearly newest-first, but nothing makes it so: two writers' clocks, a
//! clock set back, or a `VACUUM` that renumbers `message_history` (whose rowids are
//! not an `INTEGER PRIMARY KEY`) each break it. So the walk uses that order only to
//! find candidates quickly, and proves its page another way before it stops:
//!
//! 1. Read the next chunk of matches by rowid, descending, and keep the newest
//!    `wanted` of those in scope. The chunk doubles each time, so that a walk that
//!    has to go on costs at most about twice reading every match.
//! 2. Let the threshold be the oldest message kept (none while fewer are kept). Only
//!    a message newer than it can change the page, and each such message is in the
//!    conversations searched: list them all, reading each conversation back from its
//!    newest message by seq while the messages are that recent (a conversation's
//!    times never decrease in seq order), and look each one up in the search index
//!    under its own rowid. Where the entry there holds its id, that entry is its only
//!    one (an entry is written when a message is inserted, and ids are not reused).
//!    If that rowid has been walked, the message is in the page if and only if it
//!    matches; if not, ask the index whether that one entry matches. Once every
//!    newer message is settled so, the page is final.
//! 3. Otherwise (more newer messages than the check reads, too many not walked yet,
//!    or one indexed under another rowid), go on walking. A walk that reaches the
//!    end of the matches has seen them all, so its page is final too.
//!
//! For a common word the first chunk of newest rowids holds the page and the check
//! reads about one page of messages; for a rare word the walk soon reaches the end.
//! The walk and the check read only each message's time and id; the page's
//! messages are read whole at the end.

use std::cmp::Reverse;
use std::collections::HashSet;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryResult,
    TransactionTrait,
};
use uuid::Uuid;

use confab_domain::error::RepoError;
use confab_domain::search::SearchQuery;

use super::{NEWEST_FIRST, Sql};
use crate::entity::message;
use crate::error::repo_error;
use crate::store::SeaOrmStore;

/// The first chunk of matches read, in pages (the limit plus one): enough that a word
/// in about one message of four fills the page from it.
const FIRST_CHUNK_PAGES: usize = 4;

/// How many messages newer than the threshold the check reads at most, in chunks:
/// beyond that a longer walk is cheaper than the check (a message checked costs
/// about what a match walked does, and a walk reads whole chunks).
const CHECKED_CHUNKS: usize = 4;

/// How many messages not walked yet the check asks the index about at most: asking
/// whether one entry matches costs about as much as walking ten matches of a common
/// word, since FTS5 finds the entry by reading through the word's list.
const PROBED_MESSAGES: usize = 32;

/// A message as the walk orders it: its time, then its id, both descending.
type Key = (i64, Uuid);

/// A chunk of matches, as walked.
struct Chunk {
    /// How many matches the index gave.
    read: usize,
    /// The lowest rowid among them, where the next chunk starts below.
    lowest: Option<i64>,
    /// Those of them in scope and after the cursor.
    found: Vec<Key>,
}

impl SeaOrmStore {
    /// The `wanted` newest matches of `query`, newest first.
    pub(super) async fn newest_sqlite(
        &self,
        query: &SearchQuery,
        wanted: usize,
    ) -> Result<Vec<message::Model>, RepoError> {
        // The chunks and the check must see the same messages: a conversation
        // deleted between two of them would otherwise leave its matches in the page.
        let txn = self.db.begin().await.map_err(repo_error)?;
        let mut newest = Vec::with_capacity(wanted);
        let mut below = None;
        let mut size = wanted.saturating_mul(FIRST_CHUNK_PAGES);
        loop {
            let chunk = read_chunk(&txn, query, below, size, wanted).await?;
            keep_newest(&mut newest, chunk.found, wanted);
            let (true, Some(lowest)) = (chunk.read == size, chunk.lowest) else {
                break;
            };
            below = Some(lowest);
            let threshold = (newest.len() == wanted)
                .then(|| newest.last().copied())
                .flatten();
            let most = size.saturating_mul(CHECKED_CHUNKS);
            if at_most_newer(&txn, query, threshold, most).await?
                && let Some(newer) = newer_matches(&txn, query, threshold, lowest, most).await?
            {
                keep_newest(&mut newest, newer, wanted);
                break;
            }
            size = size.saturating_mul(2);
        }
        let ids = newest.iter().map(|(_, id)| *id).collect::<Vec<_>>();
        let mut messages = if ids.is_empty() {
            Vec::new()
        } else {
            message::Entity::find()
                .filter(message::Column::Id.is_in(ids))
                .all(&txn)
                .await
                .map_err(repo_error)?
        };
        txn.commit().await.map_err(repo_error)?;
        messages.sort_unstable_by_key(|message| Reverse((message.timestamp_ms, message.id)));
        Ok(messages)
    }
}

/// Merges `more` into `newest`, which keeps the `wanted` newest keys, newest first.
fn keep_newest(newest: &mut Vec<Key>, more: Vec<Key>, wanted: usize) {
    newest.extend(more);
    newest.sort_unstable_by_key(|key| Reverse(*key));
    newest.dedup();
    newest.truncate(wanted);
}

/// The key in the `timestamp_ms` and `id` columns of `row`, or `None` where an outer
/// join left them empty.
fn key_in(row: &QueryResult) -> Result<Option<Key>, RepoError> {
    let id: Option<Uuid> = row.try_get("", "id").map_err(repo_error)?;
    let Some(id) = id else {
        return Ok(None);
    };
    let timestamp: i64 = row.try_get("", "timestamp_ms").map_err(repo_error)?;
    Ok(Some((timestamp, id)))
}

/// The `size` matches of `query` with the highest rowids below `below`, and the
/// `wanted` newest of them in scope and after the cursor.
async fn read_chunk(
    txn: &DatabaseTransaction,
    query: &SearchQuery,
    below: Option<i64>,
    size: usize,
    wanted: usize,
) -> Result<Chunk, RepoError> {
    let mut sql = Sql::new(query, txn.get_database_backend());
    let below = match below {
        Some(rowid) => format!(" AND rowid < {}", sql.bind(rowid)),
        None => String::new(),
    };
    let size = sql.bind(i64::try_from(size).unwrap_or(i64::MAX));
    let filters = sql.conversation_filters(query);
    let cursor = sql.before_cursor(query);
    let wanted = sql.bind(i64::try_from(wanted).unwrap_or(i64::MAX));
    // Only the chunk's extent and its newest messages in scope come back: every row
    // handed to the driver costs more than SQLite's work on it. The outer join
    // returns the extent even when nothing in the chunk is in scope.
    sql.text = format!(
        "WITH s AS MATERIALIZED \
           (SELECT rowid AS search_rowid, message_id FROM message_search \
            WHERE message_search MATCH #1#{below} ORDER BY rowid DESC LIMIT {size}) \
         SELECT (SELECT count(*) FROM s) AS chunk_read, \
                (SELECT min(search_rowid) FROM s) AS chunk_lowest, k.id, k.timestamp_ms \
         FROM (SELECT 1) AS one LEFT JOIN \
           (SELECT m.id, m.timestamp_ms FROM s JOIN message_history m ON m.id = s.message_id \
            WHERE EXISTS (SELECT 1 FROM conversations c \
                          WHERE c.id = m.conversation_id{filters}){cursor} \
            ORDER BY {NEWEST_FIRST} LIMIT {wanted}) AS k ON TRUE"
    );
    let rows = txn
        .query_all_raw(sql.statement()?)
        .await
        .map_err(repo_error)?;
    let Some(first) = rows.first() else {
        return Err(RepoError::Internal("a chunk without a row".into()));
    };
    let read: i64 = first.try_get("", "chunk_read").map_err(repo_error)?;
    let mut chunk = Chunk {
        read: usize::try_from(read).unwrap_or(0),
        lowest: first.try_get("", "chunk_lowest").map_err(repo_error)?,
        found: Vec::new(),
    };
    for row in &rows {
        chunk.found.extend(key_in(row)?);
    }
    Ok(chunk)
}

/// `AND …` conditions keeping messages `m` newer than `threshold`, when there is one.
fn newer_than(sql: &mut Sql, threshold: Option<Key>) -> String {
    let Some((at, id)) = threshold else {
        return String::new();
    };
    let at = sql.bind(at);
    let id = sql.bind(id);
    format!(" AND m.timestamp_ms >= {at} AND (m.timestamp_ms, m.id) > ({at}, {id})")
}

/// `WITH RECURSIVE recent(conversation_id, seq) AS (…)`: the conversations searched
/// and their messages at `threshold`'s time or later (all of them without one), as
/// seqs, and at most `most` plus one of them in all.
///
/// A conversation's messages that recent are its newest (its times never decrease
/// in seq order), and none are in a conversation last active before that time: so
/// each conversation is read back from its last seq while the message before is
/// that recent. It reads only the seq index, one message per step. Its last
/// message may be older than the threshold, and messages above a search cursor are
/// read too: such extras make a check give up sooner, never give a wrong page.
fn recent(sql: &mut Sql, query: &SearchQuery, threshold: Option<Key>, most: usize) -> String {
    let filters = sql.conversation_filters(query);
    let (active, step) = match threshold {
        Some((at, _)) => {
            let at = sql.bind(at);
            (
                format!(" AND c.last_activity_ms >= {at}"),
                format!(
                    " AND (SELECT before.timestamp_ms FROM message_history AS before \
                     WHERE before.conversation_id = r.conversation_id \
                     AND before.seq = r.seq - 1) >= {at}"
                ),
            )
        }
        None => (String::new(), String::new()),
    };
    let limit = sql.bind(i64::try_from(most.saturating_add(1)).unwrap_or(i64::MAX));
    format!(
        "WITH RECURSIVE recent(conversation_id, seq) AS ( \
           SELECT c.id, c.last_seq FROM conversations c \
           WHERE c.last_seq > 0{filters}{active} \
           UNION ALL \
           SELECT r.conversation_id, r.seq - 1 FROM recent r WHERE r.seq > 1{step} \
           LIMIT {limit}) "
    )
}

/// Whether at most `most` messages searched can be newer than `threshold`: so that
/// a check bound to fail (a rare word's page reaching far back) costs little, a
/// conversation with more than `most` such messages is seen from one message, the
/// one `most` before its last, and only otherwise are they counted ([`recent`]).
async fn at_most_newer(
    txn: &DatabaseTransaction,
    query: &SearchQuery,
    threshold: Option<Key>,
    most: usize,
) -> Result<bool, RepoError> {
    let mut sql = Sql::new(query, txn.get_database_backend());
    let recent = recent(&mut sql, query, threshold, most);
    let filters = sql.conversation_filters(query);
    let recent_enough = match threshold {
        Some((at, _)) => format!(" AND m.timestamp_ms >= {}", sql.bind(at)),
        None => String::new(),
    };
    let most = sql.bind(i64::try_from(most).unwrap_or(i64::MAX));
    sql.text = format!(
        "{recent}SELECT CASE \
           WHEN EXISTS (SELECT 1 FROM conversations c JOIN message_history m \
                        ON m.conversation_id = c.id AND m.seq = c.last_seq - {most} \
                        WHERE 1{filters}{recent_enough}) THEN 0 \
           ELSE (SELECT count(*) FROM recent) <= {most} END"
    );
    let row = txn
        .query_one_raw(sql.statement()?)
        .await
        .map_err(repo_error)?
        .ok_or_else(|| RepoError::Internal("a check without a row".into()))?;
    row.try_get_by_index(0).map_err(repo_error)
}

/// Every match of `query` newer than `threshold` (every match, without one) that is
/// not among those walked, the walk having read every match from rowid `walked` up;
/// `None` when that cannot be known from at most `most` messages.
async fn newer_matches(
    txn: &DatabaseTransaction,
    query: &SearchQuery,
    threshold: Option<Key>,
    walked: i64,
    most: usize,
) -> Result<Option<Vec<Key>>, RepoError> {
    let backend = txn.get_database_backend();
    let mut sql = Sql::new(query, backend);
    let recent = recent(&mut sql, query, threshold, most);
    let cursor = sql.before_cursor(query);
    let newer = newer_than(&mut sql, threshold);
    sql.text = format!(
        "{recent}SELECT m.id, m.timestamp_ms, m.rowid AS history_rowid, \
           (1{cursor}{newer}) AS candidate, \
           EXISTS (SELECT 1 FROM message_search \
                   WHERE message_search.rowid = m.rowid \
                     AND message_search.message_id = m.id) AS indexed \
         FROM recent r JOIN message_history m \
           ON m.conversation_id = r.conversation_id AND m.seq = r.seq"
    );
    let rows = txn
        .query_all_raw(sql.statement()?)
        .await
        .map_err(repo_error)?;
    if rows.len() > most {
        return Ok(None);
    }
    // Those walked are settled: a match among them is kept already.
    let mut unwalked = Vec::new();
    for row in &rows {
        let candidate: bool = row.try_get("", "candidate").map_err(repo_error)?;
        if !candidate {
            continue;
        }
        let indexed: bool = row.try_get("", "indexed").map_err(repo_error)?;
        if !indexed {
            return Ok(None);
        }
        let rowid: i64 = row.try_get("", "history_rowid").map_err(repo_error)?;
        if rowid < walked {
            unwalked.push((rowid, key_in(row)?));
        }
    }
    if unwalked.len() > PROBED_MESSAGES {
        return Ok(None);
    }
    if unwalked.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let mut probe = Sql::new(query, backend);
    let rowids = unwalked
        .iter()
        .map(|(rowid, _)| probe.bind(*rowid))
        .collect::<Vec<_>>()
        .join(", ");
    probe.text = format!(
        "SELECT rowid FROM message_search \
         WHERE message_search MATCH #1# AND rowid IN ({rowids})"
    );
    let matching = txn
        .query_all_raw(probe.statement()?)
        .await
        .map_err(repo_error)?
        .iter()
        .map(|row| row.try_get_by_index::<i64>(0))
        .collect::<Result<HashSet<_>, _>>()
        .map_err(repo_error)?;
    Ok(Some(
        unwalked
            .into_iter()
            .filter(|(rowid, _)| matching.contains(rowid))
            .filter_map(|(_, key)| key)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use confab_domain::conversation::PageSize;
    use confab_domain::message::{Appended, MessageContent, NewMessage};
    use confab_domain::ports::MessageRepository;
    use confab_domain::search::{SearchOrder, SearchScope, SearchText};
    use confab_domain::timestamp::Timestamp;
    use confab_domain::user::UserId;

    use super::*;
    use crate::fixtures::{conversation, message, now};
    use crate::testing::sqlite_temp;

    /// The check settles when the messages at the threshold's time or later are
    /// few enough, from the last of them down to the threshold, and gives up at
    /// once when the message `most` before the last is that recent: with ten
    /// messages a millisecond apart and the threshold at the sixth, five qualify.
    #[tokio::test]
    async fn the_check_counts_a_conversations_recent_messages_by_seq() {
        let db = sqlite_temp().await.expect("database");
        let store = db.store();
        let id = conversation(&store).await.id;
        let mut keys = Vec::new();
        for n in 1..=10 {
            let new = NewMessage {
                content: MessageContent::trusted(format!("word{n}")),
                timestamp: Timestamp::from_unix_millis(now().unix_millis() + n)
                    .expect("valid time"),
                ..message(id, None)
            };
            let Appended::Stored(stored) = store.append(&new).await.expect("appended") else {
                panic!("message {n} not stored");
            };
            keys.push((stored.timestamp.unix_millis(), stored.id.as_uuid()));
        }
        let query = SearchQuery {
            text: SearchText::parse("word1").expect("search text"),
            scope: SearchScope::User(UserId::parse("alice").expect("user id")),
            bot_id: None,
            status: None,
            order: SearchOrder::Newest,
            cursor: None,
            limit: PageSize::parse(20, 50).expect("page size"),
        };
        let txn = db.connection().begin().await.expect("transaction");
        let sixth = Some(keys[5]);
        assert!(
            at_most_newer(&txn, &query, sixth, 5)
                .await
                .expect("checked")
        );
        assert!(
            !at_most_newer(&txn, &query, sixth, 4)
                .await
                .expect("checked")
        );
        assert!(
            at_most_newer(&txn, &query, None, 10)
                .await
                .expect("checked")
        );
        assert!(!at_most_newer(&txn, &query, None, 9).await.expect("checked"));
        txn.commit().await.expect("committed");
    }
}
