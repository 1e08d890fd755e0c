//! What one instance stores and streams reaches the sockets and SSE streams held by
//! the others, in seq order and once each.

use serde_json::Value;

use super::{Cluster, send, start};
use crate::helpers::{SseReader, user};
use crate::ops::helpers::sample;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_on_one_instance_sees_messages_stored_on_another_and_a_reply_streamed_on_a_third()
{
    let Some(cluster) = Cluster::start(3).await else {
        return;
    };
    let (a, b, c) = (0, 1, 2);
    let token = user("ana");
    let (conversation, session) = start(&cluster.client(b), &token, "echo-stream").await;
    let mut socket = cluster.follower(a, &token, &session).await;
    let mut sse = SseReader::open(cluster.address(b), &token, &conversation, None).await;

    let first = send(
        &cluster.client(c),
        &token,
        &conversation,
        "one two three four",
    )
    .await;
    // The first delta on A's socket means C holds the conversation's lease and is
    // streaming; a message stored on B now is answered by C as well, after the first.
    let mut frames = Vec::new();
    while frames.last().is_none_or(|f: &Value| f["type"] != "delta") {
        frames.push(socket.next_json().await);
    }
    let second = send(&cluster.client(b), &token, &conversation, "five six").await;
    let mut replies = 0;
    while replies < 2 {
        let frame = socket.next_json().await;
        if frame["type"] == "message" && frame["sender"] == "bot" {
            replies += 1;
        }
        frames.push(frame);
    }

    let messages: Vec<&Value> = frames.iter().filter(|f| f["type"] == "message").collect();
    let described: Vec<(u64, &str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["seq"].as_u64().expect("a seq"),
                m["sender"].as_str().expect("a sender"),
                m["content"].as_str().expect("content"),
            )
        })
        .collect();
    assert_eq!(
        described,
        vec![
            (1, "user", "one two three four"),
            (2, "user", "five six"),
            (3, "bot", "one two three four"),
            (4, "bot", "five six"),
        ],
        "{frames:#?}"
    );
    assert_eq!(messages[0]["id"], first.as_str());
    assert_eq!(messages[1]["id"], second.as_str());
    assert_eq!(messages[2]["reply_to"], first.as_str());
    assert_eq!(messages[3]["reply_to"], second.as_str());
    for reply in &messages[2..] {
        assert_streamed_once_in_order_before(&frames, reply);
    }

    let bot = [("bot", "echo-stream")];
    let produced = |metrics: &str| sample(metrics, "confab_bot_reply_duration_seconds_count", &bot);
    assert_eq!(
        produced(&cluster.metrics(c).await),
        2.0,
        "C produced both replies"
    );
    assert_eq!(produced(&cluster.metrics(a).await), 0.0);
    assert_eq!(produced(&cluster.metrics(b).await), 0.0);

    let mut seen = Vec::new();
    for _ in 0..4 {
        let (seq, message) = sse.next_message().await;
        assert_eq!(message["seq"], seq);
        seen.push((seq, message["id"].clone()));
    }
    let expected: Vec<(u64, Value)> = messages
        .iter()
        .map(|m| (m["seq"].as_u64().expect("a seq"), m["id"].clone()))
        .collect();
    assert_eq!(
        seen, expected,
        "SSE on B saw the same messages in the same order"
    );
}

/// Asserts that `reply`'s deltas arrived before it, numbered 0, 1, 2 … once each,
/// and add up to its text.
fn assert_streamed_once_in_order_before(frames: &[Value], reply: &Value) {
    let position = frames
        .iter()
        .position(|f| f["type"] == "message" && f["id"] == reply["id"])
        .expect("the reply is among the frames");
    let deltas: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "delta" && f["reply_id"] == reply["id"])
        .collect();
    let indexes: Vec<u64> = deltas.iter().filter_map(|d| d["index"].as_u64()).collect();
    let expected: Vec<u64> = (0..indexes.len() as u64).collect();
    assert!(!deltas.is_empty(), "no delta of {reply}");
    assert_eq!(
        indexes, expected,
        "deltas of {reply} out of order or repeated"
    );
    let text: String = deltas
        .iter()
        .filter_map(|d| d["content"].as_str())
        .collect();
    assert_eq!(text, reply["content"].as_str().expect("content"));
    let last_delta = frames
        .iter()
        .rposition(|f| f["type"] == "delta" && f["reply_id"] == reply["id"])
        .expect("a delta");
    assert!(last_delta < position, "a delta of {reply} came after it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_line_stream_on_one_instance_sees_activities_posted_on_another() {
    const SECRET: &str = "cluster-directline-secret-0123";
    let env = [
        (
            "CONFAB_DIRECTLINE__SECRETS",
            r#"[{ bot_id = "echo", secret_env = "DL_CLUSTER_SECRET" }]"#,
        ),
        ("DL_CLUSTER_SECRET", SECRET),
    ];
    let Some(cluster) = Cluster::start_with(2, &env).await else {
        return;
    };
    let (a, b) = (0, 1);
    let started: Value = cluster
        .client(a)
        .post(
            SECRET,
            "/v3/directline/conversations",
            serde_json::json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = started["conversationId"].as_str().unwrap();
    let token = started["token"].as_str().unwrap();
    let (mut stream, _) = tokio_tungstenite::connect_async(started["streamUrl"].as_str().unwrap())
        .await
        .unwrap();
    // Instance B accepts A's token (one signing key) and stores the message; A's
    // stream delivers it and the echo, whichever instance answered.
    let posted = cluster
        .client(b)
        .post(
            token,
            &format!("/v3/directline/conversations/{id}/activities"),
            serde_json::json!({ "type": "message", "text": "across", "channelData": { "clientActivityID": "x1" } }),
        )
        .await;
    assert_eq!(posted.status(), 200);
    let mut texts = Vec::new();
    while texts.len() < 2 {
        let frame = tokio::time::timeout(
            crate::helpers::PATIENCE,
            futures::StreamExt::next(&mut stream),
        )
        .await
        .expect("an activity set in time")
        .expect("the stream is open")
        .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame
            && !text.is_empty()
        {
            let set: Value = serde_json::from_str(&text).unwrap();
            for activity in set["activities"].as_array().unwrap() {
                if activity["type"] == "message" {
                    texts.push((
                        activity["from"]["role"].as_str().unwrap().to_owned(),
                        activity["text"].as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
    }
    assert_eq!(
        texts,
        [
            ("user".to_owned(), "across".to_owned()),
            ("bot".to_owned(), "across".to_owned())
        ]
    );
}
