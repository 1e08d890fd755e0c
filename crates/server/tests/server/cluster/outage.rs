//! NATS stopped for a while: every instance goes unready, keeps storing and
//! answering what it acknowledges, and sockets catch up from storage once NATS is
//! back, losing and repeating nothing.

use super::{Cluster, NatsServer, send, start};
use crate::helpers::{Answers, assert_each_answered_once, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_down_messages_are_stored_and_sockets_resume_when_it_is_back() {
    let mut nats = NatsServer::start();
    let Some(cluster) = Cluster::start_on(2, &nats.url()).await else {
        return;
    };
    let (a, b) = (0, 1);
    let token = user("ana");
    let (conversation, session) = start(&cluster.client(a), &token, "echo").await;
    let mut socket = cluster.follower(a, &token, &session).await;
    send(&cluster.client(b), &token, &conversation, "before").await;
    let mut seqs = Vec::new();
    while seqs.len() < 2 {
        seqs.push(
            socket.next_of("message").await["seq"]
                .as_u64()
                .expect("a seq"),
        );
    }

    nats.stop();
    cluster.wait_until_ready(a, false).await;
    cluster.wait_until_ready(b, false).await;
    for n in 0..5 {
        send(
            &cluster.client(b),
            &token,
            &conversation,
            &format!("during {n}"),
        )
        .await;
    }
    nats.resume();
    cluster.wait_until_ready(a, true).await;
    cluster.wait_until_ready(b, true).await;
    send(&cluster.client(b), &token, &conversation, "after").await;

    while seqs.len() < 14 {
        let message = socket.next_of("message").await;
        seqs.push(message["seq"].as_u64().expect("a seq"));
    }
    let expected: Vec<u64> = (1..=14).collect();
    assert_eq!(seqs, expected, "the socket lost or repeated messages");
    let history = cluster.client(a).messages(&token, &conversation).await;
    assert_each_answered_once(&history, Answers::ByTheBot);
}
