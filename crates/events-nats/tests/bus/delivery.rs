//! Events reach the subscribers of every instance, in order, once, unchanged, and only
//! those of their conversation.

use confab_domain::error::EventBusError;
use confab_domain::ports::EventBus;
use confab_events_nats::{NatsError, NatsEventBus, NatsSettings};

use crate::helpers::{
    connected_bus, conversation, every_kind, nats_url, next, numbered, two_instances, unique_prefix,
};

#[tokio::test]
async fn events_published_on_one_instance_reach_subscribers_of_both_in_order_once_each() {
    let (one, two) = two_instances().await;
    let conversation = conversation();
    let mut on_one = one.subscribe(conversation).await.unwrap();
    let mut first_on_two = two.subscribe(conversation).await.unwrap();
    let mut second_on_two = two.subscribe(conversation).await.unwrap();

    // Each instance publishes in turn; NATS keeps one publisher's order, and a stream
    // that got every event once holds exactly the numbers in order.
    for (publisher, numbers) in [(&one, 0..20), (&two, 20..40)] {
        for n in numbers.clone() {
            publisher.publish(numbered(conversation, n)).await.unwrap();
        }
        for stream in [&mut on_one, &mut first_on_two, &mut second_on_two] {
            for n in numbers.clone() {
                assert_eq!(*next(stream).await, numbered(conversation, n));
            }
        }
    }
    // A duplicate would come before this last event.
    one.publish(numbered(conversation, 1000)).await.unwrap();
    for stream in [&mut on_one, &mut first_on_two, &mut second_on_two] {
        assert_eq!(*next(stream).await, numbered(conversation, 1000));
    }
}

#[tokio::test]
async fn subscribers_on_one_instance_share_each_decoded_event_rather_than_copies() {
    let (one, two) = two_instances().await;
    let conversation = conversation();
    let mut first = two.subscribe(conversation).await.unwrap();
    let mut second = two.subscribe(conversation).await.unwrap();
    one.publish(numbered(conversation, 1)).await.unwrap();
    let (first, second) = (next(&mut first).await, next(&mut second).await);
    assert_eq!(*first, numbered(conversation, 1));
    assert!(first.ptr_eq(&second));
}

#[tokio::test]
async fn every_event_kind_crosses_nats_unchanged() {
    let (one, two) = two_instances().await;
    let conversation = conversation();
    let mut stream = two.subscribe(conversation).await.unwrap();
    let events = every_kind(conversation);
    for event in &events {
        one.publish(event.clone()).await.unwrap();
    }
    for event in events {
        assert_eq!(*next(&mut stream).await, event);
    }
}

#[tokio::test]
async fn a_conversations_events_do_not_reach_another_conversations_subscribers() {
    let (one, two) = two_instances().await;
    let (first, second) = (conversation(), conversation());
    let mut first_stream = two.subscribe(first).await.unwrap();
    let mut second_stream = two.subscribe(second).await.unwrap();

    one.publish(numbered(first, 1)).await.unwrap();
    one.publish(numbered(second, 2)).await.unwrap();
    one.publish(numbered(first, 3)).await.unwrap();

    assert_eq!(*next(&mut first_stream).await, numbered(first, 1));
    assert_eq!(*next(&mut first_stream).await, numbered(first, 3));
    assert_eq!(*next(&mut second_stream).await, numbered(second, 2));
    one.publish(numbered(second, 4)).await.unwrap();
    assert_eq!(*next(&mut second_stream).await, numbered(second, 4));
}

#[tokio::test]
async fn a_payload_that_does_not_decode_is_dropped_and_delivery_goes_on() {
    let prefix = unique_prefix();
    let bus = connected_bus(&nats_url(), &prefix, 1024).await;
    let conversation = conversation();
    let mut stream = bus.subscribe(conversation).await.unwrap();
    let raw = async_nats::connect(nats_url()).await.unwrap();
    let subject = format!("{prefix}.conversation.{conversation}");
    raw.publish(subject.clone(), "not json".into())
        .await
        .unwrap();
    raw.publish(subject, r#"{"v":99}"#.into()).await.unwrap();
    // A request nobody answers comes back only after the server handled what the
    // connection sent before, so the bad payloads are on their way first.
    let answer = raw.request(format!("{prefix}.nobody"), "".into()).await;
    assert!(matches!(
        answer.map_err(|error| error.kind()),
        Err(async_nats::RequestErrorKind::NoResponders)
    ));
    bus.publish(numbered(conversation, 1)).await.unwrap();
    assert_eq!(*next(&mut stream).await, numbered(conversation, 1));
}

#[tokio::test]
async fn an_invalid_url_is_refused_at_once() {
    let refused = NatsEventBus::connect(NatsSettings {
        url: "nats://127.0.0.1:notaport".to_owned(),
        ..NatsSettings::default()
    })
    .await;
    assert!(matches!(refused, Err(NatsError::Connect(_))));
}

#[tokio::test]
async fn an_invalid_subject_prefix_is_refused() {
    let refused = NatsEventBus::connect(NatsSettings {
        subject_prefix: "confab.*".to_owned(),
        ..NatsSettings::default()
    })
    .await;
    assert!(matches!(refused, Err(NatsError::InvalidSubjectPrefix(_))));
}

#[tokio::test]
async fn an_unreachable_server_is_no_error_but_publishing_fails_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap()
        .port();
    let bus = NatsEventBus::connect(NatsSettings {
        url: format!("nats://127.0.0.1:{port}"),
        subject_prefix: unique_prefix(),
        ..NatsSettings::default()
    })
    .await
    .unwrap();
    assert!(!bus.is_connected());
    let conversation = conversation();
    let published = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        bus.publish(numbered(conversation, 1)),
    )
    .await
    .expect("publishing does not wait for the server");
    assert!(matches!(published, Err(EventBusError::Unavailable(_))));
}
