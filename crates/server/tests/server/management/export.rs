//! Exports: a conversation as JSON Lines and CSV across several storage pages, an
//! administrator's export of a bot's conversations within a time range, and a
//! handoff's notices and agent messages in both.

use confab_domain::handoff::HandoffState;
use confab_domain::message::Sender;
use confab_domain::user::UserId;
use serde_json::Value;

use crate::helpers::{Backend, admin, spawn_app, user};
use crate::management::helpers::{at, plus};

crate::on_every_backend!(
    a_conversation_exports_as_json_lines_and_csv,
    administrators_export_a_bots_conversations_within_a_range,
    agent_messages_are_exported_with_their_sender,
);

/// More than one export page (500 messages), so paging is exercised.
const MESSAGES: i64 = 520;

/// Content that CSV must quote: a comma, quotes and a line break.
const AWKWARD: &str = "say \"hi\", then\nleave";

async fn a_conversation_exports_as_json_lines_and_csv(backend: Backend) {
    let app = spawn_app(backend).await;
    let start = at("2026-03-01T10:00:00Z");
    let conversation = app.seed_conversation("alice", "echo", start).await;
    for n in 0..MESSAGES {
        let content = if n == 7 {
            AWKWARD.to_owned()
        } else {
            format!("message {n}")
        };
        app.seed_message(&conversation, Sender::User, &content, plus(start, n), None)
            .await;
    }
    let alice = user("alice");
    let path = format!("/conversations/{}/export", conversation.id);

    let response = app.get(&alice, &path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = response.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len() as i64, MESSAGES);
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], index as u64 + 1);
        assert_eq!(line["conversation_id"], conversation.id.to_string());
    }
    assert_eq!(lines[7]["content"], AWKWARD);
    assert_eq!(lines[0]["timestamp"], "2026-03-01T10:00:00.000Z");

    let response = app.get(&alice, &format!("{path}?format=csv")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let csv = response.text().await.unwrap();
    let rows: Vec<&str> = csv.split("\r\n").collect();
    // A header, one row per message, and the empty remainder after the last CRLF.
    assert_eq!(rows.len() as i64, MESSAGES + 2);
    assert_eq!(
        rows[0],
        "conversation_id,id,seq,timestamp,sender,sender_id,content,reply_to,\
         client_message_id,attachments,suggestions,metadata,feedback_rating,feedback_comment"
    );
    assert!(rows[1].contains(",1,2026-03-01T10:00:00.000Z,user,alice,message 0,,,[],[],{},,"));
    assert!(rows[8].contains(
        ",8,2026-03-01T10:00:00.007Z,user,alice,\"say \"\"hi\"\", then\nleave\",,,[],[],{},,"
    ));
    assert_eq!(rows.last(), Some(&""));

    let response = app.get(&user("bob"), &path).await;
    assert_eq!(response.status(), 404);
    app.stop().await;
}

async fn administrators_export_a_bots_conversations_within_a_range(backend: Backend) {
    let app = spawn_app(backend).await;
    let day = at("2026-03-01T00:00:00Z");
    let first = app.seed_conversation("alice", "echo", day).await;
    let second = app.seed_conversation("bob", "echo", day).await;
    let other_bot = app.seed_conversation("bob", "echo-stream", day).await;
    for (conversation, hours) in [
        (&first, [1, 5, 30]),
        (&second, [2, 3, 4]),
        (&other_bot, [1, 2, 3]),
    ] {
        for hour in hours {
            app.seed_message(
                conversation,
                Sender::User,
                &format!("at {hour}h"),
                plus(day, hour * 3_600_000),
                None,
            )
            .await;
        }
    }
    let admin = admin();
    let path =
        "/exports/conversations?bot_id=echo&from=2026-03-01T02:00:00Z&to=2026-03-02T00:00:00Z";

    let response = app.get(&user("alice"), path).await;
    assert_eq!(response.status(), 403);

    let response = app.get(&admin, path).await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let mut seen: Vec<(String, String)> = body
        .lines()
        .map(|line| {
            let message: Value = serde_json::from_str(line).unwrap();
            (
                message["conversation_id"].as_str().unwrap().to_owned(),
                message["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut expected = vec![
        (first.id.to_string(), "at 5h".to_owned()),
        (second.id.to_string(), "at 2h".to_owned()),
        (second.id.to_string(), "at 3h".to_owned()),
        (second.id.to_string(), "at 4h".to_owned()),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    app.stop().await;
}

async fn agent_messages_are_exported_with_their_sender(backend: Backend) {
    let app = spawn_app(backend).await;
    let start = at("2026-03-01T10:00:00Z");
    let conversation = app.seed_conversation("alice", "echo", start).await;
    let carol = HandoffState::Agent(UserId::parse("carol").unwrap());
    app.seed_message(&conversation, Sender::User, "a person, please", start, None)
        .await;
    app.seed_handoff(
        &conversation,
        HandoffState::Bot,
        HandoffState::Waiting,
        plus(start, 1),
    )
    .await;
    app.seed_handoff(&conversation, HandoffState::Waiting, carol, plus(start, 2))
        .await;
    app.seed_message(
        &conversation,
        Sender::Agent,
        "carol here",
        plus(start, 3),
        None,
    )
    .await;

    let response = app
        .get(&admin(), "/exports/conversations?bot_id=echo")
        .await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    let seen: Vec<(String, String)> = body
        .lines()
        .map(|line| {
            let message: Value = serde_json::from_str(line).unwrap();
            (
                message["sender"].as_str().unwrap().to_owned(),
                message["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("user", "a person, please"),
        ("system", "Waiting for a person to join"),
        ("system", "carol joined"),
        ("agent", "carol here"),
    ];
    assert_eq!(
        seen,
        expected.map(|(sender, content)| (sender.to_owned(), content.to_owned()))
    );

    let path = format!("/conversations/{}/export?format=csv", conversation.id);
    let response = app.get(&user("alice"), &path).await;
    assert_eq!(response.status(), 200);
    let csv = response.text().await.unwrap();
    assert!(
        csv.contains(",4,2026-03-01T10:00:00.003Z,agent,agent,carol here,"),
        "{csv}"
    );
    app.stop().await;
}
