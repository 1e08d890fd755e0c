//! Analytics for bot owners: what a summary counts per bot and time bucket, and the
//! one definition of bucketing and percentiles every storage adapter follows, so that
//! SQLite, PostgreSQL and the in-memory fake give the same numbers.
//!
//! Times are Unix milliseconds (UTC). A bucket starts at a multiple of its length
//! (`millis - millis % length`), so day buckets start at midnight UTC.

use crate::bot::BotId;
use crate::error::ValidationError;
use crate::timestamp::Timestamp;

/// The length of a summary's buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    /// One bucket per hour.
    Hour,
    /// One bucket per UTC day.
    Day,
}

impl Granularity {
    /// The bucket's length in milliseconds.
    pub fn millis(self) -> i64 {
        match self {
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    /// The start of the bucket holding `millis`.
    pub fn bucket_of(self, millis: i64) -> i64 {
        millis.div_euclid(self.millis()) * self.millis()
    }
}

/// Which summary to compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummaryQuery {
    /// Only this bot; every bot when `None`.
    pub bot_id: Option<BotId>,
    /// Start of the range, inclusive.
    pub from: Timestamp,
    /// End of the range, exclusive.
    pub to: Timestamp,
    /// Bucket length.
    pub granularity: Granularity,
}

impl SummaryQuery {
    /// Most buckets one summary may span, so that a request cannot ask for an
    /// unbounded amount of work.
    pub const MAX_BUCKETS: i64 = 2_000;

    /// Checks that the range is not empty and spans at most
    /// [`SummaryQuery::MAX_BUCKETS`] buckets.
    pub fn parse(
        bot_id: Option<BotId>,
        from: Timestamp,
        to: Timestamp,
        granularity: Granularity,
    ) -> Result<Self, ValidationError> {
        let span = to.unix_millis() - from.unix_millis();
        if span <= 0 || span / granularity.millis() >= Self::MAX_BUCKETS {
            return Err(ValidationError::TimestampOutOfRange);
        }
        Ok(Self {
            bot_id,
            from,
            to,
            granularity,
        })
    }
}

/// The numbers of one bot in one bucket.
///
/// - Conversations *started* are those created in the bucket; of these, *archived*
///   counts those archived now (confab keeps no archive time).
/// - Conversations *active* are those with at least one message in the bucket.
/// - Messages are counted by sender; *distinct users* are the users who sent at
///   least one message in the bucket.
/// - A *reply* is a bot message answering a user message (`reply_to`), in the bucket
///   of the reply; its latency is the reply's timestamp minus the user message's.
///   Percentiles use the nearest-rank method ([`nearest_rank`]).
/// - A *failed reply* is a system message answering a user message: the bot failed
///   or timed out.
/// - A *handoff* runs from a move to the agents' queue until the conversation is back
///   with its bot; it counts in the bucket of its request, whatever happened later,
///   so that a day's handoffs stay that day's however long they last. Its *wait* is
///   the time from the request to an agent's claim; like *archived*, *claimed* means
///   claimed now, so the waits of a recent bucket still grow as agents claim its
///   handoffs. Wait percentiles use the nearest-rank method too. The notices of the
///   moves are `system` messages and count among them.
/// - The *share* of conversations handed off is [`BucketSummary::handoff_share`].
/// - *Feedback* counts the users' ratings of the bot's messages stored in the bucket,
///   as they stand now (a rating changed later counts as its latest value); the
///   share of them rated is [`BucketSummary::feedback_share`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSummary {
    /// The bot.
    pub bot_id: BotId,
    /// Start of the bucket, Unix milliseconds.
    pub bucket_start_ms: i64,
    /// Conversations created in the bucket.
    pub conversations_started: u64,
    /// Conversations with a message in the bucket.
    pub conversations_active: u64,
    /// Of the conversations started in the bucket, those archived now.
    pub conversations_archived: u64,
    /// Messages from users.
    pub messages_user: u64,
    /// Messages from the bot.
    pub messages_bot: u64,
    /// Messages from confab itself.
    pub messages_system: u64,
    /// Messages from agents, the people who answer during a handoff.
    pub messages_agent: u64,
    /// Users who sent a message.
    pub distinct_users: u64,
    /// Bot replies to user messages.
    pub replies: u64,
    /// Median reply latency in milliseconds, when there were replies.
    pub latency_p50_ms: Option<i64>,
    /// 95th percentile reply latency in milliseconds, when there were replies.
    pub latency_p95_ms: Option<i64>,
    /// System messages answering user messages.
    pub failed_replies: u64,
    /// Handoffs requested in the bucket.
    pub handoffs: u64,
    /// Of the handoffs requested in the bucket, those an agent claimed.
    pub handoffs_claimed: u64,
    /// Conversations with a handoff requested in the bucket.
    pub conversations_handed_off: u64,
    /// Median wait from request to claim in milliseconds, when a handoff requested in
    /// the bucket was claimed.
    pub handoff_wait_p50_ms: Option<i64>,
    /// 90th percentile wait from request to claim in milliseconds, when a handoff
    /// requested in the bucket was claimed.
    pub handoff_wait_p90_ms: Option<i64>,
    /// The bot's messages of the bucket rated up.
    pub feedback_up: u64,
    /// The bot's messages of the bucket rated down.
    pub feedback_down: u64,
}

