//! The management tests' additions to the shared harness (`crate::helpers`): batch
//! and status requests, and seeding of conversations, messages and handoffs with
//! chosen times through the storage adapter on the server's own database.

#![allow(dead_code)] // Each module uses a different subset of helpers.

use confab_domain::bot::BotId;
use confab_domain::conversation::{
    Conversation, ConversationChange, ConversationId, ConversationStatus, Metadata,
};
use confab_domain::handoff::{HandoffChange, HandoffState};
use confab_domain::message::{
    Attachments, Message, MessageContent, MessageId, NewMessage, ReplyTo, Sender,
};
use confab_domain::ports::{
    ConversationRepository, IdGenerator, MessageRepository, UuidV7Generator,
};
use confab_domain::session::{Session, SessionId};
use confab_domain::timestamp::Timestamp;
use confab_domain::user::UserId;
use serde_json::{Value, json};

use crate::helpers::{TestApp, WsClient};

/// A time given as RFC 3339.
pub fn at(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).unwrap()
}

/// `base` plus `millis` milliseconds.
pub fn plus(base: Timestamp, millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(base.unix_millis() + millis).unwrap()
}

impl TestApp {
    pub async fn batch(&self, token: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url("/conversations/batch"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("batch request")
    }

    /// A conversation's status as its user sees it, or `None` when it is gone.
    pub async fn status_of(&self, token: &str, id: &str) -> Option<String> {
        let response = self.get(token, &format!("/conversations/{id}")).await;
        if response.status() == 404 {
            return None;
        }
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        Some(body["status"].as_str().unwrap().to_owned())
    }

    /// Stores a conversation of `user` with `bot`, created (and last active) at
    /// `created`.
    pub async fn seed_conversation(
        &self,
        user: &str,
        bot: &str,
        created: Timestamp,
    ) -> Conversation {
        let conversation = Conversation::begun(
            ConversationId::from_uuid(UuidV7Generator.new_id()),
            SessionId::from_uuid(UuidV7Generator.new_id()),
            UserId::parse(user).unwrap(),
            BotId::parse(bot).unwrap(),
            created,
        );
        let session = Session::new(&conversation);
        self.store()
            .await
            .create(&conversation, &session)
            .await
            .unwrap();
        conversation
    }

    /// Appends a message at `time`, answering `question` when given.
    pub async fn seed_message(
        &self,
        conversation: &Conversation,
        sender: Sender,
        content: &str,
        time: Timestamp,
        question: Option<&Message>,
    ) -> Message {
        let sender_id = match sender {
            Sender::User => conversation.user_id.to_string(),
            Sender::Bot => conversation.bot_id.to_string(),
            Sender::System => "confab".to_owned(),
            Sender::Agent => "agent".to_owned(),
        };
        let message = NewMessage {
            id: MessageId::from_uuid(UuidV7Generator.new_id()),
            conversation_id: conversation.id,
            sender,
            sender_id,
            content: MessageContent::trusted(content),
            attachments: Attachments::none(),
            suggestions: Vec::new(),
            client_message_id: None,
            answers: question.map(|m| ReplyTo {
                message_id: m.id,
                seq: m.seq,
            }),
            timestamp: time,
            metadata: Metadata::default(),
        };
        self.store()
            .await
            .append(&message)
            .await
            .unwrap()
            .into_message()
    }

    /// Moves a conversation's handoff state from `from` to `to` at `time`, with the
    /// notice the service would store.
    pub async fn seed_handoff(
        &self,
        conversation: &Conversation,
        from: HandoffState,
        to: HandoffState,
        time: Timestamp,
    ) -> Message {
        let change = HandoffChange { from, to };
        let notice = NewMessage {
            id: MessageId::from_uuid(UuidV7Generator.new_id()),
            conversation_id: conversation.id,
            sender: Sender::System,
            sender_id: "confab".to_owned(),
            content: MessageContent::trusted(change.notice()),
            attachments: Attachments::none(),
            suggestions: Vec::new(),
            client_message_id: None,
            answers: None,
            timestamp: time,
            metadata: Metadata::default(),
        };
        self.store()
            .await
            .change_handoff(conversation.id, &change, &notice)
            .await
            .unwrap()
    }

    /// Archives a conversation in storage.
    pub async fn seed_archive(&self, conversation: &Conversation) {
        let change = ConversationChange {
            status: Some(ConversationStatus::Archived),
            ..ConversationChange::default()
        };
        self.store()
            .await
            .update(conversation.id, &change)
            .await
            .unwrap();
    }
}

impl WsClient {
    /// Subscribes to a conversation by session id and waits for the acknowledgement.
    pub async fn subscribe(&mut self, session_id: &str) {
        self.send_json(json!({ "type": "subscribe", "session_id": session_id }))
            .await;
        let subscribed = self.next_of("subscribed").await;
        assert_eq!(subscribed["session_id"], session_id);
    }
}
