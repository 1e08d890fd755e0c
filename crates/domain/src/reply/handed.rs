//! User messages handed to their conversation's worker as this instance stores them,
//! so that the worker can answer them without reading them back from storage.
//!
//! A worker that looks at what is pending reads the conversation (or starts from the
//! one its lease's claim read) and then a page of its history. Under a steady stream of messages (a client with several in flight)
//! the messages stored while the worker answered are the ones it finds: each carries
//! the seq of the user message before it, as its own append found the conversation,
//! and when the handed messages link up from what is answered to the conversation's
//! last user message, they are exactly what is pending, and the history read is
//! spared (handed messages answered meanwhile are left out). Whenever they do not (a
//! message stored on another instance or by a path that hands nothing, too many
//! handed), the worker reads the history as before: handing a message is only ever a
//! shortcut.

use crate::conversation::Conversation;
use crate::message::{Message, Seq};

/// How many messages a worker keeps handed to it at most. A conversation with more
/// waiting is read back from storage, a page at a time.
pub(super) const MOST_HANDED: usize = 64;

/// A user message just stored on this instance, and the seq of the conversation's user
/// message before it, read by the append that stored it.
#[derive(Debug, Clone)]
pub(crate) struct Handed {
    pub(super) previous_user_seq: Seq,
    pub(super) message: Message,
}

/// A running worker's mailbox: whether work arrived since it last looked, and the
/// messages handed to it meanwhile.
#[derive(Debug, Default)]
pub(super) struct Mailbox {
    pub(super) rerun: bool,
    handed: Vec<Handed>,
}

impl Mailbox {
    /// Takes `handed` in, unless the mailbox is full: the message is then read back
    /// with the rest.
    pub(super) fn hand_in(&mut self, handed: Option<Handed>) {
        if self.handed.len() < MOST_HANDED {
            self.handed.extend(handed);
        }
    }

    /// [`exactly_the_pending`] of the messages handed, taking out those it returns
    /// and those answered already.
    pub(super) fn take_pending(&mut self, conversation: &Conversation) -> Option<Vec<Message>> {
        exactly_the_pending(conversation, &mut self.handed)
    }

    /// Whether any message is handed and not yet taken.
    pub(super) fn holds_any(&self) -> bool {
        !self.handed.is_empty()
    }
}

