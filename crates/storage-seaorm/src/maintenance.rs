//! `ConversationMaintenance` for [`SeaOrmStore`]: selections across users, and the
//! analytics summary as SQL aggregates.
//!
//! The summary's statements are plain SQL that both backends read alike: times are
//! `BIGINT` milliseconds, so a bucket is an integer division by a literal length;
//! `GROUP BY 1, 2` names the bucket by position, which PostgreSQL needs because a
//! bound parameter repeated in the select list and the grouping would count as two
//! different expressions. Percentiles read one value per (bot, bucket) at its
//! nearest rank with `ORDER BY … LIMIT 1 OFFSET rank - 1`, never the whole list.
//! Handoffs are counted from the `handoffs` log, by bucket of request, so that a
//! bucket with handoffs and no message still has its entry.

use std::collections::BTreeMap;

use async_trait::async_trait;
use confab_domain::analytics::{BucketSummary, SummaryQuery, nearest_rank};
use confab_domain::bot::BotId;
use confab_domain::conversation::ConversationSelection;
use confab_domain::conversation::{ConversationId, ConversationStatus};
use confab_domain::error::RepoError;
use confab_domain::ports::ConversationMaintenance;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QueryResult, QuerySelect, Select, Statement, Value,
};
use uuid::Uuid;

use crate::entity::conversation;
use crate::error::{RowError, repo_error};
use crate::rows::millis;
use crate::store::SeaOrmStore;

#[async_trait]
impl ConversationMaintenance for SeaOrmStore {
    async fn select(
        &self,
        selection: &ConversationSelection,
        after: Option<ConversationId>,
        limit: u32,
    ) -> Result<Vec<ConversationId>, RepoError> {
        let mut select = selected(selection);
        if let Some(after) = after {
            select = select.filter(conversation::Column::Id.gt(after.as_uuid()));
        }
        let ids: Vec<Uuid> = select
            .select_only()
            .column(conversation::Column::Id)
            .order_by_asc(conversation::Column::Id)
            .limit(u64::from(limit))
            .into_tuple()
            .all(&self.db)
            .await
            .map_err(repo_error)?;
        Ok(ids.into_iter().map(ConversationId::from_uuid).collect())
    }

    async fn count(&self, selection: &ConversationSelection) -> Result<u64, RepoError> {
        selected(selection)
            .count(&self.db)
            .await
            .map_err(repo_error)
    }

    async fn summary(&self, query: &SummaryQuery) -> Result<Vec<BucketSummary>, RepoError> {
        let mut buckets: BTreeMap<(String, i64), BucketSummary> = BTreeMap::new();
        for row in self.query(&started_sql(query), range_values(query)).await? {
            let entry = bucket_entry(&mut buckets, &row)?;
            entry.conversations_started = count(&row, 2)?;
            entry.conversations_archived = count(&row, 3)?;
        }
        // Messages are read in the window, through the index on their times, then
        // joined to their conversations (the `CROSS JOIN` keeps SQLite's loops in
        // that order: from a bot's conversations it would read each one's every
        // message, for SQLite has no index on a conversation's times). A message at
        // or after `from` is in a conversation last active at or after `from`.
        let mut values = vec![millis(query.from).into()];
        values.extend(range_values(query));
        for row in self.query(&messages_sql(query), values).await? {
            let entry = bucket_entry(&mut buckets, &row)?;
            entry.conversations_active = count(&row, 2)?;
            entry.messages_user = count(&row, 3)?;
            entry.messages_bot = count(&row, 4)?;
            entry.messages_system = count(&row, 5)?;
            entry.messages_agent = count(&row, 6)?;
            entry.distinct_users = count(&row, 7)?;
            entry.replies = count(&row, 8)?;
            entry.failed_replies = count(&row, 9)?;
            entry.feedback_up = count(&row, 10)?;
            entry.feedback_down = count(&row, 11)?;
        }
        for row in self
            .query(&handoffs_sql(query), range_values(query))
            .await?
        {
            let entry = bucket_entry(&mut buckets, &row)?;
            entry.handoffs = count(&row, 2)?;
            entry.conversations_handed_off = count(&row, 3)?;
            entry.handoffs_claimed = count(&row, 4)?;
        }
        let length = query.granularity.millis();
        let (from, to) = (millis(query.from), millis(query.to));
        for ((bot, start), entry) in &mut buckets {
            let range = ((*start).max(from), (*start + length).min(to));
            if entry.replies > 0 {
                let latency = Ranked::latency(bot, range, entry.replies);
                entry.latency_p50_ms = self.value_at(&latency, 50).await?;
                entry.latency_p95_ms = self.value_at(&latency, 95).await?;
            }
            if entry.handoffs_claimed > 0 {
                let wait = Ranked::handoff_wait(bot, range, entry.handoffs_claimed);
                entry.handoff_wait_p50_ms = self.value_at(&wait, 50).await?;
                entry.handoff_wait_p90_ms = self.value_at(&wait, 90).await?;
            }
        }
        Ok(buckets.into_values().collect())
    }
}

