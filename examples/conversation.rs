//! Embedding confab's domain: a `ConversationService` on the in-memory store, with a
//! bot engine of our own that streams its answer word by word, and a user talking to
//! it. Run it with `cargo run -p embedding-examples --example conversation`.
//!
//! A real embedding would put its own storage and event bus behind the same ports
//! (see `tests/own_storage.rs` for a storage adapter); everything else is the same.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use confab_domain::bot::{Bot, BotId, BotName, EngineKind, EngineSpec};
use confab_domain::conversation::Metadata;
use confab_domain::error::BotError;
use confab_domain::ports::{
    BotEngine, BotReply, BotRepository, BotRequest, Clock, Ports, ReplyChunk, SessionRepository,
    SystemClock, UuidV7Generator,
};
use confab_domain::reply::{ReplySettings, SingleInstanceLeases};
use confab_domain::service::{ConversationService, MessageDraft, StartConversation};
use confab_domain::testing::{InMemoryStore, RecordingEventBus, StaticEngines};
use confab_domain::user::{Caller, UserId};
use futures::StreamExt;
use futures::stream::{self, BoxStream};

/// Answers in capitals, one word at a time, and remembers how many times it spoke
/// in the conversation's session context.
struct Shouter;

impl BotEngine for Shouter {
    fn reply(&self, request: BotRequest) -> BoxStream<'static, Result<ReplyChunk, BotError>> {
        let text = request.message.content.as_str().to_uppercase();
        let spoken = request
            .session
            .context
            .get("spoken")
            .and_then(|n| n.as_u64());
        let mut context = request.session.context.clone();
        context.insert("spoken".to_owned(), (spoken.unwrap_or(0) + 1).into());
        let words: Vec<Result<ReplyChunk, BotError>> = text
            .split_inclusive(' ')
            .map(|word| Ok(ReplyChunk::Delta(word.to_owned())))
            .chain([Ok(ReplyChunk::Done(BotReply {
                content: format!("{text}!"),
                context: Some(context),
                ..BotReply::default()
            }))])
            .collect();
        stream::iter(words).boxed()
    }

    fn reads_history(&self) -> bool {
        false
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let store = InMemoryStore::new();
    let clock = Arc::new(SystemClock);
    let ports = Ports {
        conversations: Arc::new(store.clone()),
        messages: Arc::new(store.clone()),
        sessions: Arc::new(store.clone()),
        bots: Arc::new(store.clone()),
        engines: Arc::new(StaticEngines::of(Shouter)),
        events: Arc::new(RecordingEventBus::new()),
        leases: Arc::new(SingleInstanceLeases),
        clock: clock.clone(),
        ids: Arc::new(UuidV7Generator),
    };
    let now = clock.now();
    let bot_id = BotId::parse("shouter")?;
    store
        .upsert(&Bot {
            id: bot_id.clone(),
            name: BotName::parse("Shouter")?,
            description: "Says it louder.".to_owned(),
            engine: EngineSpec::of(EngineKind::Echo),
            created_at: now,
            updated_at: now,
        })
        .await?;

    let service = ConversationService::new(ports, ReplySettings::default());
    let ana = Caller::user(UserId::parse("ana")?);
    let started = service
        .start(
            &ana,
            StartConversation {
                bot_id,
                initial_message: None,
                title: None,
                metadata: Metadata::default(),
            },
        )
        .await?;
    let conversation = started.conversation.id;
    for text in ["hello there", "how are you"] {
        let sent = service
            .send(
                &ana,
                conversation,
                MessageDraft::parse(text, Vec::new(), None)?,
            )
            .await?;
        service
            .await_replies(&sent.message, Duration::from_secs(5))
            .await?;
    }

    for message in store.messages_of(conversation) {
        println!(
            "{:>2} {:<6} {}",
            message.seq.get(),
            message.sender.as_str(),
            message.content.as_str()
        );
    }
    let session = SessionRepository::get(&store, started.conversation.session_id).await?;
    println!(
        "session context: {}",
        serde_json::Value::Object(session.context)
    );
    Ok(())
}
