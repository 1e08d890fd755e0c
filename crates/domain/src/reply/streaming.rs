//! The text streamed so far of each reply being produced, so that a subscriber
//! arriving mid-reply gets it as one snapshot delta and then the live deltas.

use std::collections::HashMap;
use std::sync::Mutex;

use super::lock;
use crate::conversation::ConversationId;
use crate::message::MessageId;

/// A reply being streamed: its id, the index of its last delta and the text so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamingReply {
    /// The id the stored reply will have.
    pub reply_id: MessageId,
    /// The index of the last delta included in `text`.
    pub last_index: u32,
    /// Every delta so far, concatenated.
    pub text: String,
}

/// The replies being streamed, one per conversation at most. A std mutex: it is held
/// for a map operation, never across an await.
#[derive(Debug, Default)]
pub(super) struct Streaming(Mutex<HashMap<ConversationId, StreamingReply>>);

impl Streaming {
    /// The reply being streamed in `conversation`, if any.
    pub(super) fn get(&self, conversation: ConversationId) -> Option<StreamingReply> {
        lock(&self.0).get(&conversation).cloned()
    }

    /// Records the delta `index` of the reply `reply_id`. Called before the delta is
    /// published, so a subscriber's snapshot and the live deltas it then sees overlap
    /// rather than leave a gap.
    pub(super) fn record(
        &self,
        conversation: ConversationId,
        reply_id: MessageId,
        index: u32,
        content: &str,
    ) {
        lock(&self.0)
            .entry(conversation)
            .and_modify(|streaming| {
                streaming.last_index = index;
                streaming.text.push_str(content);
            })
            .or_insert_with(|| StreamingReply {
                reply_id,
                last_index: index,
                text: content.to_owned(),
            });
    }

    /// Forgets the conversation's reply: called before the reply is stored, so a
    /// subscriber arriving in between gets the stored message, never a snapshot of an
    /// answered reply.
    pub(super) fn finish(&self, conversation: ConversationId) {
        lock(&self.0).remove(&conversation);
    }
}