impl SeaOrmStore {
    /// Runs `sql`, written with `?` placeholders, with `values` on this backend.
    async fn query(&self, sql: &str, values: Vec<Value>) -> Result<Vec<QueryResult>, RepoError> {
        let backend = self.db.get_database_backend();
        self.db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                placeholders(backend, sql),
                values,
            ))
            .await
            .map_err(repo_error)
    }

    /// The value at the `percentile`th nearest rank among `ranked`'s values.
    async fn value_at(&self, ranked: &Ranked, percentile: u64) -> Result<Option<i64>, RepoError> {
        let offset = i64::try_from(nearest_rank(percentile, ranked.count) - 1)
            .map_err(|_| RowError::new("analytics", "too many values to rank"))?;
        let mut values = ranked.values.clone();
        values.push(offset.into());
        let rows = self.query(ranked.sql, values).await?;
        rows.first()
            .map(|row| row.try_get_by_index::<i64>(0).map_err(repo_error))
            .transpose()
    }
}

/// The `count` values of one bot in one bucket that a percentile ranks: `sql` selects
/// them in ascending order with `values` bound, and ends in `OFFSET ?` for the rank.
struct Ranked {
    sql: &'static str,
    values: Vec<Value>,
    count: u64,
}

impl Ranked {
    /// The latencies of the `count` replies of `bot` with
    /// `range.0 <= timestamp < range.1`.
    fn latency(bot: &str, range: (i64, i64), count: u64) -> Self {
        Self {
            sql: "SELECT r.timestamp_ms - u.timestamp_ms \
                  FROM message_history r CROSS JOIN conversations c \
                  JOIN message_history u ON u.id = r.reply_to \
                  WHERE c.id = r.conversation_id \
                  AND r.sender = 'bot' AND c.bot_id = ? AND c.last_activity_ms >= ? \
                  AND r.timestamp_ms >= ? AND r.timestamp_ms < ? \
                  ORDER BY 1 LIMIT 1 OFFSET ?",
            values: vec![bot.into(), range.0.into(), range.0.into(), range.1.into()],
            count,
        }
    }

    /// The waits until claimed of the `count` claimed handoffs of `bot` requested
    /// with `range.0 <= requested_at < range.1`.
    fn handoff_wait(bot: &str, range: (i64, i64), count: u64) -> Self {
        Self {
            sql: "SELECT claimed_at_ms - requested_at_ms \
                  FROM handoffs \
                  WHERE bot_id = ? AND claimed_at_ms IS NOT NULL \
                  AND requested_at_ms >= ? AND requested_at_ms < ? \
                  ORDER BY 1 LIMIT 1 OFFSET ?",
            values: vec![bot.into(), range.0.into(), range.1.into()],
            count,
        }
    }
}

/// The conversations of a selection, as a query to refine.
fn selected(selection: &ConversationSelection) -> Select<conversation::Entity> {
    let mut select = conversation::Entity::find();
    if let Some(bot) = &selection.bot_id {
        select = select.filter(conversation::Column::BotId.eq(bot.as_str()));
    }
    if let Some(status) = selection.status {
        select = select.filter(conversation::Column::Status.eq(status.as_str()));
    }
    if let Some(at) = selection.inactive_before {
        select = select.filter(conversation::Column::LastActivityMs.lt(millis(at)));
    }
    if let Some(at) = selection.active_since {
        select = select.filter(conversation::Column::LastActivityMs.gte(millis(at)));
    }
    if let Some(at) = selection.created_before {
        select = select.filter(conversation::Column::CreatedAtMs.lt(millis(at)));
    }
    select
}

/// The bound values of the range statements: `from`, `to`, then the bot if any.
fn range_values(query: &SummaryQuery) -> Vec<Value> {
    let mut values: Vec<Value> = vec![millis(query.from).into(), millis(query.to).into()];
    if let Some(bot) = &query.bot_id {
        values.push(bot.as_str().into());
    }
    values
}

fn bot_filter(query: &SummaryQuery, column: &str) -> String {
    if query.bot_id.is_some() {
        format!(" AND {column} = ?")
    } else {
        String::new()
    }
}

