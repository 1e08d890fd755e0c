//! An instance killed with SIGKILL: under load, no message it acknowledged is lost
//! and every user message is answered exactly once; a reply it was streaming is
//! finished by another instance once its lease runs out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Cluster, send, start};
use crate::helpers::{Answers, assert_each_answered_once};
use crate::helpers::{PATIENCE, admin, user};

const CONVERSATIONS: usize = 6;
const MESSAGES_EACH: usize = 15;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_an_instance_under_load_loses_no_acknowledged_message_and_answers_each_once() {
    let Some(mut cluster) = Cluster::start(3).await else {
        return;
    };
    let token = user("ana");
    let clients: Arc<Vec<_>> = Arc::new((0..3).map(|i| cluster.client(i)).collect());
    let mut conversations = Vec::new();
    for n in 0..CONVERSATIONS {
        conversations.push(start(&clients[n % 3], &token, "echo-stream").await.0);
    }
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = conversations
        .iter()
        .enumerate()
        .map(|(n, conversation)| {
            let (clients, token, conversation) =
                (Arc::clone(&clients), token.clone(), conversation.clone());
            let acknowledged = Arc::clone(&acknowledged);
            tokio::spawn(async move {
                let mut stored = Vec::new();
                for m in 0..MESSAGES_EACH {
                    let client = &clients[(n + m) % 3];
                    // A send to the killed instance fails (refused or cut off); it
                    // was not acknowledged and the client moves on, as a client
                    // behind a load balancer would retry elsewhere.
                    let response = client
                        .http
                        .post(format!(
                            "{}/conversations/{conversation}/messages",
                            client.base
                        ))
                        .bearer_auth(&token)
                        .json(&json!({"content": format!("m{m} of {n}")}))
                        .timeout(PATIENCE)
                        .send()
                        .await;
                    if let Ok(response) = response
                        && response.status() == 201
                    {
                        let body: Value = response.json().await.expect("a send body");
                        stored.push(body["message_id"].as_str().expect("an id").to_owned());
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                }
                stored
            })
        })
        .collect();
    let deadline = Instant::now() + PATIENCE;
    while acknowledged.load(Ordering::SeqCst) < CONVERSATIONS * MESSAGES_EACH / 3 {
        assert!(Instant::now() < deadline, "the load did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cluster.kill(2);
    let mut acknowledged_ids = Vec::new();
    for sender in senders {
        acknowledged_ids.push(sender.await.expect("a sender"));
    }

    let survivor = cluster.client(0);
    for (conversation, acknowledged) in conversations.iter().zip(&acknowledged_ids) {
        let messages = survivor.answered_messages(&token, conversation).await;
        for id in acknowledged {
            assert!(
                messages.iter().any(|m| m["id"] == id.as_str()),
                "acknowledged message {id} is lost"
            );
        }
        assert_each_answered_once(&messages, Answers::ByTheBot);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_being_streamed_by_a_killed_instance_is_finished_once_by_another() {
    let Some(mut cluster) = Cluster::start(3).await else {
        return;
    };
    let created = cluster
        .client(0)
        .post(
            &admin(),
            "/bots",
            json!({"id": "slow", "name": "Slow", "kind": "echo",
                   "settings": {"stream": true, "word_delay_ms": 200}}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let token = user("ana");
    let (conversation, session) = start(&cluster.client(0), &token, "slow").await;
    let mut socket = cluster.follower(0, &token, &session).await;

    let question = send(
        &cluster.client(2),
        &token,
        &conversation,
        "a b c d e f g h i j",
    )
    .await;
    socket.next_of("delta").await;
    cluster.kill(2);

    let reply = loop {
        let frame = socket.next_json().await;
        if frame["type"] == "message" && frame["sender"] != "user" {
            break frame;
        }
    };
    assert_eq!(reply["sender"], "bot", "{reply}");
    assert_eq!(reply["reply_to"], question.as_str());
    assert_eq!(reply["content"], "a b c d e f g h i j");
    let messages = cluster
        .client(1)
        .answered_messages(&token, &conversation)
        .await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_each_answered_once(&messages, Answers::ByTheBot);
}
