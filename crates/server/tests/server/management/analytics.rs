//! `GET /analytics/summary` on a seeded data set with chosen timestamps, against
//! numbers worked out by hand, including reply latency percentiles (nearest rank),
//! and handoffs to people with agent messages.

use confab_domain::handoff::HandoffState;
use confab_domain::message::Sender;
use confab_domain::user::UserId;
use serde_json::{Value, json};

use crate::helpers::{Backend, admin, spawn_app, user};
use crate::management::helpers::{at, plus};

crate::on_every_backend!(
    the_summary_matches_a_hand_computed_expectation,
    the_summary_counts_handoffs_and_agent_messages,
    the_summary_counts_feedback_as_it_stands,
    only_administrators_read_analytics,
);

const HOUR: i64 = 3_600_000;

async fn the_summary_matches_a_hand_computed_expectation(backend: Backend) {
    let app = spawn_app(backend).await;
    let day = at("2026-01-01T00:00:00Z");
    let next_day = plus(day, 24 * HOUR);

    // Day 1, conversation one (u1): replies after 100 ms and 300 ms, and a failed one.
    let one = app.seed_conversation("u1", "echo", plus(day, HOUR)).await;
    let asked = app
        .seed_message(&one, Sender::User, "a", plus(day, HOUR), None)
        .await;
    app.seed_message(&one, Sender::Bot, "a", plus(day, HOUR + 100), Some(&asked))
        .await;
    let asked = app
        .seed_message(&one, Sender::User, "b", plus(day, 2 * HOUR), None)
        .await;
    app.seed_message(
        &one,
        Sender::Bot,
        "b",
        plus(day, 2 * HOUR + 300),
        Some(&asked),
    )
    .await;
    let asked = app
        .seed_message(&one, Sender::User, "c", plus(day, 3 * HOUR), None)
        .await;
    app.seed_message(
        &one,
        Sender::System,
        "bot failed",
        plus(day, 3 * HOUR + 5_000),
        Some(&asked),
    )
    .await;
    // Day 1, conversation two (u2), archived: replies after 200 ms and 1000 ms.
    let two = app
        .seed_conversation("u2", "echo", plus(day, 5 * HOUR))
        .await;
    let asked = app
        .seed_message(&two, Sender::User, "d", plus(day, 5 * HOUR), None)
        .await;
    app.seed_message(
        &two,
        Sender::Bot,
        "d",
        plus(day, 5 * HOUR + 200),
        Some(&asked),
    )
    .await;
    let asked = app
        .seed_message(&two, Sender::User, "e", plus(day, 6 * HOUR), None)
        .await;
    app.seed_message(
        &two,
        Sender::Bot,
        "e",
        plus(day, 6 * HOUR + 1_000),
        Some(&asked),
    )
    .await;
    app.seed_archive(&two).await;
    // Day 2, conversation three (u1 again): one reply after 400 ms.
    let three = app
        .seed_conversation("u1", "echo", plus(next_day, HOUR))
        .await;
    let asked = app
        .seed_message(&three, Sender::User, "f", plus(next_day, HOUR), None)
        .await;
    app.seed_message(
        &three,
        Sender::Bot,
        "f",
        plus(next_day, HOUR + 400),
        Some(&asked),
    )
    .await;
    // Another bot, filtered out by bot_id.
    let other = app
        .seed_conversation("u3", "echo-stream", plus(day, HOUR))
        .await;
    app.seed_message(&other, Sender::User, "g", plus(day, HOUR), None)
        .await;

    let admin = admin();
    let response = app
        .get(
            &admin,
            "/analytics/summary?bot_id=echo&from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&granularity=day",
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    // Day 1: latencies 100, 200, 300, 1000; p50 is the 2nd (ceil(0.5 * 4)), p95 the
    // 4th (ceil(0.95 * 4)).
    assert_eq!(
        body,
        json!({
            "from": "2026-01-01T00:00:00.000Z",
            "to": "2026-01-03T00:00:00.000Z",
            "granularity": "day",
            "buckets": [
                {
                    "bot_id": "echo",
                    "bucket_start": "2026-01-01T00:00:00.000Z",
                    "conversations_started": 2,
                    "conversations_active": 2,
                    "conversations_archived": 1,
                    "messages": { "user": 5, "bot": 4, "system": 1, "agent": 0 },
                    "distinct_users": 2,
                    "replies": 4,
                    "latency_p50_ms": 200,
                    "latency_p95_ms": 1000,
                    "failed_replies": 1,
                    "handoffs": 0,
                    "handoffs_claimed": 0,
                    "conversations_handed_off": 0,
                    "handoff_share": 0.0,
                    "handoff_wait_p50_ms": null,
                    "handoff_wait_p90_ms": null,
                    "feedback_up": 0,
                    "feedback_down": 0,
                    "feedback_share": 0.0,
                },
                {
                    "bot_id": "echo",
                    "bucket_start": "2026-01-02T00:00:00.000Z",
                    "conversations_started": 1,
                    "conversations_active": 1,
                    "conversations_archived": 0,
                    "messages": { "user": 1, "bot": 1, "system": 0, "agent": 0 },
                    "distinct_users": 1,
                    "replies": 1,
                    "latency_p50_ms": 400,
                    "latency_p95_ms": 400,
                    "failed_replies": 0,
                    "handoffs": 0,
                    "handoffs_claimed": 0,
                    "conversations_handed_off": 0,
                    "handoff_share": 0.0,
                    "handoff_wait_p50_ms": null,
                    "handoff_wait_p90_ms": null,
                    "feedback_up": 0,
                    "feedback_down": 0,
                    "feedback_share": 0.0,
                },
            ],
        })
    );

    // Hourly, every bot, only the first hours of day 1: echo's 01:00 and 02:00
    // buckets, and echo-stream's 01:00.
    let response = app
        .get(
            &admin,
            "/analytics/summary?from=2026-01-01T00:00:00Z&to=2026-01-01T03:00:00Z&granularity=hour",
        )
        .await;
    let body: Value = response.json().await.unwrap();
    let buckets: Vec<(String, String, u64, Value)> = body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["bot_id"].as_str().unwrap().to_owned(),
                b["bucket_start"].as_str().unwrap().to_owned(),
                b["messages"]["user"].as_u64().unwrap(),
                b["latency_p50_ms"].clone(),
            )
        })
        .collect();
    assert_eq!(
        buckets,
        vec![
            (
                "echo".to_owned(),
                "2026-01-01T01:00:00.000Z".to_owned(),
                1,
                json!(100)
            ),
            (
                "echo".to_owned(),
                "2026-01-01T02:00:00.000Z".to_owned(),
                1,
                json!(300)
            ),
            (
                "echo-stream".to_owned(),
                "2026-01-01T01:00:00.000Z".to_owned(),
                1,
                Value::Null
            ),
        ]
    );
    app.stop().await;
}