/// Conversations started per bot and bucket, and how many of them are archived.
fn started_sql(query: &SummaryQuery) -> String {
    let length = query.granularity.millis();
    format!(
        "SELECT bot_id, (created_at_ms / {length}) * {length}, COUNT(*), \
         SUM(CASE WHEN status = '{archived}' THEN 1 ELSE 0 END) \
         FROM conversations \
         WHERE created_at_ms >= ? AND created_at_ms < ?{bot} \
         GROUP BY 1, 2",
        archived = ConversationStatus::Archived.as_str(),
        bot = bot_filter(query, "bot_id"),
    )
}

/// Per bot and bucket: active conversations, messages by sender (user, bot, system,
/// agent), distinct users, replies, failed replies, and the bot's messages rated up
/// and down.
fn messages_sql(query: &SummaryQuery) -> String {
    let length = query.granularity.millis();
    format!(
        "SELECT c.bot_id, (m.timestamp_ms / {length}) * {length}, \
         COUNT(DISTINCT m.conversation_id), \
         SUM(CASE WHEN m.sender = 'user' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN m.sender = 'bot' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN m.sender = 'system' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN m.sender = 'agent' THEN 1 ELSE 0 END), \
         COUNT(DISTINCT CASE WHEN m.sender = 'user' THEN c.user_id END), \
         SUM(CASE WHEN m.sender = 'bot' AND m.reply_to IS NOT NULL THEN 1 ELSE 0 END), \
         SUM(CASE WHEN m.sender = 'system' AND m.reply_to IS NOT NULL THEN 1 ELSE 0 END), \
         SUM(CASE WHEN m.sender = 'bot' AND m.feedback_rating = 'up' THEN 1 ELSE 0 END), \
         SUM(CASE WHEN m.sender = 'bot' AND m.feedback_rating = 'down' THEN 1 ELSE 0 END) \
         FROM message_history m CROSS JOIN conversations c \
         WHERE c.id = m.conversation_id \
         AND c.last_activity_ms >= ? AND m.timestamp_ms >= ? AND m.timestamp_ms < ?{bot} \
         GROUP BY 1, 2",
        bot = bot_filter(query, "c.bot_id"),
    )
}

/// Per bot and bucket of request: handoffs, the conversations they were in, and how
/// many of them an agent claimed.
fn handoffs_sql(query: &SummaryQuery) -> String {
    let length = query.granularity.millis();
    format!(
        "SELECT bot_id, (requested_at_ms / {length}) * {length}, COUNT(*), \
         COUNT(DISTINCT conversation_id), \
         SUM(CASE WHEN claimed_at_ms IS NOT NULL THEN 1 ELSE 0 END) \
         FROM handoffs \
         WHERE requested_at_ms >= ? AND requested_at_ms < ?{bot} \
         GROUP BY 1, 2",
        bot = bot_filter(query, "bot_id"),
    )
}

/// The summary of the row's (bot, bucket), created empty when new.
fn bucket_entry<'a>(
    buckets: &'a mut BTreeMap<(String, i64), BucketSummary>,
    row: &QueryResult,
) -> Result<&'a mut BucketSummary, RepoError> {
    let bot: String = row.try_get_by_index(0).map_err(repo_error)?;
    let start: i64 = row.try_get_by_index(1).map_err(repo_error)?;
    let bot_id = BotId::parse(&bot).map_err(|_| RowError::new("analytics", "bad bot_id"))?;
    Ok(buckets
        .entry((bot, start))
        .or_insert_with(|| BucketSummary {
            bot_id,
            bucket_start_ms: start,
            conversations_started: 0,
            conversations_active: 0,
            conversations_archived: 0,
            messages_user: 0,
            messages_bot: 0,
            messages_system: 0,
            messages_agent: 0,
            distinct_users: 0,
            replies: 0,
            latency_p50_ms: None,
            latency_p95_ms: None,
            failed_replies: 0,
            handoffs: 0,
            handoffs_claimed: 0,
            conversations_handed_off: 0,
            handoff_wait_p50_ms: None,
            handoff_wait_p90_ms: None,
            feedback_up: 0,
            feedback_down: 0,
        }))
}

fn count(row: &QueryResult, index: usize) -> Result<u64, RepoError> {
    let value: i64 = row.try_get_by_index(index).map_err(repo_error)?;
    u64::try_from(value).map_err(|_| RowError::new("analytics", "negative count").into())
}

/// `sql` with its `?` placeholders numbered `$1, $2 …` for PostgreSQL. The statements
/// of this module hold no `?` other than placeholders.
fn placeholders(backend: DbBackend, sql: &str) -> String {
    if backend != DbBackend::Postgres {
        return sql.to_owned();
    }
    let mut numbered = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            numbered.push_str(&format!("${n}"));
        } else {
            numbered.push(c);
        }
    }
    numbered
}
