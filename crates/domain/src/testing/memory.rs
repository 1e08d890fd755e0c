//! [`InMemoryStore`]: every repository port over plain collections in memory, for
//! tests of the domain and of adapters that need storage without a database. It
//! passes the storage contract suite ([`super::contract`]) like any real adapter.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::bot::{Bot, BotId};
use crate::conversation::{
    Conversation, ConversationChange, ConversationId, ConversationPage, ConversationStatus,
    ListPosition, ListQuery,
};
use crate::error::RepoError;
use crate::handoff::{HandoffChange, HandoffListing, HandoffState};
use crate::lease::{Claim, LeaseHolder, Release};
use crate::message::{
    Appended, Feedback, HistoryBound, HistoryPage, HistoryQuery, Message, MessageId, NewMessage,
    Sender, Seq,
};
use crate::ports::{
    BotRepository, ConversationRepository, MessageRepository, OwnAppend, ReplyLeases,
    SessionRepository,
};
use crate::search::{SearchCursor, SearchQuery, SearchScope};
use crate::session::{Session, SessionId};
use crate::timestamp::Timestamp;
use crate::user::UserId;

mod maintenance;

/// Conversations, sessions, messages and bots in memory. Clones share the same data,
/// so one store can serve as all four repository ports at once.
///
/// Every operation takes one lock for its whole duration, which makes each one
/// atomic the way a database transaction would be. The lock is a std mutex because
/// it is never held across an await: no operation awaits anything.
#[derive(Debug, Clone, Default)]
pub struct InMemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    conversations: HashMap<ConversationId, Conversation>,
    sessions: HashMap<SessionId, Session>,
    /// Each conversation's messages in seq order; seq `n` is at index `n - 1`.
    messages: HashMap<ConversationId, Vec<Message>>,
    /// The id of every stored message: ids are unique across conversations.
    message_ids: HashSet<MessageId>,
    bots: BTreeMap<BotId, Bot>,
    /// Each leased conversation's lease holder and when the lease runs out.
    leases: HashMap<ConversationId, (LeaseHolder, Timestamp)>,
    /// The log of handoffs that analytics count, oldest first.
    handoffs: Vec<HandoffRecord>,
}

/// One handoff, from the request until the conversation is back with its bot.
#[derive(Debug, Clone)]
struct HandoffRecord {
    conversation_id: ConversationId,
    bot_id: BotId,
    requested_at: Timestamp,
    claimed_at: Option<Timestamp>,
    ended_at: Option<Timestamp>,
}

