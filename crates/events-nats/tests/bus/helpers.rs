//! The harness: buses on the shared server under a prefix of their own (so that tests
//! running in parallel never see each other's events), NATS servers of a test's own,
//! events that tell their order, and bounded waits.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use confab_domain::conversation::{ConversationId, ConversationStatus, Metadata};
use confab_domain::event::{ConversationEvent, EventKind, SharedEvent};
use confab_domain::message::{
    Attachment, Attachments, ClientMessageId, Feedback, FeedbackComment, Message, MessageContent,
    MessageId, Rating, Sender, Seq, Suggestion,
};
use confab_domain::ports::EventStream;
use confab_domain::session::SessionId;
use confab_domain::timestamp::Timestamp;
use confab_events_nats::{NatsEventBus, NatsSettings};
use futures::StreamExt;
use uuid::Uuid;

/// The longest any awaited event may take.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The longest a reconnect may take: the client's back-off reaches 4 s between tries.
pub(crate) const RECONNECT_WAIT: Duration = Duration::from_secs(20);

/// The shared NATS server's URL.
pub(crate) fn nats_url() -> String {
    std::env::var("CONFAB_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A subject prefix no other test uses.
pub(crate) fn unique_prefix() -> String {
    format!("confabtest{}", Uuid::now_v7().simple())
}

/// A bus on `url` under `prefix`, connected.
pub(crate) async fn connected_bus(url: &str, prefix: &str, local_capacity: usize) -> NatsEventBus {
    let bus = NatsEventBus::connect(NatsSettings {
        url: url.to_owned(),
        subject_prefix: prefix.to_owned(),
        local_capacity,
    })
    .await
    .expect("the settings are valid");
    tokio::time::timeout(WAIT, bus.wait_until_connected())
        .await
        .unwrap_or_else(|_| panic!("no NATS server answers at {url}"));
    bus
}

/// One instance on the shared server, alone under a new prefix.
pub(crate) async fn instance() -> NatsEventBus {
    connected_bus(&nats_url(), &unique_prefix(), 1024).await
}

/// Two instances on the shared server: two connections under one new prefix.
pub(crate) async fn two_instances() -> (NatsEventBus, NatsEventBus) {
    let prefix = unique_prefix();
    let url = nats_url();
    (
        connected_bus(&url, &prefix, 1024).await,
        connected_bus(&url, &prefix, 1024).await,
    )
}

/// A new conversation.
pub(crate) fn conversation() -> ConversationId {
    ConversationId::from_uuid(Uuid::now_v7())
}

/// An event of `conversation`.
pub(crate) fn event(conversation: ConversationId, kind: EventKind) -> ConversationEvent {
    ConversationEvent {
        conversation_id: conversation,
        session_id: SessionId::from_uuid(Uuid::nil()),
        kind,
    }
}

/// The `n`th event of a sequence: a delta whose index is `n`.
pub(crate) fn numbered(conversation: ConversationId, n: u32) -> ConversationEvent {
    event(
        conversation,
        EventKind::Delta {
            reply_id: MessageId::from_uuid(Uuid::nil()),
            index: n,
            content: format!("part {n}"),
            snapshot: false,
        },
    )
}

/// One event of every kind, with every optional field of a message set in one of them.
pub(crate) fn every_kind(conversation: ConversationId) -> Vec<ConversationEvent> {
    let attachments = Attachments::parse(vec![
        Attachment::parse(
            "image",
            "https://example.com/cat.png",
            Some("image/png"),
            Some("cat.png"),
            Some(2048),
        )
        .expect("a valid attachment"),
        Attachment::parse("link", "https://example.com", None, None, None)
            .expect("a valid attachment"),
    ])
    .expect("two attachments");
    let full = Message {
        id: MessageId::from_uuid(Uuid::now_v7()),
        conversation_id: conversation,
        seq: Seq::new(7),
        sender: Sender::Bot,
        sender_id: "helper".to_owned(),
        content: MessageContent::trusted("Here is a cat."),
        attachments,
        suggestions: vec![Suggestion {
            text: "Another".to_owned(),
        }],
        client_message_id: Some(ClientMessageId::parse("c-1").expect("a valid id")),
        reply_to: Some(MessageId::from_uuid(Uuid::now_v7())),
        timestamp: Timestamp::from_unix_millis(1_790_000_000_123).expect("in range"),
        metadata: Metadata::parse(serde_json::json!({"cut": true, "n": [1, 2.5]}))
            .expect("an object"),
        feedback: Some(Feedback {
            rating: Rating::Down,
            comment: FeedbackComment::parse("not a cat").expect("a comment"),
            at: Timestamp::from_unix_millis(1_790_000_000_456).expect("in range"),
        }),
    };
    let bare = Message {
        id: MessageId::from_uuid(Uuid::now_v7()),
        seq: Seq::new(8),
        sender: Sender::User,
        sender_id: "user-1".to_owned(),
        content: MessageContent::trusted("hi"),
        attachments: Attachments::none(),
        suggestions: Vec::new(),
        client_message_id: None,
        reply_to: None,
        metadata: Metadata::default(),
        feedback: None,
        ..full.clone()
    };
    [
        EventKind::Feedback {
            message_id: full.id,
            feedback: full.feedback.clone(),
        },
        EventKind::Feedback {
            message_id: full.id,
            feedback: None,
        },
        EventKind::Message(full),
        EventKind::Message(bare),
        EventKind::Delta {
            reply_id: MessageId::from_uuid(Uuid::now_v7()),
            index: 2,
            content: "so far".to_owned(),
            snapshot: true,
        },
        EventKind::Typing {
            sender: Sender::Bot,
            active: true,
        },
        EventKind::Status(ConversationStatus::Archived),
        EventKind::Deleted,
    ]
    .into_iter()
    .map(|kind| event(conversation, kind))
    .collect()
}

/// The stream's next event, which must come within [`WAIT`].
pub(crate) async fn next(stream: &mut EventStream) -> SharedEvent {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("no event came in time")
        .expect("the stream ended")
}

/// Waits for the stream to end, which must happen within [`WAIT`], skipping events
/// still buffered.
pub(crate) async fn ends(stream: &mut EventStream) {
    tokio::time::timeout(WAIT, async { while stream.next().await.is_some() {} })
        .await
        .expect("the stream did not end");
}

/// A NATS server of a test's own, on a free port of 127.0.0.1, which the test may stop
/// and start again on the same port.
pub(crate) struct NatsServer {
    port: u16,
    process: Option<Child>,
}

impl NatsServer {
    /// Starts a server.
    pub(crate) fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            port,
            process: None,
        };
        server.restart();
        server
    }

    /// Its URL.
    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server.
    pub(crate) fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().expect("the server can be killed");
            process.wait().expect("the server exits");
        }
    }

    /// Starts the server again on the same port.
    pub(crate) fn restart(&mut self) {
        let binary = std::env::var("CONFAB_TEST_NATS_SERVER")
            .unwrap_or_else(|_| "/usr/sbin/nats-server".to_owned());
        let process = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {binary}: {error}"));
        self.process = Some(process);
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill().ok();
            process.wait().ok();
        }
    }
}
