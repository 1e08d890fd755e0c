//! The server killed with SIGKILL while three REST writers and two WebSocket writers
//! send to five conversations, then started again on the same database: every
//! acknowledged message is there exactly once, seqs have no gaps, and every user
//! message stored (acknowledged or cut off by the kill) is answered exactly once.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use super::{
    Answers, OnRefusal, Transport, Writer, assert_intact, start_binary, wait_for_progress,
};
use crate::helpers::{Backend, TestDatabase, user};
use crate::on_every_backend;

/// Messages each writer sends at most; the kill comes long before the last.
const MESSAGES_EACH: usize = 60;

/// Acknowledgements, across writers, before the kill: the load is well under way.
const ACKNOWLEDGED_BEFORE_KILL: usize = 40;

on_every_backend!(
    killing_the_server_under_load_loses_no_acknowledged_message_and_answers_each_once
);

async fn killing_the_server_under_load_loses_no_acknowledged_message_and_answers_each_once(
    backend: Backend,
) {
    let database = TestDatabase::create(backend).await;
    let first = start_binary(&database.url).await;
    let client = first.client();
    let token = user("writer");
    let transports = [
        Transport::Rest,
        Transport::Rest,
        Transport::Rest,
        Transport::WebSocket,
        Transport::WebSocket,
    ];
    let progress = Arc::new(AtomicUsize::new(0));
    let writers = Writer::start_each(
        &client,
        first.address,
        &token,
        &transports,
        MESSAGES_EACH,
        OnRefusal::Stop,
        &progress,
    )
    .await;
    wait_for_progress(&progress, ACKNOWLEDGED_BEFORE_KILL).await;
    first.kill();
    let mut outcomes = Vec::new();
    for (writer, task) in writers {
        let written = task.await.expect("a writer");
        assert!(
            written.acknowledged.len() < MESSAGES_EACH,
            "{} finished before the kill",
            writer.name
        );
        for refusal in &written.refusals {
            // A WebSocket writer connects in its own task: on a busy machine the kill
            // can come before its socket does, and then it sent nothing at all.
            assert!(
                matches!(
                    refusal.as_str(),
                    "no response" | "socket closed" | "socket refused"
                ),
                "{}: {refusal}",
                writer.name
            );
        }
        outcomes.push((writer, written));
    }

    let second = start_binary(&database.url).await;
    let client = second.client();
    for (writer, written) in &outcomes {
        let messages = client.answered_messages(&token, &writer.conversation).await;
        assert_intact(&messages, written, Answers::ByTheBot);
    }
    drop(second);
}