impl BucketSummary {
    /// The share of the bucket's active conversations that were handed off:
    /// `conversations_handed_off / conversations_active`, `None` without active
    /// conversations. Computed rather than stored so that adapters count only whole
    /// numbers and cannot round differently. A request's notice is a message in the
    /// bucket, so the share is at most 1 unless that notice's time was moved into a
    /// later bucket to keep the history's times in order.
    pub fn handoff_share(&self) -> Option<f64> {
        (self.conversations_active > 0)
            .then(|| self.conversations_handed_off as f64 / self.conversations_active as f64)
    }
}

impl BucketSummary {
    /// The share of the bot's messages of the bucket that users rated:
    /// `(feedback_up + feedback_down) / messages_bot`, `None` without bot messages.
    pub fn feedback_share(&self) -> Option<f64> {
        (self.messages_bot > 0)
            .then(|| (self.feedback_up + self.feedback_down) as f64 / self.messages_bot as f64)
    }
}

/// The 1-based rank of the `percentile`th percentile among `count` ascending values
/// by the nearest-rank method: `ceil(percentile / 100 * count)`, at least 1.
pub fn nearest_rank(percentile: u64, count: u64) -> u64 {
    (percentile * count).div_ceil(100).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_follows_the_textbook_examples() {
        // Five values 15, 20, 35, 40, 50: p30 is the 2nd, p50 the 3rd, p100 the 5th.
        assert_eq!(nearest_rank(30, 5), 2);
        assert_eq!(nearest_rank(50, 5), 3);
        assert_eq!(nearest_rank(100, 5), 5);
        assert_eq!(nearest_rank(95, 20), 19);
        assert_eq!(nearest_rank(5, 1), 1);
    }

    #[test]
    fn buckets_start_at_multiples_of_their_length() {
        assert_eq!(Granularity::Hour.bucket_of(3_600_001), 3_600_000);
        assert_eq!(Granularity::Day.bucket_of(86_399_999), 0);
    }

    #[test]
    fn an_empty_or_huge_range_is_refused() {
        let at = |ms| Timestamp::from_unix_millis(ms).unwrap();
        assert!(SummaryQuery::parse(None, at(10), at(10), Granularity::Day).is_err());
        assert!(
            SummaryQuery::parse(None, at(0), at(3_000 * 3_600_000), Granularity::Hour).is_err()
        );
        assert!(SummaryQuery::parse(None, at(0), at(86_400_000), Granularity::Hour).is_ok());
    }
}
