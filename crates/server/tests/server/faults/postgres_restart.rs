//! PostgreSQL stopped at once and started again while REST and WebSocket writers
//! send: while it is away `/readyz` and sends answer 503 `unavailable`; writers that
//! retry with the same `client_message_id` get every message acknowledged once it is
//! back, and nothing acknowledged is lost or stored twice. Every user message gets
//! exactly one reply; one the pipeline was working on when the database went away
//! may be a `system` notice that the bot could not answer, instead of the echo.
//!
//! The cluster is the test's own ([`PrivatePostgres`]), never the machine's shared
//! server, which other tests use at the same time.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::postgres::PrivatePostgres;
use super::{
    Answers, OnRefusal, Transport, Writer, assert_intact, start_binary, wait_for_progress,
};
use crate::helpers::{Client, PATIENCE, user};

/// Messages each writer sends; the outage comes after a third of them.
const MESSAGES_EACH: usize = 30;

/// How long the writers keep retrying one message: the outage and the recovery
/// together must fit in it.
const RETRYING: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_answers_503_while_away_and_loses_nothing_acknowledged() {
    let Some(postgres) = tokio::task::spawn_blocking(PrivatePostgres::start)
        .await
        .expect("the cluster starts")
    else {
        return;
    };
    let postgres = Arc::new(postgres);
    let server = start_binary(&postgres.url()).await;
    let client = server.client();
    let token = user("writer");
    let transports = [
        Transport::Rest,
        Transport::Rest,
        Transport::WebSocket,
        Transport::WebSocket,
    ];
    let progress = Arc::new(AtomicUsize::new(0));
    let retry_until = Instant::now() + RETRYING;
    let writers = Writer::start_each(
        &client,
        server.address,
        &token,
        &transports,
        MESSAGES_EACH,
        OnRefusal::RetryUntil(retry_until),
        &progress,
    )
    .await;
    let probe = client.start(&token, "echo", "probe").await;
    let probe = probe["conversation_id"].as_str().expect("an id");
    wait_for_progress(&progress, transports.len() * MESSAGES_EACH / 3).await;

    let stopping = Arc::clone(&postgres);
    tokio::task::spawn_blocking(move || stopping.stop_immediately())
        .await
        .expect("PostgreSQL stops");
    wait_for_readiness(&client, 503).await;
    assert_eq!(
        refusal_while_away(&client, &token, probe).await,
        (503, "unavailable".to_owned())
    );
    let resuming = Arc::clone(&postgres);
    tokio::task::spawn_blocking(move || resuming.resume())
        .await
        .expect("PostgreSQL starts again");
    wait_for_readiness(&client, 200).await;

    let mut outcomes = Vec::new();
    for (writer, task) in writers {
        let written = task.await.expect("a writer");
        assert_eq!(
            written.acknowledged.len(),
            MESSAGES_EACH,
            "{} gave up: {:?}",
            writer.name,
            written.refusals
        );
        for refusal in &written.refusals {
            assert!(
                matches!(
                    refusal.as_str(),
                    "503 unavailable" | "error frame unavailable"
                ),
                "{}: {refusal}",
                writer.name
            );
        }
        outcomes.push((writer, written));
    }
    for (writer, written) in &outcomes {
        let messages = client.answered_messages(&token, &writer.conversation).await;
        assert_intact(&messages, written, Answers::ByTheBotOrAFailureNotice);
    }
    drop(server);
}

/// Waits until `/readyz` answers `status`.
async fn wait_for_readiness(client: &Client, status: u16) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let last = reqwest::get(format!("{}/readyz", client.base))
            .await
            .map(|response| response.status().as_u16())
            .ok();
        if last == Some(status) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz did not answer {status} (last: {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A send while the database is away: its status and problem code.
async fn refusal_while_away(client: &Client, token: &str, conversation: &str) -> (u16, String) {
    let response = client
        .post(
            token,
            &format!("/conversations/{conversation}/messages"),
            json!({"content": "while away"}),
        )
        .await;
    let status = response.status().as_u16();
    let problem: Value = response.json().await.expect("a problem");
    (
        status,
        problem["code"].as_str().unwrap_or_default().to_owned(),
    )
}
