//! A storage adapter written outside confab's crates, checked by the storage
//! contract suite that `confab-domain` exports: the way an embedding team proves its
//! own store keeps every promise the domain relies on (`cargo test -p
//! embedding-examples`).
//!
//! The adapter here is an audited store: every write is recorded in an audit log
//! before it reaches the store underneath (the domain's in-memory store, standing in
//! for the team's database). A store of one's own implements the same five traits;
//! the suite does not care what is underneath.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use confab_domain::bot::{Bot, BotId};
use confab_domain::conversation::{
    Conversation, ConversationChange, ConversationId, ConversationPage, ListQuery,
};
use confab_domain::error::RepoError;
use confab_domain::handoff::{HandoffChange, HandoffListing};
use confab_domain::lease::{LeaseHolder, Release};
use confab_domain::message::{
    Appended, Feedback, HistoryPage, HistoryQuery, Message, MessageId, NewMessage, Seq,
};
use confab_domain::ports::{
    BotRepository, ConversationRepository, MessageRepository, ReplyLeases, SessionRepository,
};
use confab_domain::search::SearchQuery;
use confab_domain::session::{Session, SessionId};
use confab_domain::testing::InMemoryStore;
use confab_domain::testing::contract::Stores;
use confab_domain::timestamp::Timestamp;
use confab_domain::user::UserId;

/// Records each write, then hands every call to the store underneath.
#[derive(Clone, Default)]
struct AuditedStore {
    inner: InMemoryStore,
    log: Arc<Mutex<Vec<String>>>,
}

impl AuditedStore {
    fn record(&self, entry: String) {
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
    }
}

#[async_trait]
impl ConversationRepository for AuditedStore {
    async fn create(&self, c: &Conversation, s: &Session) -> Result<(), RepoError> {
        self.record(format!("create conversation {}", c.id));
        self.inner.create(c, s).await
    }
    async fn get(&self, id: ConversationId) -> Result<Conversation, RepoError> {
        ConversationRepository::get(&self.inner, id).await
    }
    async fn get_by_session(&self, id: SessionId) -> Result<Conversation, RepoError> {
        self.inner.get_by_session(id).await
    }
    async fn list(&self, user: &UserId, query: &ListQuery) -> Result<ConversationPage, RepoError> {
        ConversationRepository::list(&self.inner, user, query).await
    }
    async fn update(
        &self,
        id: ConversationId,
        change: &ConversationChange,
    ) -> Result<Conversation, RepoError> {
        self.record(format!("update conversation {id}"));
        self.inner.update(id, change).await
    }
    async fn delete(&self, id: ConversationId) -> Result<(), RepoError> {
        self.record(format!("delete conversation {id}"));
        ConversationRepository::delete(&self.inner, id).await
    }
    async fn with_pending_replies(&self, limit: u32) -> Result<Vec<ConversationId>, RepoError> {
        self.inner.with_pending_replies(limit).await
    }
    async fn change_handoff(
        &self,
        id: ConversationId,
        change: &HandoffChange,
        notice: &NewMessage,
    ) -> Result<Message, RepoError> {
        self.record(format!("handoff of {id} to {}", change.to.as_str()));
        self.inner.change_handoff(id, change, notice).await
    }
    async fn in_handoff(
        &self,
        listing: &HandoffListing,
        limit: u32,
    ) -> Result<Vec<Conversation>, RepoError> {
        self.inner.in_handoff(listing, limit).await
    }
}

#[async_trait]
impl MessageRepository for AuditedStore {
    async fn append(&self, message: &NewMessage) -> Result<Appended, RepoError> {
        self.record(format!(
            "append {} to {}",
            message.id, message.conversation_id
        ));
        self.inner.append(message).await
    }
    async fn history(&self, c: ConversationId, q: &HistoryQuery) -> Result<HistoryPage, RepoError> {
        self.inner.history(c, q).await
    }
    async fn mark_answered(&self, c: ConversationId, seq: Seq) -> Result<(), RepoError> {
        self.record(format!("answered {c} up to {}", seq.get()));
        self.inner.mark_answered(c, seq).await
    }
    async fn get(&self, c: ConversationId, id: MessageId) -> Result<Message, RepoError> {
        MessageRepository::get(&self.inner, c, id).await
    }
    async fn set_feedback(
        &self,
        c: ConversationId,
        id: MessageId,
        feedback: Option<Feedback>,
    ) -> Result<Message, RepoError> {
        self.record(format!("feedback on {id}"));
        self.inner.set_feedback(c, id, feedback).await
    }
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Message>, RepoError> {
        self.inner.search(query).await
    }
}

#[async_trait]
impl SessionRepository for AuditedStore {
    async fn get(&self, id: SessionId) -> Result<Session, RepoError> {
        SessionRepository::get(&self.inner, id).await
    }
    async fn save_context(
        &self,
        id: SessionId,
        context: &serde_json::Map<String, serde_json::Value>,
        at: Timestamp,
    ) -> Result<(), RepoError> {
        self.record(format!("save context of {id}"));
        self.inner.save_context(id, context, at).await
    }
}

#[async_trait]
impl BotRepository for AuditedStore {
    async fn get(&self, id: &BotId) -> Result<Bot, RepoError> {
        BotRepository::get(&self.inner, id).await
    }
    async fn list(&self) -> Result<Vec<Bot>, RepoError> {
        BotRepository::list(&self.inner).await
    }
    async fn upsert(&self, bot: &Bot) -> Result<(), RepoError> {
        self.record(format!("upsert bot {}", bot.id));
        self.inner.upsert(bot).await
    }
    async fn delete(&self, id: &BotId) -> Result<(), RepoError> {
        self.record(format!("delete bot {id}"));
        BotRepository::delete(&self.inner, id).await
    }
}

#[async_trait]
impl ReplyLeases for AuditedStore {
    async fn claim(
        &self,
        c: ConversationId,
        holder: LeaseHolder,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, RepoError> {
        self.inner.claim(c, holder, now, until).await
    }
    async fn release(&self, c: ConversationId, holder: LeaseHolder) -> Result<Release, RepoError> {
        self.inner.release(c, holder).await
    }
    async fn orphaned(&self, now: Timestamp, limit: u32) -> Result<Vec<ConversationId>, RepoError> {
        self.inner.orphaned(now, limit).await
    }
}

// One test per check of the suite, each on a fresh store.
confab_domain::storage_contract_tests!(|| async {
    let store = AuditedStore::default();
    Stores {
        conversations: Arc::new(store.clone()),
        messages: Arc::new(store.clone()),
        sessions: Arc::new(store.clone()),
        bots: Arc::new(store.clone()),
        leases: Arc::new(store),
        teardown: None,
    }
});

#[tokio::test]
async fn the_audit_log_records_each_write_once() {
    let store = AuditedStore::default();
    let bot = confab_domain::testing::test_bot("alpha");
    store.upsert(&bot).await.expect("stored");
    BotRepository::get(&store, &bot.id)
        .await
        .expect("read back");
    let log = store.log.lock().expect("the log").clone();
    assert_eq!(log, vec!["upsert bot alpha".to_owned()]);
}