/// Four conversations on one day: one handed off and claimed by an agent after 30 s,
/// one still waiting, two never handed off.
async fn the_summary_counts_handoffs_and_agent_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let day = at("2026-01-01T00:00:00Z");
    let alice = HandoffState::Agent(UserId::parse("alice").unwrap());

    let claimed = app.seed_conversation("u1", "echo", plus(day, HOUR)).await;
    app.seed_message(
        &claimed,
        Sender::User,
        "a person, please",
        plus(day, HOUR),
        None,
    )
    .await;
    app.seed_handoff(
        &claimed,
        HandoffState::Bot,
        HandoffState::Waiting,
        plus(day, HOUR + 1_000),
    )
    .await;
    app.seed_handoff(
        &claimed,
        HandoffState::Waiting,
        alice.clone(),
        plus(day, HOUR + 31_000),
    )
    .await;
    app.seed_message(
        &claimed,
        Sender::Agent,
        "hi, alice here",
        plus(day, HOUR + 40_000),
        None,
    )
    .await;
    app.seed_handoff(&claimed, alice, HandoffState::Bot, plus(day, HOUR + 60_000))
        .await;
    let waiting = app
        .seed_conversation("u2", "echo", plus(day, 2 * HOUR))
        .await;
    app.seed_message(
        &waiting,
        Sender::User,
        "a person, please",
        plus(day, 2 * HOUR),
        None,
    )
    .await;
    app.seed_handoff(
        &waiting,
        HandoffState::Bot,
        HandoffState::Waiting,
        plus(day, 2 * HOUR + 1_000),
    )
    .await;
    for user in ["u3", "u4"] {
        let bot_only = app
            .seed_conversation(user, "echo", plus(day, 3 * HOUR))
            .await;
        app.seed_message(&bot_only, Sender::User, "hello", plus(day, 3 * HOUR), None)
            .await;
    }

    let response = app
        .get(
            &admin(),
            "/analytics/summary?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["buckets"],
        json!([{
            "bot_id": "echo",
            "bucket_start": "2026-01-01T00:00:00.000Z",
            "conversations_started": 4,
            "conversations_active": 4,
            "conversations_archived": 0,
            "messages": { "user": 4, "bot": 0, "system": 4, "agent": 1 },
            "distinct_users": 4,
            "replies": 0,
            "latency_p50_ms": null,
            "latency_p95_ms": null,
            "failed_replies": 0,
            "handoffs": 2,
            "handoffs_claimed": 1,
            "conversations_handed_off": 2,
            "handoff_share": 0.5,
            "handoff_wait_p50_ms": 30_000,
            "handoff_wait_p90_ms": 30_000,
            "feedback_up": 0,
            "feedback_down": 0,
            "feedback_share": null,
        }])
    );
    app.stop().await;
}