/// The user messages pending in `conversation`, in seq order, if `handed` holds
/// them all: the first follows the last answered user message, each follows the one
/// before it, and the last is the conversation's last user message. `None`
/// otherwise, or when none are handed.
///
/// Takes out of `handed` the messages it returns and those answered already; what is
/// left is either stored after `conversation` was read, for the worker's next look,
/// or (when it returns `None`) pending without the rest of what is pending.
pub(super) fn exactly_the_pending(
    conversation: &Conversation,
    handed: &mut Vec<Handed>,
) -> Option<Vec<Message>> {
    handed.retain(|handed| handed.message.seq > conversation.replied_seq);
    handed.sort_by_key(|handed| handed.message.seq);
    let stored_later = handed.partition_point(|h| h.message.seq <= conversation.last_user_seq);
    let pending = &handed[..stored_later];
    let first = pending.first()?;
    let last = pending.last()?;
    let follows_the_answered = first.previous_user_seq <= conversation.replied_seq;
    let linked = pending
        .windows(2)
        .all(|pair| pair[1].previous_user_seq == pair[0].message.seq);
    (follows_the_answered && linked && last.message.seq == conversation.last_user_seq).then(|| {
        handed
            .drain(..stored_later)
            .map(|handed| handed.message)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MessageRepository as _;
    use crate::reply::ReplySettings;
    use crate::testing::{
        ScriptedEngine, TestPorts, bot_reply, start_conversation, user, user_message,
    };

    /// A conversation with `echo` and `users` user messages, the first `replied` of
    /// them each followed by a bot reply (so that the seqs of user messages are not
    /// all consecutive); the user messages come back handed, each with the seq of
    /// the user message before it.
    async fn conversation_with(users: usize, replied: usize) -> (Conversation, Vec<Handed>) {
        let fakes = TestPorts::with_engine(ScriptedEngine::echo());
        fakes.seed_bot("echo");
        let service = fakes.service(ReplySettings::default());
        let started = start_conversation(&service, &user("ana"), "echo").await;
        let mut handed = Vec::new();
        let mut previous_user_seq = Seq::ZERO;
        for n in 0..users {
            let new = user_message(&started, &format!("question {n}"), fakes.clock.peek());
            let message = fakes
                .store
                .append(&new)
                .await
                .expect("stored")
                .into_message();
            if n < replied {
                let reply = bot_reply(&started, &message, "answer", fakes.clock.peek());
                fakes.store.append(&reply).await.expect("stored");
            }
            handed.push(Handed {
                previous_user_seq,
                message: message.clone(),
            });
            previous_user_seq = message.seq;
        }
        let conversation = fakes
            .ports
            .conversations
            .get(started.id)
            .await
            .expect("the conversation");
        (conversation, handed)
    }

    /// What [`exactly_the_pending`] finds pending of `handed`, by seq, and what it
    /// leaves for the next look.
    fn pending_and_left(
        conversation: &Conversation,
        mut handed: Vec<Handed>,
    ) -> (Option<Vec<u64>>, Vec<u64>) {
        let pending = exactly_the_pending(conversation, &mut handed)
            .map(|messages| messages.iter().map(|m| m.seq.get()).collect());
        (
            pending,
            handed.iter().map(|h| h.message.seq.get()).collect(),
        )
    }

    #[tokio::test]
    async fn the_pending_messages_handed_in_any_order_come_back_in_seq_order() {
        let (conversation, handed) = conversation_with(4, 1).await;
        let mut pending = handed[1..].to_vec();
        pending.reverse();
        assert_eq!(
            pending_and_left(&conversation, pending),
            (Some(vec![3, 4, 5]), vec![])
        );
    }

    #[tokio::test]
    async fn a_pending_message_not_handed_sends_the_worker_to_storage() {
        let (conversation, handed) = conversation_with(4, 1).await;
        // The first pending one, one in the middle, the last.
        for missing in [1, 2, 3] {
            let mut pending = handed[1..].to_vec();
            pending.retain(|h| h.message.seq != handed[missing].message.seq);
            let left: Vec<u64> = pending.iter().map(|h| h.message.seq.get()).collect();
            assert_eq!(pending_and_left(&conversation, pending), (None, left));
        }
    }

    #[tokio::test]
    async fn handed_messages_answered_meanwhile_are_left_out() {
        let (conversation, handed) = conversation_with(4, 2).await;
        assert_eq!(
            pending_and_left(&conversation, handed.clone()),
            (Some(vec![5, 6]), vec![])
        );
        assert_eq!(
            pending_and_left(&conversation, handed[2..].to_vec()),
            (Some(vec![5, 6]), vec![])
        );
    }

    #[tokio::test]
    async fn messages_stored_after_the_read_are_left_for_the_next_look() {
        let (conversation, handed) = conversation_with(4, 1).await;
        let read_before_the_last = Conversation {
            last_user_seq: handed[2].message.seq,
            ..conversation
        };
        assert_eq!(
            pending_and_left(&read_before_the_last, handed.clone()),
            (Some(vec![3, 4]), vec![5])
        );
        // When what the read found is not all handed, all is left, for another try.
        assert_eq!(
            pending_and_left(
                &read_before_the_last,
                vec![handed[2].clone(), handed[3].clone()]
            ),
            (None, vec![4, 5])
        );
    }

    #[tokio::test]
    async fn nothing_handed_or_all_answered_is_nothing_known() {
        let (conversation, _) = conversation_with(2, 0).await;
        assert_eq!(pending_and_left(&conversation, Vec::new()), (None, vec![]));
        let (conversation, handed_and_answered) = conversation_with(2, 2).await;
        assert_eq!(
            pending_and_left(&conversation, handed_and_answered),
            (None, vec![])
        );
    }

    #[tokio::test]
    async fn a_full_mailbox_takes_no_more() {
        let (_, handed) = conversation_with(1, 0).await;
        let mut mailbox = Mailbox::default();
        for _ in 0..=MOST_HANDED {
            mailbox.hand_in(Some(handed[0].clone()));
        }
        assert_eq!(mailbox.handed.len(), MOST_HANDED);
    }
}
