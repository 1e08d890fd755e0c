//! A NATS outage: publishing fails at once while it lasts, subscribing still works, and
//! when the server is back every stream that may have missed events ends so that its
//! follower catches up from storage, while new subscriptions get new events.

use std::time::Duration;

use confab_domain::error::EventBusError;
use confab_domain::ports::EventBus;

use crate::helpers::{
    NatsServer, RECONNECT_WAIT, WAIT, connected_bus, conversation, ends, next, numbered,
    unique_prefix,
};

#[tokio::test]
async fn after_an_outage_old_streams_end_and_new_subscriptions_get_new_events() {
    let mut server = NatsServer::start();
    let prefix = unique_prefix();
    let one = connected_bus(&server.url(), &prefix, 1024).await;
    let two = connected_bus(&server.url(), &prefix, 1024).await;
    let conversation = conversation();
    let mut before = two.subscribe(conversation).await.unwrap();
    one.publish(numbered(conversation, 1)).await.unwrap();
    assert_eq!(*next(&mut before).await, numbered(conversation, 1));

    server.stop();
    tokio::time::timeout(WAIT, one.wait_until_disconnected())
        .await
        .expect("the client noticed the outage");
    assert!(!one.is_connected());
    let published = tokio::time::timeout(
        Duration::from_secs(1),
        one.publish(numbered(conversation, 2)),
    )
    .await
    .expect("publishing does not wait for the server");
    assert!(matches!(published, Err(EventBusError::Unavailable(_))));
    let mut during = tokio::time::timeout(WAIT, two.subscribe(conversation))
        .await
        .expect("subscribing does not wait for the server")
        .unwrap();

    server.restart();
    for bus in [&one, &two] {
        tokio::time::timeout(RECONNECT_WAIT, bus.wait_until_connected())
            .await
            .expect("the client reconnected");
        assert!(bus.is_connected());
    }
    ends(&mut before).await;
    ends(&mut during).await;

    let mut after = two.subscribe(conversation).await.unwrap();
    one.publish(numbered(conversation, 3)).await.unwrap();
    assert_eq!(*next(&mut after).await, numbered(conversation, 3));
}
