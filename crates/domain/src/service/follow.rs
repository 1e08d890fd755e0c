//! Following a conversation: every message after a known seq, replayed from storage,
//! then live events, with no gap and no duplicate, for any transport (WebSocket, SSE).
//!
//! The bus subscription is taken *before* storage is read, so a message stored while
//! the replay runs is either in the replay or on the live stream; messages already
//! replayed are dropped from the live stream by seq. When the live stream ends because
//! the follower fell behind the bus, following goes back to storage from the last seq
//! it delivered and then live again, so a slow follower loses nothing either.
//! Messages are delivered in seq order without gaps: a follower may keep only the
//! greatest seq it has seen and resume from it.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::StreamExt;
use futures::stream::BoxStream;

use super::ConversationService;
use crate::conversation::{Conversation, ConversationId};
use crate::error::DomainError;
use crate::event::{ConversationEvent, EventKind, SharedEvent};
use crate::message::{HistoryBound, HistoryQuery, MessageId, Seq};
use crate::ports::{EventBus, EventStream, MessageRepository};
use crate::reply::ReplyPipeline;
use crate::session::SessionId;
use crate::user::Caller;

/// A follower's stream of events: replayed messages first, then live events. A live
/// event is the bus's [`SharedEvent`], shared with the conversation's other followers
/// (with its encoding); a replayed one is this follower's own.
pub type FollowStream = BoxStream<'static, Result<SharedEvent, DomainError>>;

impl ConversationService {
    /// Follows a conversation the caller may see. With `after` set, every message with
    /// a greater seq is delivered first (from storage), then live events; without it,
    /// live events from now on. The returned conversation is as it was at the start.
    pub async fn follow(
        &self,
        caller: &Caller,
        id: ConversationId,
        after: Option<Seq>,
    ) -> Result<(Conversation, FollowStream), DomainError> {
        let ports = self.ports();
        let live = ports.events.subscribe(id).await?;
        let conversation = self.conversation(caller, id).await?;
        let state = Follow {
            conversation: conversation.id,
            session: conversation.session_id,
            messages: Arc::clone(&ports.messages),
            events: Arc::clone(&ports.events),
            live,
            last_seq: after.unwrap_or(conversation.last_seq),
            replaying: after.is_some(),
            replies: Arc::clone(self.replies()),
            snapshot: None,
            snapshot_due: true,
            pending: VecDeque::new(),
            done: false,
        };
        Ok((
            conversation,
            futures::stream::unfold(state, Follow::next).boxed(),
        ))
    }
}

struct Follow {
    conversation: ConversationId,
    session: SessionId,
    messages: Arc<dyn MessageRepository>,
    events: Arc<dyn EventBus>,
    live: EventStream,
    /// The greatest seq delivered (or known to the follower).
    last_seq: Seq,
    replaying: bool,
    replies: Arc<ReplyPipeline>,
    /// The streamed reply whose text so far was sent as a snapshot, and the index of
    /// its last delta included; live deltas up to it are dropped as duplicates.
    snapshot: Option<(MessageId, u32)>,
    snapshot_due: bool,
    pending: VecDeque<SharedEvent>,
    done: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<SharedEvent, DomainError>, Self)> {
        loop {
            if self.done {
                return None;
            }
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.replaying {
                if let Err(error) = self.replay_page().await {
                    self.done = true;
                    return Some((Err(error), self));
                }
                continue;
            }
            if std::mem::take(&mut self.snapshot_due)
                && let Some(streaming) = self.replies.streaming_reply(self.conversation)
            {
                self.snapshot = Some((streaming.reply_id, streaming.last_index));
                let snapshot = self.event(EventKind::Delta {
                    reply_id: streaming.reply_id,
                    index: streaming.last_index,
                    content: streaming.text,
                    snapshot: true,
                });
                return Some((Ok(snapshot), self));
            }
            match self.live.next().await {
                Some(event) => {
                    match &event.kind {
                        EventKind::Message(message) => {
                            if message.seq <= self.last_seq {
                                continue;
                            }
                            if message.seq > self.last_seq.next() {
                                // Publishers race, so a later seq can be published
                                // first. The earlier ones are committed already (seqs
                                // are assigned under the conversation's row lock), so
                                // storage fills the gap and delivery stays in seq order.
                                let upto = message.seq;
                                if let Err(error) = self.fill_gap(upto).await {
                                    self.done = true;
                                    return Some((Err(error), self));
                                }
                                self.pending.push_back(event);
                                continue;
                            }
                            self.last_seq = message.seq;
                        }
                        EventKind::Delta {
                            reply_id, index, ..
                        } if self
                            .snapshot
                            .is_some_and(|(sent, upto)| sent == *reply_id && *index <= upto) =>
                        {
                            continue;
                        }
                        _ => {}
                    }
                    let deleted = matches!(event.kind, EventKind::Deleted);
                    self.done = deleted;
                    return Some((Ok(event), self));
                }
                None => {
                    // Fell behind the bus (or it closed): subscribe again first, then
                    // catch up from storage, as at the start.
                    match self.events.subscribe(self.conversation).await {
                        Ok(live) => {
                            self.live = live;
                            self.replaying = true;
                        }
                        Err(error) => {
                            self.done = true;
                            return Some((Err(error.into()), self));
                        }
                    }
                }
            }
        }
    }

    /// Queues every stored message between the last delivered one and `upto`, then
    /// marks `upto` as delivered: the caller queues that message itself.
    async fn fill_gap(&mut self, upto: Seq) -> Result<(), DomainError> {
        while self.last_seq.next() < upto {
            let page = self
                .messages
                .history(
                    self.conversation,
                    &HistoryQuery {
                        before: Some(HistoryBound::Seq(upto)),
                        ..HistoryQuery::after_seq(self.last_seq)
                    },
                )
                .await?;
            if page.messages.is_empty() {
                break;
            }
            for message in page.messages {
                self.last_seq = message.seq;
                let event = self.event(EventKind::Message(message));
                self.pending.push_back(event);
            }
        }
        self.last_seq = upto;
        Ok(())
    }

    async fn replay_page(&mut self) -> Result<(), DomainError> {
        let page = self
            .messages
            .history(self.conversation, &HistoryQuery::after_seq(self.last_seq))
            .await?;
        self.replaying = page.has_more;
        for message in page.messages {
            self.last_seq = message.seq;
            let event = self.event(EventKind::Message(message));
            self.pending.push_back(event);
        }
        Ok(())
    }

    fn event(&self, kind: EventKind) -> SharedEvent {
        SharedEvent::new(ConversationEvent {
            conversation_id: self.conversation,
            session_id: self.session,
            kind,
        })
    }
}
