//! [`ConversationMaintenance`] on [`InMemoryStore`]: selections across users and the
//! analytics summary, counted by walking every conversation, its messages and the
//! handoff log, the way the definitions of [`crate::analytics`] say.

use std::collections::{BTreeMap, HashSet};

use async_trait::async_trait;

use super::InMemoryStore;
use crate::analytics::{BucketSummary, SummaryQuery, nearest_rank};
use crate::bot::BotId;
use crate::conversation::{
    Conversation, ConversationId, ConversationSelection, ConversationStatus,
};
use crate::error::RepoError;
use crate::message::{Rating, Sender};
use crate::ports::ConversationMaintenance;
use crate::timestamp::Timestamp;
use crate::user::UserId;

/// Whether `conversation` belongs to `selection`.
fn selected(selection: &ConversationSelection, conversation: &Conversation) -> bool {
    selection
        .bot_id
        .as_ref()
        .is_none_or(|bot| conversation.bot_id == *bot)
        && selection.status.is_none_or(|s| conversation.status == s)
        && selection
            .inactive_before
            .is_none_or(|at| conversation.last_activity < at)
        && selection
            .active_since
            .is_none_or(|at| conversation.last_activity >= at)
        && selection
            .created_before
            .is_none_or(|at| conversation.created_at < at)
}

#[async_trait]
impl ConversationMaintenance for InMemoryStore {
    async fn select(
        &self,
        selection: &ConversationSelection,
        after: Option<ConversationId>,
        limit: u32,
    ) -> Result<Vec<ConversationId>, RepoError> {
        let state = self.lock();
        let mut ids: Vec<ConversationId> = state
            .conversations
            .values()
            .filter(|c| selected(selection, c))
            .map(|c| c.id)
            .filter(|id| after.is_none_or(|after| id.as_uuid() > after.as_uuid()))
            .collect();
        ids.sort_by_key(ConversationId::as_uuid);
        ids.truncate(limit as usize);
        Ok(ids)
    }

    async fn count(&self, selection: &ConversationSelection) -> Result<u64, RepoError> {
        let state = self.lock();
        Ok(state
            .conversations
            .values()
            .filter(|c| selected(selection, c))
            .count() as u64)
    }

    async fn summary(&self, query: &SummaryQuery) -> Result<Vec<BucketSummary>, RepoError> {
        #[derive(Default)]
        struct Tally {
            started: u64,
            archived: u64,
            active: HashSet<ConversationId>,
            by_sender: [u64; 4],
            ratings: [u64; 2],
            users: HashSet<UserId>,
            latencies: Vec<i64>,
            failed: u64,
            handoffs: u64,
            handed_off: HashSet<ConversationId>,
            waits: Vec<i64>,
        }

        let state = self.lock();
        let (from, to) = (query.from.unix_millis(), query.to.unix_millis());
        let in_range = |at: Timestamp| (from..to).contains(&at.unix_millis());
        let bucket = |at: Timestamp| query.granularity.bucket_of(at.unix_millis());
        let mut tallies: BTreeMap<(BotId, i64), Tally> = BTreeMap::new();
        let wanted = |c: &Conversation| query.bot_id.as_ref().is_none_or(|b| c.bot_id == *b);
        for conversation in state.conversations.values().filter(|c| wanted(c)) {
            if in_range(conversation.created_at) {
                let tally = tallies
                    .entry((conversation.bot_id.clone(), bucket(conversation.created_at)))
                    .or_default();
                tally.started += 1;
                if conversation.status == ConversationStatus::Archived {
                    tally.archived += 1;
                }
            }
            let messages = state
                .messages
                .get(&conversation.id)
                .map_or(&[][..], Vec::as_slice);
            for message in messages.iter().filter(|m| in_range(m.timestamp)) {
                let tally = tallies
                    .entry((conversation.bot_id.clone(), bucket(message.timestamp)))
                    .or_default();
                tally.active.insert(conversation.id);
                let sender = match message.sender {
                    Sender::User => 0,
                    Sender::Bot => 1,
                    Sender::System => 2,
                    Sender::Agent => 3,
                };
                tally.by_sender[sender] += 1;
                if let (Sender::Bot, Some(feedback)) = (message.sender, &message.feedback) {
                    tally.ratings[usize::from(feedback.rating == Rating::Down)] += 1;
                }
                if message.sender == Sender::User {
                    tally.users.insert(conversation.user_id.clone());
                }
                let answered = message
                    .reply_to
                    .and_then(|id| messages.iter().find(|m| m.id == id));
                match (message.sender, answered) {
                    (Sender::Bot, Some(user_message)) => tally.latencies.push(
                        message.timestamp.unix_millis() - user_message.timestamp.unix_millis(),
                    ),
                    (Sender::System, Some(_)) => tally.failed += 1,
                    _ => {}
                }
            }
        }
        let wanted_bot = |bot: &BotId| query.bot_id.as_ref().is_none_or(|b| bot == b);
        for handoff in state
            .handoffs
            .iter()
            .filter(|h| wanted_bot(&h.bot_id) && in_range(h.requested_at))
        {
            let tally = tallies
                .entry((handoff.bot_id.clone(), bucket(handoff.requested_at)))
                .or_default();
            tally.handoffs += 1;
            tally.handed_off.insert(handoff.conversation_id);
            if let Some(claimed_at) = handoff.claimed_at {
                tally
                    .waits
                    .push(claimed_at.unix_millis() - handoff.requested_at.unix_millis());
            }
        }
        Ok(tallies
            .into_iter()
            .map(|((bot_id, bucket_start_ms), mut tally)| {
                tally.latencies.sort_unstable();
                tally.waits.sort_unstable();
                let count = tally.latencies.len() as u64;
                let claimed = tally.waits.len() as u64;
                let at_rank = |p: u64| {
                    (count > 0).then(|| tally.latencies[(nearest_rank(p, count) - 1) as usize])
                };
                let wait_at_rank = |p: u64| {
                    (claimed > 0).then(|| tally.waits[(nearest_rank(p, claimed) - 1) as usize])
                };
                BucketSummary {
                    bot_id,
                    bucket_start_ms,
                    conversations_started: tally.started,
                    conversations_active: tally.active.len() as u64,
                    conversations_archived: tally.archived,
                    messages_user: tally.by_sender[0],
                    messages_bot: tally.by_sender[1],
                    messages_system: tally.by_sender[2],
                    messages_agent: tally.by_sender[3],
                    distinct_users: tally.users.len() as u64,
                    replies: count,
                    latency_p50_ms: at_rank(50),
                    latency_p95_ms: at_rank(95),
                    failed_replies: tally.failed,
                    handoffs: tally.handoffs,
                    handoffs_claimed: claimed,
                    conversations_handed_off: tally.handed_off.len() as u64,
                    handoff_wait_p50_ms: wait_at_rank(50),
                    handoff_wait_p90_ms: wait_at_rank(90),
                    feedback_up: tally.ratings[0],
                    feedback_down: tally.ratings[1],
                }
            })
            .collect())
    }
}
