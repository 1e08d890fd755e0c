//! Contract checks of [`MessageRepository::set_feedback`](crate::ports::MessageRepository::set_feedback):
//! feedback is kept on its message, read back with history, replaced, removed, and
//! refused for a message the conversation does not hold.

use crate::message::{Feedback, FeedbackComment, MessageId, Rating};

use super::{
    Repositories, all_messages, append, assert_not_found, at, bot_reply, create, user_message,
};

/// Feedback set on a reply comes back with the message and in history, is replaced
/// by the next, and is gone once removed; other messages keep none.
pub async fn feedback_is_kept_on_its_message_replaced_and_removed(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let question = append(&r, &user_message(&conversation, "hi", at(1))).await;
    let reply = append(&r, &bot_reply(&conversation, &question, "hello", at(2))).await;
    let down = Feedback {
        rating: Rating::Down,
        comment: FeedbackComment::parse("Too short — ümlaut ✓").expect("a comment"),
        at: at(3),
    };
    let rated = r
        .messages
        .set_feedback(conversation.id, reply.id, Some(down.clone()))
        .await
        .expect("rating");
    assert_eq!(rated.feedback.as_ref(), Some(&down));
    assert_eq!(rated.id, reply.id);
    let stored = all_messages(&r, conversation.id).await;
    assert_eq!(stored[1].feedback.as_ref(), Some(&down));
    assert_eq!(stored[0].feedback, None);

    let up = Feedback {
        rating: Rating::Up,
        comment: None,
        at: at(4),
    };
    r.messages
        .set_feedback(conversation.id, reply.id, Some(up.clone()))
        .await
        .expect("changing the rating");
    let read = r
        .messages
        .get(conversation.id, reply.id)
        .await
        .expect("reading the reply");
    assert_eq!(read.feedback, Some(up));

    let removed = r
        .messages
        .set_feedback(conversation.id, reply.id, None)
        .await
        .expect("taking it back");
    assert_eq!(removed.feedback, None);
    assert_eq!(all_messages(&r, conversation.id).await[1].feedback, None);
}

/// Feedback on a message the conversation does not hold changes nothing.
pub async fn feedback_on_an_unknown_message_is_not_found(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let other = create(&r, "ana", "alpha", at(0)).await;
    let elsewhere = append(&r, &user_message(&other, "hi", at(1))).await;
    let up = Feedback {
        rating: Rating::Up,
        comment: None,
        at: at(2),
    };
    let unknown = MessageId::from_uuid(uuid::Uuid::now_v7());
    for id in [unknown, elsewhere.id] {
        assert_not_found(
            r.messages
                .set_feedback(conversation.id, id, Some(up.clone()))
                .await,
            "feedback on a message of no or another conversation",
        );
    }
    assert_eq!(all_messages(&r, other.id).await[0].feedback, None);
}