impl InMemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a bot at once, without an await: handy to seed a store in a test's
    /// set-up. Like [`BotRepository::upsert`], it keeps a stored bot's `created_at`.
    pub fn insert_bot(&self, bot: Bot) {
        self.lock().upsert_bot(bot);
    }

    /// How many messages the store holds, in every conversation together.
    pub fn message_count(&self) -> usize {
        self.lock().messages.values().map(Vec::len).sum()
    }

    /// Every message of a conversation in seq order, read at once without paging.
    pub fn messages_of(&self, conversation: ConversationId) -> Vec<Message> {
        self.lock()
            .messages
            .get(&conversation)
            .cloned()
            .unwrap_or_default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test may poison the lock; the data is still consistent because
        // every operation checks before it writes.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// Gives `holder` the lease of `conversation` until `until` when it is free, its
    /// own, or ran out at `now`; says whether `holder` holds it now.
    fn claim(
        &mut self,
        conversation: ConversationId,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> bool {
        let free = self
            .leases
            .get(&conversation)
            .is_none_or(|(current, expires)| *current == holder || *expires <= now);
        if free {
            self.leases.insert(conversation, (holder, until));
        }
        free
    }

    /// The append rule of [`MessageRepository::append`], on state already locked.
    fn append(&mut self, message: &NewMessage) -> Result<Appended, RepoError> {
        let conversation = self
            .conversations
            .get_mut(&message.conversation_id)
            .ok_or(RepoError::NotFound)?;
        let messages = self.messages.entry(conversation.id).or_default();
        if let Some(client_id) = &message.client_message_id
            && let Some(original) = messages
                .iter()
                .find(|m| m.client_message_id.as_ref() == Some(client_id))
        {
            return Ok(Appended::Existing(original.clone()));
        }
        if let Some(answered) = message.answers
            && conversation.replied_seq >= answered.seq
        {
            return Err(RepoError::Conflict);
        }
        if self.message_ids.contains(&message.id) {
            return Err(RepoError::Conflict);
        }
        let seq = conversation.last_seq.next();
        let timestamp = messages.last().map_or(message.timestamp, |previous| {
            previous.timestamp.max(message.timestamp)
        });
        let stored = message.stored(seq, timestamp);
        messages.push(stored.clone());
        self.message_ids.insert(stored.id);
        conversation.record(&stored);
        if let Some(answered) = message.answers {
            conversation.replied_seq = answered.seq;
        }
        Ok(Appended::Stored(stored))
    }

    /// Keeps the log of handoffs for a change of `conversation`'s state at `at`.
    fn log_handoff(&mut self, conversation: &Conversation, to: &HandoffState, at: Timestamp) {
        let open = self
            .handoffs
            .iter_mut()
            .rev()
            .find(|h| h.conversation_id == conversation.id && h.ended_at.is_none());
        match (to, open) {
            (HandoffState::Waiting, open) => {
                if let Some(open) = open {
                    open.ended_at = Some(at);
                }
                self.handoffs.push(HandoffRecord {
                    conversation_id: conversation.id,
                    bot_id: conversation.bot_id.clone(),
                    requested_at: at,
                    claimed_at: None,
                    ended_at: None,
                });
            }
            (HandoffState::Agent(_), Some(open)) => open.claimed_at = Some(at),
            (HandoffState::Bot, Some(open)) => open.ended_at = Some(at),
            (_, None) => {}
        }
    }

    fn upsert_bot(&mut self, mut bot: Bot) {
        if let Some(stored) = self.bots.get(&bot.id) {
            bot.created_at = stored.created_at;
        }
        self.bots.insert(bot.id.clone(), bot);
    }
}

#[async_trait]
impl ConversationRepository for InMemoryStore {
    async fn create(
        &self,
        conversation: &Conversation,
        session: &Session,
    ) -> Result<(), RepoError> {
        let mut state = self.lock();
        let taken = state.conversations.contains_key(&conversation.id)
            || state.sessions.contains_key(&session.id)
            || state
                .conversations
                .values()
                .any(|c| c.session_id == conversation.session_id);
        if taken {
            return Err(RepoError::Conflict);
        }
        state
            .conversations
            .insert(conversation.id, conversation.clone());
        state.sessions.insert(session.id, session.clone());
        Ok(())
    }

    async fn get(&self, id: ConversationId) -> Result<Conversation, RepoError> {
        self.lock()
            .conversations
            .get(&id)
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn get_by_session(&self, id: SessionId) -> Result<Conversation, RepoError> {
        let state = self.lock();
        let session = state.sessions.get(&id).ok_or(RepoError::NotFound)?;
        state
            .conversations
            .get(&session.conversation_id)
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn list(&self, user: &UserId, query: &ListQuery) -> Result<ConversationPage, RepoError> {
        let state = self.lock();
        let mut matching: Vec<&Conversation> = state
            .conversations
            .values()
            .filter(|c| &c.user_id == user)
            .filter(|c| query.filter.bot_id.as_ref().is_none_or(|b| &c.bot_id == b))
            .filter(|c| query.filter.status.is_none_or(|s| c.status == s))
            .collect();
        matching.sort_by_key(|c| std::cmp::Reverse((c.last_activity, c.id)));
        let total = matching.len() as u64;
        let read_size = query.limit.get() as usize + 1;
        let read: Vec<Conversation> = match query.position {
            ListPosition::Offset(offset) => matching
                .into_iter()
                .skip(usize::try_from(offset).unwrap_or(usize::MAX))
                .take(read_size)
                .cloned()
                .collect(),
            ListPosition::After(cursor) => matching
                .into_iter()
                .filter(|c| (c.last_activity, c.id) < (cursor.last_activity, cursor.id))
                .take(read_size)
                .cloned()
                .collect(),
        };
        Ok(ConversationPage::from_read(read, query, total))
    }

    async fn update(
        &self,
        id: ConversationId,
        change: &ConversationChange,
    ) -> Result<Conversation, RepoError> {
        let mut state = self.lock();
        let conversation = state
            .conversations
            .get_mut(&id)
            .ok_or(RepoError::NotFound)?;
        if let Some(status) = change.status {
            conversation.status = status;
        }
        if let Some(title) = &change.title {
            conversation.title = Some(title.clone());
        }
        if let Some(metadata) = &change.metadata {
            conversation.metadata = metadata.clone();
        }
        Ok(conversation.clone())
    }

    async fn delete(&self, id: ConversationId) -> Result<(), RepoError> {
        let mut state = self.lock();
        let conversation = state.conversations.remove(&id).ok_or(RepoError::NotFound)?;
        state.sessions.remove(&conversation.session_id);
        state.sessions.retain(|_, s| s.conversation_id != id);
        for message in state.messages.remove(&id).unwrap_or_default() {
            state.message_ids.remove(&message.id);
        }
        state.leases.remove(&id);
        state.handoffs.retain(|h| h.conversation_id != id);
        Ok(())
    }

    async fn change_handoff(
        &self,
        id: ConversationId,
        change: &HandoffChange,
        notice: &NewMessage,
    ) -> Result<Message, RepoError> {
        let mut state = self.lock();
        let conversation = state.conversations.get(&id).ok_or(RepoError::NotFound)?;
        // Checked before anything changes, so that a refused notice changes nothing.
        if conversation.handoff != change.from
            || notice.conversation_id != id
            || state.message_ids.contains(&notice.id)
        {
            return Err(RepoError::Conflict);
        }
        let conversation = conversation.clone();
        state.log_handoff(&conversation, &change.to, notice.timestamp);
        let moved = state
            .conversations
            .get_mut(&id)
            .ok_or(RepoError::NotFound)?;
        moved.handoff = change.to.clone();
        moved.handoff_since = (!change.to.bot_answers()).then_some(notice.timestamp);
        Ok(state.append(notice)?.into_message())
    }

    async fn in_handoff(
        &self,
        listing: &HandoffListing,
        limit: u32,
    ) -> Result<Vec<Conversation>, RepoError> {
        let state = self.lock();
        let mut found: Vec<&Conversation> = state
            .conversations
            .values()
            .filter(|c| listing.includes(&c.handoff))
            .collect();
        found.sort_by_key(|c| (c.handoff_since, c.id));
        Ok(found.into_iter().take(limit as usize).cloned().collect())
    }

    async fn with_pending_replies(&self, limit: u32) -> Result<Vec<ConversationId>, RepoError> {
        let state = self.lock();
        let mut pending: Vec<&Conversation> = state
            .conversations
            .values()
            .filter(|c| c.has_pending_replies())
            .collect();
        pending.sort_by_key(|c| (c.last_activity, c.id));
        Ok(pending
            .into_iter()
            .take(limit as usize)
            .map(|c| c.id)
            .collect())
    }
}

#[async_trait]
impl ReplyLeases for InMemoryStore {
    async fn claim(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, RepoError> {
        let mut state = self.lock();
        if !state.conversations.contains_key(&conversation) {
            return Err(RepoError::NotFound);
        }
        Ok(state.claim(conversation, holder, now, until))
    }

    /// Reads under the same lock as the claim, as a store reading the row it writes
    /// does: the pipeline's tests then start their looks from the claim's read.
    async fn claim_reading(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<Claim, RepoError> {
        let mut state = self.lock();
        let read = state
            .conversations
            .get(&conversation)
            .cloned()
            .ok_or(RepoError::NotFound)?;
        Ok(if state.claim(conversation, holder, now, until) {
            Claim::Held(Some(Box::new(read)))
        } else {
            Claim::Taken
        })
    }

    async fn release(
        &self,
        conversation: ConversationId,
        holder: LeaseHolder,
    ) -> Result<Release, RepoError> {
        let mut state = self.lock();
        let held = state
            .leases
            .get(&conversation)
            .is_some_and(|(current, _)| *current == holder);
        if !held {
            return Ok(Release::Released);
        }
        let pending = state
            .conversations
            .get(&conversation)
            .is_some_and(Conversation::has_pending_replies);
        if pending {
            return Ok(Release::WorkRemains);
        }
        state.leases.remove(&conversation);
        Ok(Release::Released)
    }

    async fn orphaned(&self, now: Timestamp, limit: u32) -> Result<Vec<ConversationId>, RepoError> {
        let state = self.lock();
        let mut orphaned: Vec<&Conversation> = state
            .conversations
            .values()
            .filter(|c| c.has_pending_replies())
            .filter(|c| {
                state
                    .leases
                    .get(&c.id)
                    .is_none_or(|(_, expires)| *expires <= now)
            })
            .collect();
        orphaned.sort_by_key(|c| (c.last_activity, c.id));
        Ok(orphaned
            .into_iter()
            .take(limit as usize)
            .map(|c| c.id)
            .collect())
    }
}

#[async_trait]
impl MessageRepository for InMemoryStore {
    async fn append(&self, message: &NewMessage) -> Result<Appended, RepoError> {
        self.lock().append(message)
    }

    async fn append_own(
        &self,
        message: &NewMessage,
        owner: &UserId,
    ) -> Result<OwnAppend, RepoError> {
        let mut state = self.lock();
        let Some(before) = state.conversations.get(&message.conversation_id).cloned() else {
            return Ok(OwnAppend::NotTaken);
        };
        if before.user_id != *owner
            || before.status != ConversationStatus::Active
            || message.sender != Sender::User
            || message.answers.is_some()
        {
            return Ok(OwnAppend::NotTaken);
        }
        match state.append(message)? {
            Appended::Stored(message) => Ok(OwnAppend::Stored { message, before }),
            Appended::Existing(_) => Ok(OwnAppend::NotTaken),
        }
    }

    async fn history(
        &self,
        conversation: ConversationId,
        query: &HistoryQuery,
    ) -> Result<HistoryPage, RepoError> {
        let state = self.lock();
        let messages = state
            .messages
            .get(&conversation)
            .map_or(&[][..], Vec::as_slice);
        let within = messages
            .iter()
            .filter(|m| query.before.is_none_or(|bound| before(m, bound)))
            .filter(|m| query.after.is_none_or(|bound| after(m, bound)));
        let read_size = query.limit.get() as usize + 1;
        let read: Vec<Message> = if query.after.is_some() {
            within.take(read_size).cloned().collect()
        } else {
            within.rev().take(read_size).cloned().collect()
        };
        Ok(HistoryPage::from_read(read, query))
    }

    async fn mark_answered(&self, conversation: ConversationId, seq: Seq) -> Result<(), RepoError> {
        let mut state = self.lock();
        let conversation = state
            .conversations
            .get_mut(&conversation)
            .ok_or(RepoError::NotFound)?;
        if conversation.replied_seq >= seq {
            return Err(RepoError::Conflict);
        }
        conversation.replied_seq = seq;
        Ok(())
    }

    async fn set_feedback(
        &self,
        conversation: ConversationId,
        id: MessageId,
        feedback: Option<Feedback>,
    ) -> Result<Message, RepoError> {
        let mut state = self.lock();
        let message = state
            .messages
            .get_mut(&conversation)
            .and_then(|messages| messages.iter_mut().find(|m| m.id == id))
            .ok_or(RepoError::NotFound)?;
        message.feedback = feedback;
        Ok(message.clone())
    }

    async fn search(&self, query: &SearchQuery) -> Result<Vec<Message>, RepoError> {
        let state = self.lock();
        let mut found: Vec<&Message> = state
            .conversations
            .values()
            .filter(|c| match &query.scope {
                SearchScope::User(user) => c.user_id == *user,
                SearchScope::Everyone => true,
            })
            .filter(|c| query.bot_id.as_ref().is_none_or(|b| c.bot_id == *b))
            .filter(|c| query.status.is_none_or(|s| c.status == s))
            .flat_map(|c| state.messages.get(&c.id).map_or(&[][..], Vec::as_slice))
            .filter(|m| query.text.matches(m.content.as_str()))
            .collect();
        found.sort_by_key(|m| std::cmp::Reverse((m.timestamp, m.id)));
        let read = query.limit.get() as usize + 1;
        let page = match query.cursor {
            Some(SearchCursor::Before { timestamp, id }) => found
                .into_iter()
                .filter(|m| (m.timestamp, m.id) < (timestamp, id))
                .take(read)
                .collect::<Vec<_>>(),
            Some(SearchCursor::Offset(skip)) => found
                .into_iter()
                .skip(usize::try_from(skip).unwrap_or(usize::MAX))
                .take(read)
                .collect(),
            None => found.into_iter().take(read).collect(),
        };
        // Rank order: every match ranks alike here, so it is newest first too.
        Ok(page.into_iter().cloned().collect())
    }

    async fn get(&self, conversation: ConversationId, id: MessageId) -> Result<Message, RepoError> {
        self.lock()
            .messages
            .get(&conversation)
            .and_then(|messages| messages.iter().find(|m| m.id == id))
            .cloned()
            .ok_or(RepoError::NotFound)
    }
}

fn before(message: &Message, bound: HistoryBound) -> bool {
    match bound {
        HistoryBound::Seq(seq) => message.seq < seq,
        HistoryBound::Time(at) => message.timestamp < at,
    }
}

fn after(message: &Message, bound: HistoryBound) -> bool {
    match bound {
        HistoryBound::Seq(seq) => message.seq > seq,
        HistoryBound::Time(at) => message.timestamp > at,
    }
}

#[async_trait]
impl SessionRepository for InMemoryStore {
    async fn get(&self, id: SessionId) -> Result<Session, RepoError> {
        self.lock()
            .sessions
            .get(&id)
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn save_context(
        &self,
        id: SessionId,
        context: &serde_json::Map<String, serde_json::Value>,
        at: Timestamp,
    ) -> Result<(), RepoError> {
        let mut state = self.lock();
        let session = state.sessions.get_mut(&id).ok_or(RepoError::NotFound)?;
        session.context = context.clone();
        session.updated_at = at;
        Ok(())
    }
}

#[async_trait]
impl BotRepository for InMemoryStore {
    async fn get(&self, id: &BotId) -> Result<Bot, RepoError> {
        self.lock().bots.get(id).cloned().ok_or(RepoError::NotFound)
    }

    async fn list(&self) -> Result<Vec<Bot>, RepoError> {
        Ok(self.lock().bots.values().cloned().collect())
    }

    async fn upsert(&self, bot: &Bot) -> Result<(), RepoError> {
        self.lock().upsert_bot(bot.clone());
        Ok(())
    }

    async fn delete(&self, id: &BotId) -> Result<(), RepoError> {
        self.lock()
            .bots
            .remove(id)
            .map(|_| ())
            .ok_or(RepoError::NotFound)
    }
}
