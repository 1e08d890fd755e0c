//! Contract checks of [`SessionRepository`](crate::ports::SessionRepository).

use crate::session::SessionId;

use super::{Repositories, assert_not_found, at, create};

fn object(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().cloned().expect("a JSON object")
}

/// `save_context` replaces a session's context and sets its `updated_at`; `get`
/// returns both, with every other field unchanged and other sessions untouched.
pub async fn a_session_context_round_trips(r: Repositories) {
    let conversation = create(&r, "ana", "alpha", at(0)).await;
    let other = create(&r, "ana", "alpha", at(1)).await;
    let fresh = r
        .sessions
        .get(conversation.session_id)
        .await
        .expect("loading the session");
    assert_eq!(fresh.id, conversation.session_id);
    assert_eq!(fresh.conversation_id, conversation.id);
    assert_eq!(fresh.user_id, conversation.user_id);
    assert_eq!(fresh.bot_id, conversation.bot_id);
    assert!(fresh.context.is_empty());
    assert_eq!((fresh.created_at, fresh.updated_at), (at(0), at(0)));
    let other_before = r.sessions.get(other.session_id).await.expect("loading");

    let context = object(serde_json::json!({
        "step": 2,
        "vars": {"name": "Ana", "tags": ["a", "b"], "score": 1.5, "none": null},
    }));
    r.sessions
        .save_context(conversation.session_id, &context, at(5_000))
        .await
        .expect("saving a context");
    let saved = r
        .sessions
        .get(conversation.session_id)
        .await
        .expect("loading");
    let mut expected = fresh.clone();
    expected.context = context;
    expected.updated_at = at(5_000);
    assert_eq!(saved, expected);

    let smaller = object(serde_json::json!({"step": 3}));
    r.sessions
        .save_context(conversation.session_id, &smaller, at(6_000))
        .await
        .expect("saving a context");
    let replaced = r
        .sessions
        .get(conversation.session_id)
        .await
        .expect("loading");
    assert_eq!(
        replaced.context, smaller,
        "the context is replaced, not merged"
    );
    assert_eq!(replaced.updated_at, at(6_000));
    assert_eq!(replaced.created_at, at(0));

    assert_eq!(
        r.sessions.get(other.session_id).await.ok(),
        Some(other_before)
    );
}

/// `get` and `save_context` of an unknown session are `RepoError::NotFound`, and
/// the failed save creates nothing.
pub async fn an_unknown_session_is_not_found(r: Repositories) {
    create(&r, "ana", "alpha", at(0)).await;
    let unknown = SessionId::from_uuid(uuid::Uuid::now_v7());
    assert_not_found(r.sessions.get(unknown).await, "get");
    assert_not_found(
        r.sessions
            .save_context(unknown, &object(serde_json::json!({"a": 1})), at(10))
            .await,
        "save_context",
    );
    assert_not_found(r.sessions.get(unknown).await, "get after the failed save");
}