/// Two replies rated through the API, one rating changed and one taken back and
/// given again: the summary counts each reply's feedback as it stands now.
async fn the_summary_counts_feedback_as_it_stands(backend: Backend) {
    let app = spawn_app(backend).await;
    let ana = user("ana");
    let started = app
        .http
        .post(app.url("/conversations/start?wait=true"))
        .bearer_auth(&ana)
        .json(&json!({"bot_id": "echo", "initial_message": "one"}))
        .send()
        .await
        .unwrap();
    let started: Value = started.json().await.unwrap();
    let id = started["conversation_id"].as_str().unwrap().to_owned();
    let first = started["replies"][0]["id"].as_str().unwrap().to_owned();
    let sent = app
        .send_query(&ana, &id, "?wait=true", json!({"content": "two"}))
        .await;
    let sent: Value = sent.json().await.unwrap();
    let second = sent["replies"][0]["id"].as_str().unwrap().to_owned();
    let rate = |message: String, body: Option<Value>| {
        let request = match body {
            Some(body) => app
                .http
                .put(app.url(&format!("/conversations/{id}/messages/{message}/feedback")))
                .json(&body),
            None => app
                .http
                .delete(app.url(&format!("/conversations/{id}/messages/{message}/feedback"))),
        };
        request.bearer_auth(&ana).send()
    };
    for (message, body, status) in [
        (&first, Some(json!({"rating": "up"})), 200),
        (
            &first,
            Some(json!({"rating": "down", "comment": "wrong"})),
            200,
        ),
        (&second, Some(json!({"rating": "down"})), 200),
        (&second, None, 204),
        (&second, Some(json!({"rating": "up"})), 200),
    ] {
        let response = rate(message.clone(), body).await.unwrap();
        assert_eq!(response.status(), status);
    }
    let summary: Value = app
        .get(&admin(), "/analytics/summary?bot_id=echo")
        .await
        .json()
        .await
        .unwrap();
    let bucket = &summary["buckets"][0];
    assert_eq!(bucket["messages"]["bot"], 2, "{summary}");
    assert_eq!(
        (
            &bucket["feedback_up"],
            &bucket["feedback_down"],
            &bucket["feedback_share"]
        ),
        (&json!(1), &json!(1), &json!(1.0)),
        "{summary}"
    );
    app.stop().await;
}

async fn only_administrators_read_analytics(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app.get(&user("alice"), "/analytics/summary").await;
    assert_eq!(response.status(), 403);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "forbidden");
    let admin = admin();
    for query in [
        "?granularity=week",
        "?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
        "?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&granularity=hour",
        "?from=yesterday",
    ] {
        let response = app.get(&admin, &format!("/analytics/summary{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
    }
    let response = app.get(&admin, "/analytics/summary").await;
    assert_eq!(response.status(), 200);
    app.stop().await;
}
