//! The bot tests' additions to the shared harness (`crate::helpers`).

#![allow(dead_code)] // Each module uses a different subset of helpers.

use serde_json::Value;

use crate::helpers::WsClient;

impl WsClient {
    /// Frames until (and including) the first stored message sent by the bot.
    pub(crate) async fn until_bot_message(&mut self) -> Vec<Value> {
        let mut frames = Vec::new();
        loop {
            let frame = self.next_json().await;
            let done = frame["type"] == "message" && frame["sender"] == "bot";
            frames.push(frame);
            if done {
                return frames;
            }
        }
    }
}
