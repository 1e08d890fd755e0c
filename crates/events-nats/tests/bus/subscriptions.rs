//! One NATS subscription per conversation and instance, gone with its last local
//! subscriber; a slow local subscriber loses its stream, not the others.

use std::time::Duration;

use async_nats::RequestErrorKind;
use confab_domain::conversation::ConversationId;
use confab_domain::ports::EventBus;

use crate::helpers::{
    WAIT, connected_bus, conversation, ends, instance, nats_url, next, numbered, unique_prefix,
};

/// Whether the NATS server knows a subscriber of the conversation's subject, asked from
/// another connection: a request to a subject nobody subscribes to fails at once with
/// "no responders", while the bus's subscription takes it and never answers.
async fn server_has_subscriber(raw: &async_nats::Client, subject: &str) -> bool {
    let request = async_nats::Request::new()
        .payload("".into())
        .timeout(Some(Duration::from_millis(500)));
    match raw.send_request(subject.to_owned(), request).await {
        Err(error) if error.kind() == RequestErrorKind::NoResponders => false,
        Err(error) if error.kind() == RequestErrorKind::TimedOut => true,
        other => panic!("unexpected answer {other:?}"),
    }
}

fn subject(prefix: &str, conversation: ConversationId) -> String {
    format!("{prefix}.conversation.{conversation}")
}

#[tokio::test]
async fn local_subscribers_share_one_nats_subscription_that_goes_away_with_the_last() {
    let prefix = unique_prefix();
    let bus = connected_bus(&nats_url(), &prefix, 1024).await;
    let raw = async_nats::connect(nats_url()).await.unwrap();
    let conversation = conversation();
    let subject = subject(&prefix, conversation);
    assert!(!server_has_subscriber(&raw, &subject).await);

    let first = bus.subscribe(conversation).await.unwrap();
    let mut second = bus.subscribe(conversation).await.unwrap();
    let third = bus.subscribe(conversation).await.unwrap();
    assert_eq!(bus.followed_conversations(), 1);
    assert!(server_has_subscriber(&raw, &subject).await);

    drop(first);
    drop(third);
    assert_eq!(bus.followed_conversations(), 1);
    bus.publish(numbered(conversation, 1)).await.unwrap();
    assert_eq!(*next(&mut second).await, numbered(conversation, 1));

    drop(second);
    assert_eq!(bus.followed_conversations(), 0);
    // The unsubscription travels to the server asynchronously: ask until it has.
    tokio::time::timeout(WAIT, async {
        while server_has_subscriber(&raw, &subject).await {}
    })
    .await
    .expect("the NATS subscription outlived its last local subscriber");
}

#[tokio::test]
async fn a_conversation_followed_again_gets_a_new_subscription_that_works() {
    let bus = instance().await;
    let conversation = conversation();
    drop(bus.subscribe(conversation).await.unwrap());
    assert_eq!(bus.followed_conversations(), 0);
    let mut again = bus.subscribe(conversation).await.unwrap();
    bus.publish(numbered(conversation, 1)).await.unwrap();
    assert_eq!(*next(&mut again).await, numbered(conversation, 1));
}

#[tokio::test]
async fn a_slow_local_subscriber_sees_its_stream_end_while_the_others_go_on() {
    let bus = connected_bus(&nats_url(), &unique_prefix(), 4).await;
    let conversation = conversation();
    let mut slow = bus.subscribe(conversation).await.unwrap();
    let mut reader = bus.subscribe(conversation).await.unwrap();
    for n in 0..10 {
        bus.publish(numbered(conversation, n)).await.unwrap();
        assert_eq!(*next(&mut reader).await, numbered(conversation, n));
    }
    ends(&mut slow).await;
    bus.publish(numbered(conversation, 10)).await.unwrap();
    assert_eq!(*next(&mut reader).await, numbered(conversation, 10));
}
