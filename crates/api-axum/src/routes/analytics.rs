//! `GET /analytics/summary`: per bot and day or hour, what its conversations did
//! (administrators only). What each number counts is defined once, in
//! `confab_domain::analytics`.

use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use confab_domain::analytics::{BucketSummary, Granularity, SummaryQuery};
use confab_domain::bot::BotId;
use confab_domain::timestamp::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::extract::ApiQuery;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/analytics/summary", get(summary))
}

/// The length of a summary's buckets.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum GranularityBody {
    /// UTC days.
    #[default]
    Day,
    /// Hours.
    Hour,
}

impl From<GranularityBody> for Granularity {
    fn from(granularity: GranularityBody) -> Self {
        match granularity {
            GranularityBody::Day => Self::Day,
            GranularityBody::Hour => Self::Hour,
        }
    }
}

/// `GET /analytics/summary`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SummaryParams {
    /// Only this bot; every bot by default.
    #[serde(default)]
    #[param(value_type = Option<crate::dto::text::BotIdText>)]
    bot_id: Option<String>,
    /// Start of the range (inclusive), RFC 3339; by default 7 days (`day`) or 24 hours
    /// (`hour`) before `to`.
    #[serde(default)]
    #[param(format = DateTime)]
    from: Option<String>,
    /// End of the range (exclusive), RFC 3339; now by default.
    #[serde(default)]
    #[param(format = DateTime)]
    to: Option<String>,
    /// `day` (default) or `hour`; at most 2000 buckets per request.
    #[serde(default)]
    granularity: GranularityBody,
}

/// Messages of a bucket by sender.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct SenderCountsBody {
    /// From users.
    user: u64,
    /// From the bot.
    bot: u64,
    /// From confab (e.g. failed replies, handoff notices).
    system: u64,
    /// From agents, the people who answer during a handoff.
    agent: u64,
}

/// One bot in one bucket.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct BucketBody {
    /// The bot.
    bot_id: String,
    /// Start of the bucket, RFC 3339 UTC.
    #[schema(format = DateTime)]
    bucket_start: String,
    /// Conversations created in the bucket.
    conversations_started: u64,
    /// Conversations with at least one message in the bucket.
    conversations_active: u64,
    /// Of the conversations started in the bucket, those archived now.
    conversations_archived: u64,
    /// Messages in the bucket by sender.
    messages: SenderCountsBody,
    /// Users who sent a message in the bucket.
    distinct_users: u64,
    /// Bot replies to user messages stored in the bucket.
    replies: u64,
    /// Median time from a user message to the bot's reply, in milliseconds
    /// (nearest rank); absent without replies.
    latency_p50_ms: Option<i64>,
    /// 95th percentile of that time (nearest rank); absent without replies.
    latency_p95_ms: Option<i64>,
    /// Replies that failed or timed out (system messages answering a user message).
    failed_replies: u64,
    /// Handoffs to a person requested in the bucket.
    handoffs: u64,
    /// Of those, the ones an agent has claimed (by now).
    handoffs_claimed: u64,
    /// Conversations with a handoff requested in the bucket.
    conversations_handed_off: u64,
    /// `conversations_handed_off / conversations_active`; absent without active
    /// conversations.
    handoff_share: Option<f64>,
    /// Median time from a handoff's request to an agent's claim, in milliseconds
    /// (nearest rank), over the bucket's claimed handoffs; absent without any.
    handoff_wait_p50_ms: Option<i64>,
    /// 90th percentile of that time (nearest rank); absent without claimed handoffs.
    handoff_wait_p90_ms: Option<i64>,
    /// The bot's messages of the bucket that users rated up (as rated now).
    feedback_up: u64,
    /// Those rated down.
    feedback_down: u64,
    /// `(feedback_up + feedback_down) / messages.bot`; null without bot messages.
    feedback_share: Option<f64>,
}

impl BucketBody {
    fn new(summary: BucketSummary) -> Self {
        let handoff_share = summary.handoff_share();
        let feedback_share = summary.feedback_share();
        Self {
            bot_id: summary.bot_id.to_string(),
            bucket_start: Timestamp::from_unix_millis(summary.bucket_start_ms)
                .map(Timestamp::to_rfc3339)
                .unwrap_or_default(),
            conversations_started: summary.conversations_started,
            conversations_active: summary.conversations_active,
            conversations_archived: summary.conversations_archived,
            messages: SenderCountsBody {
                user: summary.messages_user,
                bot: summary.messages_bot,
                system: summary.messages_system,
                agent: summary.messages_agent,
            },
            distinct_users: summary.distinct_users,
            replies: summary.replies,
            latency_p50_ms: summary.latency_p50_ms,
            latency_p95_ms: summary.latency_p95_ms,
            failed_replies: summary.failed_replies,
            handoffs: summary.handoffs,
            handoffs_claimed: summary.handoffs_claimed,
            conversations_handed_off: summary.conversations_handed_off,
            handoff_share,
            handoff_wait_p50_ms: summary.handoff_wait_p50_ms,
            handoff_wait_p90_ms: summary.handoff_wait_p90_ms,
            feedback_up: summary.feedback_up,
            feedback_down: summary.feedback_down,
            feedback_share,
        }
    }
}

/// The analytics summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct SummaryResponse {
    /// Start of the range, inclusive.
    #[schema(format = DateTime)]
    from: String,
    /// End of the range, exclusive.
    #[schema(format = DateTime)]
    to: String,
    /// The bucket length.
    granularity: GranularityBody,
    /// One entry per bot and bucket with any activity, by bot id then time.
    buckets: Vec<BucketBody>,
}

/// Administrators: per bot and bucket, conversations started, active and archived,
/// messages by sender, distinct users, bot reply latency p50/p95, failed replies, and
/// handoffs to people: how many, the share of conversations, the wait p50/p90.
#[utoipa::path(
    get,
    path = "/analytics/summary",
    tag = "admin",
    security(("bearer" = [])),
    params(SummaryParams),
    responses(
        (status = 200, description = "The summary.", body = SummaryResponse),
        crate::problems::AdminErrors,
    )
)]
pub(crate) async fn summary(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    ApiQuery(params): ApiQuery<SummaryParams>,
) -> Result<Json<SummaryResponse>, ApiError> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden(
            "only administrators may read analytics",
        ));
    }
    let granularity = Granularity::from(params.granularity);
    let to = match params.to.as_deref() {
        Some(to) => Timestamp::parse_rfc3339(to)?,
        None => Timestamp::new(time::OffsetDateTime::now_utc()),
    };
    let from = match params.from.as_deref() {
        Some(from) => Timestamp::parse_rfc3339(from)?,
        None => {
            let span = match granularity {
                Granularity::Day => Duration::from_secs(7 * 24 * 60 * 60),
                Granularity::Hour => Duration::from_secs(24 * 60 * 60),
            };
            Timestamp::new(to.as_offset_date_time() - span)
        }
    };
    let query = SummaryQuery::parse(
        params.bot_id.as_deref().map(BotId::parse).transpose()?,
        from,
        to,
        granularity,
    )
    .map_err(|_| {
        ApiError::invalid_request(format!(
            "from must be before to, and the range at most {} buckets",
            SummaryQuery::MAX_BUCKETS
        ))
    })?;
    let buckets = state.admin.summary(&caller, &query).await?;
    Ok(Json(SummaryResponse {
        from: from.to_rfc3339(),
        to: to.to_rfc3339(),
        granularity: params.granularity,
        buckets: buckets.into_iter().map(BucketBody::new).collect(),
    }))
}
