//! The use cases of a user: [`ConversationService`] enforces every rule of the model
//! and calls the ports. Handlers of any transport call it and nothing below it.
//!
//! # Layout
//! - this file: the service, its bots and the visibility of a conversation.
//! - `commands`: starting, sending, updating, deleting, typing.
//! - `feedback`: rating bot replies up or down, and taking it back.
//! - `history`: history pages, the caller's list, waiting for a message's reply.
//! - `follow`: replay from storage then live events, without gap or duplicate.
//! - `batch`: one action on many conversations, and a history as a stream.
//! - `handoff`: asking for a person, the agents' queue, claiming and releasing.
//! - `search`: full-text search over the messages a caller may see.
//!
//! The service reaches storage, bots and the bus through [`Ports`]
//! and hands reply work to the [`ReplyPipeline`]; neither imports this module.

mod batch;
mod commands;
mod feedback;
mod follow;
mod handoff;
mod history;
mod search;

use std::sync::Arc;

pub(crate) use self::batch::message_range;
pub use self::batch::{
    BATCH_MAX_IDS, BatchAction, BatchOutcome, BatchResult, EXPORT_PAGE, MessageStream,
};
pub use self::commands::{MessageDraft, Sent, StartConversation, Started};
pub use self::follow::FollowStream;
pub use self::handoff::{HANDOFF_LIST_MAX, HandoffEntry, QUEUE_RECENT_MESSAGES};
pub use self::history::HistoryRequest;
use crate::bot::{Bot, BotId};
use crate::conversation::{Conversation, ConversationId};
use crate::error::{DomainError, RepoError};
use crate::event::EventKind;
use crate::handoff::HandoffState;
use crate::ports::{Ports, publish};
use crate::reply::{ReplyPipeline, ReplySettings};
use crate::session::SessionId;
use crate::user::{Caller, Role};

/// The use cases of confab.
pub struct ConversationService {
    ports: Ports,
    replies: Arc<ReplyPipeline>,
}

impl ConversationService {
    /// A service over `ports`, with its reply pipeline.
    pub fn new(ports: Ports, reply_settings: ReplySettings) -> Self {
        let replies = Arc::new(ReplyPipeline::new(ports.clone(), reply_settings));
        Self { ports, replies }
    }

    pub(crate) fn ports(&self) -> &Ports {
        &self.ports
    }

    /// The reply pipeline, for start-up recovery and shutdown.
    pub fn replies(&self) -> &Arc<ReplyPipeline> {
        &self.replies
    }

    /// Every bot, ordered by id.
    pub async fn bots(&self) -> Result<Vec<Bot>, DomainError> {
        Ok(self.ports.bots.list().await?)
    }

    /// One bot.
    pub async fn bot(&self, id: &BotId) -> Result<Bot, DomainError> {
        self.ports.bots.get(id).await.map_err(|error| match error {
            RepoError::NotFound => DomainError::BotNotFound(id.to_string()),
            other => other.into(),
        })
    }

    /// The conversation with this id, if the caller may see it.
    pub async fn conversation(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<Conversation, DomainError> {
        let conversation = self
            .ports
            .conversations
            .get(id)
            .await
            .map_err(not_found_as(DomainError::ConversationNotFound))?;
        visible_to(caller, conversation).ok_or(DomainError::ConversationNotFound)
    }

    /// The conversation a session belongs to, if the caller may see it.
    pub async fn conversation_by_session(
        &self,
        caller: &Caller,
        id: SessionId,
    ) -> Result<Conversation, DomainError> {
        let conversation = self
            .ports
            .conversations
            .get_by_session(id)
            .await
            .map_err(not_found_as(DomainError::SessionNotFound))?;
        visible_to(caller, conversation).ok_or(DomainError::SessionNotFound)
    }

    async fn publish(&self, conversation: &Conversation, kind: EventKind) {
        publish(&*self.ports.events, conversation, kind).await;
    }
}

/// The conversation, if the caller may see it: its owner, an admin, its bot, or an
/// agent while it waits in the queue or is theirs.
fn visible_to(caller: &Caller, conversation: Conversation) -> Option<Conversation> {
    let visible = match &caller.role {
        Role::Admin => true,
        Role::User => conversation.user_id == caller.user_id,
        Role::Bot(bot) => conversation.bot_id == *bot,
        Role::Agent => {
            conversation.user_id == caller.user_id
                || conversation.handoff == HandoffState::Waiting
                || conversation.handoff.holder() == Some(&caller.user_id)
        }
    };
    visible.then_some(conversation)
}

fn not_found_as(domain: DomainError) -> impl FnOnce(RepoError) -> DomainError {
    move |error| match error {
        RepoError::NotFound => domain,
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::conversation::{
        ConversationChange, ConversationFilter, ConversationStatus, ListPosition, ListQuery,
        Metadata, PageSize, Title,
    };
    use crate::error::ValidationError;
    use crate::message::{Attachment, HistoryCursor, HistoryPage, MessageId, Sender, Seq};
    use crate::ports::{MockConversationRepository, MockMessageRepository, OwnAppend};
    use crate::testing::{ScriptedEngine, TestPorts, user};

    const DRAIN: Duration = Duration::from_secs(10);

    /// Fakes with an echo engine and the `echo` bot.
    fn fakes() -> (TestPorts, ScriptedEngine) {
        let engine = ScriptedEngine::echo();
        let fakes = TestPorts::with_engine(engine.clone());
        fakes.seed_bot("echo");
        (fakes, engine)
    }

    fn service(fakes: &TestPorts) -> ConversationService {
        fakes.service(ReplySettings::default())
    }

    fn draft(text: &str) -> MessageDraft {
        MessageDraft::parse(text, Vec::new(), None).expect("a valid draft")
    }

    fn draft_with_id(text: &str, client_message_id: &str) -> MessageDraft {
        MessageDraft::parse(text, Vec::new(), Some(client_message_id)).expect("a valid draft")
    }

    fn start_with(message: Option<MessageDraft>) -> StartConversation {
        StartConversation {
            bot_id: BotId::parse("echo").expect("valid bot id"),
            initial_message: message,
            title: None,
            metadata: Metadata::default(),
        }
    }

    async fn start(service: &ConversationService, caller: &Caller) -> Conversation {
        service
            .start(caller, start_with(None))
            .await
            .expect("starting a conversation")
            .conversation
    }

    /// A message repository that fails the test if anything is appended.
    fn appends_nothing() -> Arc<MockMessageRepository> {
        let mut messages = MockMessageRepository::new();
        messages.expect_append().never();
        messages
            .expect_append_own()
            .returning(|_, _| Ok(OwnAppend::NotTaken));
        // A history page is read beside the visibility check, and dropped when the
        // check fails.
        messages.expect_history().returning(|_, _| {
            Ok(HistoryPage {
                messages: Vec::new(),
                has_more: false,
            })
        });
        Arc::new(messages)
    }

    fn link(url: &str) -> Result<Attachment, ValidationError> {
        Attachment::parse("file", url, None, None, None)
    }

    #[test]
    fn empty_content_without_attachments_is_refused_as_invalid() {
        for empty in ["", "   ", "\n\t "] {
            let refused = MessageDraft::parse(empty, Vec::new(), None);
            assert_eq!(refused, Err(ValidationError::EmptyContent));
        }
        let error = DomainError::from(ValidationError::EmptyContent);
        assert!(matches!(
            error,
            DomainError::Invalid(ValidationError::EmptyContent)
        ));
    }

    #[test]
    fn content_of_17_kib_is_refused_as_too_long() {
        let refused = MessageDraft::parse(&"a".repeat(17 * 1024), Vec::new(), None);
        assert_eq!(
            refused,
            Err(ValidationError::ContentTooLong {
                max: 16 * 1024,
                actual: 17 * 1024
            })
        );
        assert!(MessageDraft::parse(&"a".repeat(16 * 1024), Vec::new(), None).is_ok());
    }

    #[test]
    fn eleven_attachments_are_refused_and_ten_are_fine() {
        let one = link("https://example.com/a.png").expect("valid attachment");
        assert_eq!(
            MessageDraft::parse("look", vec![one.clone(); 11], None),
            Err(ValidationError::TooManyAttachments {
                max: 10,
                actual: 11
            })
        );
        assert!(MessageDraft::parse("look", vec![one; 10], None).is_ok());
    }

    #[test]
    fn an_ftp_attachment_url_is_refused() {
        assert_eq!(
            link("ftp://example.com/file.txt"),
            Err(ValidationError::AttachmentUrl(
                "ftp://example.com/file.txt".to_owned()
            ))
        );
    }

    #[tokio::test]
    async fn sending_to_an_unknown_conversation_is_not_found_and_stores_nothing() {
        let (mut fakes, _) = fakes();
        fakes.ports.messages = appends_nothing();
        let service = service(&fakes);
        let unknown = ConversationId::from_uuid(uuid::Uuid::now_v7());
        let refused = service.send(&user("ana"), unknown, draft("hi")).await;
        assert!(
            matches!(refused, Err(DomainError::ConversationNotFound)),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn another_users_conversation_is_not_found_never_forbidden() {
        let (fakes, _) = fakes();
        let bobs = start(&service(&fakes), &user("bob")).await;
        let mut guarded = fakes.clone();
        guarded.ports.messages = appends_nothing();
        let service = service(&guarded);
        let ana = user("ana");

        let sent = service.send(&ana, bobs.id, draft("mine now")).await;
        assert!(
            matches!(sent, Err(DomainError::ConversationNotFound)),
            "{sent:?}"
        );
        let read = service.conversation(&ana, bobs.id).await;
        assert!(
            matches!(read, Err(DomainError::ConversationNotFound)),
            "{read:?}"
        );
        let history = service
            .history(
                &ana,
                bobs.id,
                HistoryRequest {
                    before: None,
                    after: None,
                    limit: PageSize::HISTORY_DEFAULT,
                },
            )
            .await;
        assert!(
            matches!(history, Err(DomainError::ConversationNotFound)),
            "{history:?}"
        );
        let archive = ConversationChange {
            status: Some(ConversationStatus::Archived),
            ..ConversationChange::default()
        };
        let updated = service.update(&ana, bobs.id, archive).await;
        assert!(
            matches!(updated, Err(DomainError::ConversationNotFound)),
            "{updated:?}"
        );
        let deleted = service.delete(&ana, bobs.id).await;
        assert!(
            matches!(deleted, Err(DomainError::ConversationNotFound)),
            "{deleted:?}"
        );
        let by_session = service.conversation_by_session(&ana, bobs.session_id).await;
        assert!(
            matches!(by_session, Err(DomainError::SessionNotFound)),
            "{by_session:?}"
        );

        let still = fakes
            .ports
            .conversations
            .get(bobs.id)
            .await
            .expect("bob's conversation is still there");
        assert_eq!(still, bobs, "another user changed bob's conversation");
        assert!(fakes.events.events_of(bobs.id).is_empty());
    }

    #[tokio::test]
    async fn sending_to_an_archived_conversation_is_refused_until_it_is_unarchived() {
        let (fakes, _) = fakes();
        let ana = user("ana");
        let conversation = start(&service(&fakes), &ana).await;
        let status = |status| ConversationChange {
            status: Some(status),
            ..ConversationChange::default()
        };
        service(&fakes)
            .update(&ana, conversation.id, status(ConversationStatus::Archived))
            .await
            .expect("archiving");

        let mut guarded = fakes.clone();
        guarded.ports.messages = appends_nothing();
        let refused = service(&guarded)
            .send(&ana, conversation.id, draft("hello?"))
            .await;
        assert!(
            matches!(refused, Err(DomainError::ConversationArchived)),
            "{refused:?}"
        );

        let service = service(&fakes);
        service
            .update(&ana, conversation.id, status(ConversationStatus::Active))
            .await
            .expect("unarchiving");
        let sent = service
            .send(&ana, conversation.id, draft("hello again"))
            .await
            .expect("an unarchived conversation takes messages");
        assert_eq!(sent.message.seq, Seq::new(1));
    }

    #[tokio::test]
    async fn starting_with_an_unknown_bot_is_bot_not_found_and_creates_nothing() {
        let (mut fakes, engine) = fakes();
        let mut conversations = MockConversationRepository::new();
        conversations.expect_create().never();
        fakes.ports.conversations = Arc::new(conversations);
        fakes.ports.messages = appends_nothing();
        let command = StartConversation {
            bot_id: BotId::parse("nobody").expect("valid bot id"),
            ..start_with(Some(draft("hi")))
        };
        let refused = service(&fakes).start(&user("ana"), command).await;
        assert!(
            matches!(&refused, Err(DomainError::BotNotFound(id)) if id == "nobody"),
            "{refused:?}"
        );
        assert_eq!(engine.calls(), 0);
    }

    #[tokio::test]
    async fn starting_stores_the_conversation_its_session_and_the_initial_message() {
        let (fakes, _) = fakes();
        let service = service(&fakes);
        let started = service
            .start(&user("ana"), start_with(Some(draft("hello"))))
            .await
            .expect("starting");
        let conversation = started.conversation;
        let initial = started.initial_message.expect("an initial message");
        assert_eq!(initial.seq, Seq::new(1));
        assert_eq!(initial.sender, Sender::User);
        assert_eq!(initial.sender_id, "ana");
        assert_eq!(conversation.status, ConversationStatus::Active);
        assert_eq!(conversation.bot_id.as_str(), "echo");
        let session = fakes
            .ports
            .sessions
            .get(conversation.session_id)
            .await
            .expect("the session is stored");
        assert_eq!(session.conversation_id, conversation.id);
        assert_eq!(
            service
                .conversation_by_session(&user("ana"), conversation.session_id)
                .await
                .expect("found by session")
                .id,
            conversation.id
        );
        assert!(service.replies().drain(DRAIN).await);
    }

    #[tokio::test]
    async fn a_retry_with_the_same_client_message_id_returns_the_original_without_a_second_reply() {
        let (fakes, engine) = fakes();
        let service = service(&fakes);
        let ana = user("ana");
        let conversation = start(&service, &ana).await;
        let first = service
            .send(&ana, conversation.id, draft_with_id("hello", "c-1"))
            .await
            .expect("sending");
        assert!(first.created);
        assert!(service.replies().drain(DRAIN).await);

        let retry = service
            .send(&ana, conversation.id, draft_with_id("hello", "c-1"))
            .await
            .expect("a retry is no error");
        assert!(service.replies().drain(DRAIN).await);
        assert!(!retry.created);
        assert_eq!(retry.message, first.message);
        assert_eq!(engine.calls(), 1, "the retry triggered a second reply");
        let stored = fakes.store.messages_of(conversation.id);
        assert_eq!(
            stored.len(),
            2,
            "one user message and one reply: {stored:?}"
        );
        let published = fakes
            .events
            .events_of(conversation.id)
            .into_iter()
            .filter(|e| matches!(&e.kind, EventKind::Message(m) if m.id == first.message.id))
            .count();
        assert_eq!(published, 1, "the retry was published again");
    }

    #[tokio::test]
    async fn a_retry_with_different_content_is_an_idempotency_mismatch() {
        let (fakes, engine) = fakes();
        let service = service(&fakes);
        let ana = user("ana");
        let conversation = start(&service, &ana).await;
        service
            .send(&ana, conversation.id, draft_with_id("hello", "c-1"))
            .await
            .expect("sending");
        let refused = service
            .send(&ana, conversation.id, draft_with_id("goodbye", "c-1"))
            .await;
        assert!(
            matches!(refused, Err(DomainError::IdempotencyMismatch)),
            "{refused:?}"
        );
        assert!(service.replies().drain(DRAIN).await);
        assert_eq!(engine.calls(), 1);
        let contents: Vec<String> = fakes
            .store
            .messages_of(conversation.id)
            .iter()
            .map(|m| m.content.as_str().to_owned())
            .collect();
        assert_eq!(
            contents,
            ["hello", "hello"],
            "user message and its echo only"
        );
    }

    #[tokio::test]
    async fn a_history_cursor_naming_another_conversations_message_is_invalid() {
        let (fakes, _) = fakes();
        let service = service(&fakes);
        let ana = user("ana");
        let mine = start(&service, &ana).await;
        let other = start(&service, &ana).await;
        let foreign = service
            .send(&ana, other.id, draft("elsewhere"))
            .await
            .expect("sending")
            .message;
        let request = |cursor| HistoryRequest {
            before: Some(HistoryCursor::Message(cursor)),
            after: None,
            limit: PageSize::HISTORY_DEFAULT,
        };
        let refused = service.history(&ana, mine.id, request(foreign.id)).await;
        let expected = foreign.id.to_string();
        assert!(
            matches!(&refused, Err(DomainError::Invalid(ValidationError::UnknownCursorMessage(id))) if *id == expected),
            "{refused:?}"
        );
        let unknown = MessageId::from_uuid(uuid::Uuid::now_v7());
        let refused = service.history(&ana, mine.id, request(unknown)).await;
        assert!(
            matches!(
                refused,
                Err(DomainError::Invalid(ValidationError::UnknownCursorMessage(
                    _
                )))
            ),
            "{refused:?}"
        );
        assert!(service.replies().drain(DRAIN).await);
    }

    #[tokio::test]
    async fn a_message_id_cursor_pages_by_that_messages_seq() {
        let (fakes, _) = fakes();
        let service = service(&fakes);
        let ana = user("ana");
        let conversation = start(&service, &ana).await;
        let mut sent = Vec::new();
        for n in 0..3 {
            let message = service
                .send(&ana, conversation.id, draft(&format!("m{n}")))
                .await
                .expect("sending")
                .message;
            assert!(service.replies().drain(DRAIN).await);
            sent.push(message);
        }
        let page = service
            .history(
                &ana,
                conversation.id,
                HistoryRequest {
                    before: Some(HistoryCursor::Message(sent[2].id)),
                    after: Some(HistoryCursor::Message(sent[0].id)),
                    limit: PageSize::HISTORY_DEFAULT,
                },
            )
            .await
            .expect("paging by message ids");
        let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq.get()).collect();
        assert_eq!(seqs, [2, 3, 4], "strictly between seq 1 and seq 5");
        assert!(!page.has_more);
    }

    #[tokio::test]
    async fn an_update_that_changes_nothing_is_refused_before_any_lookup() {
        let (mut fakes, _) = fakes();
        let mut conversations = MockConversationRepository::new();
        conversations.expect_get().never();
        conversations.expect_update().never();
        fakes.ports.conversations = Arc::new(conversations);
        let refused = service(&fakes)
            .update(
                &user("ana"),
                ConversationId::from_uuid(uuid::Uuid::now_v7()),
                ConversationChange::default(),
            )
            .await;
        assert!(
            matches!(
                refused,
                Err(DomainError::Invalid(ValidationError::EmptyChange))
            ),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn deleting_a_conversation_erases_it_and_publishes_a_deleted_event() {
        let (fakes, _) = fakes();
        let service = service(&fakes);
        let ana = user("ana");
        let conversation = start(&service, &ana).await;
        fakes.events.clear();
        service
            .delete(&ana, conversation.id)
            .await
            .expect("deleting");
        let kinds: Vec<EventKind> = fakes
            .events
            .events_of(conversation.id)
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, [EventKind::Deleted]);
        let event = &fakes.events.events()[0];
        assert_eq!(event.session_id, conversation.session_id);
        let gone = service.conversation(&ana, conversation.id).await;
        assert!(
            matches!(gone, Err(DomainError::ConversationNotFound)),
            "{gone:?}"
        );
        let again = service.delete(&ana, conversation.id).await;
        assert!(
            matches!(again, Err(DomainError::ConversationNotFound)),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn archiving_and_unarchiving_publish_status_events_and_renaming_does_not() {
        let (fakes, _) = fakes();
        let service = service(&fakes);
        let ana = user("ana");
        let conversation = start(&service, &ana).await;
        fakes.events.clear();
        let archived = service
            .update(
                &ana,
                conversation.id,
                ConversationChange {
                    status: Some(ConversationStatus::Archived),
                    ..ConversationChange::default()
                },
            )
            .await
            .expect("archiving");
        assert_eq!(archived.status, ConversationStatus::Archived);
        service
            .update(
                &ana,
                conversation.id,
                ConversationChange {
                    title: Some(Title::parse("Renamed").expect("valid title")),
                    ..ConversationChange::default()
                },
            )
            .await
            .expect("renaming");
        service
            .update(
                &ana,
                conversation.id,
                ConversationChange {
                    status: Some(ConversationStatus::Active),
                    ..ConversationChange::default()
                },
            )
            .await
            .expect("unarchiving");
        let kinds: Vec<EventKind> = fakes
            .events
            .events_of(conversation.id)
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                EventKind::Status(ConversationStatus::Archived),
                EventKind::Status(ConversationStatus::Active)
            ]
        );
    }

    #[tokio::test]
    async fn a_sent_message_is_published_and_answered_once() {
        let (fakes, engine) = fakes();
        let service = service(&fakes);
        let ana = user("ana");
        let conversation = start(&service, &ana).await;
        let sent = service
            .send(&ana, conversation.id, draft("ping"))
            .await
            .expect("sending");
        assert!(sent.created);
        let replies = service
            .await_replies(&sent.message, DRAIN)
            .await
            .expect("waiting for the reply");
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].reply_to, Some(sent.message.id));
        assert_eq!(replies[0].content.as_str(), "ping");
        assert!(service.replies().drain(DRAIN).await);
        assert_eq!(engine.calls(), 1);
        let first = fakes
            .events
            .events_of(conversation.id)
            .into_iter()
            .next()
            .map(|e| e.kind);
        assert_eq!(first, Some(EventKind::Message(sent.message)));
    }

    #[tokio::test]
    async fn an_admin_may_read_another_users_conversation_but_not_write_in_it() {
        let (fakes, _) = fakes();
        let service = service(&fakes);
        let bobs = start(&service, &user("bob")).await;
        let admin = Caller {
            user_id: crate::user::UserId::parse("root").expect("valid user id"),
            role: Role::Admin,
        };
        let read = service
            .conversation(&admin, bobs.id)
            .await
            .expect("admins see every conversation");
        assert_eq!(read.id, bobs.id);
        let refused = service.send(&admin, bobs.id, draft("hi bob")).await;
        assert!(
            matches!(refused, Err(DomainError::Forbidden)),
            "{refused:?}"
        );
        assert!(fakes.store.messages_of(bobs.id).is_empty());
    }

    #[tokio::test]
    async fn a_bot_callers_message_is_stored_as_the_bots_and_gets_no_reply() {
        let (fakes, engine) = fakes();
        let service = service(&fakes);
        let conversation = start(&service, &user("ana")).await;
        let bot = Caller {
            user_id: crate::user::UserId::parse("echo").expect("valid user id"),
            role: Role::Bot(BotId::parse("echo").expect("valid bot id")),
        };
        let sent = service
            .send(&bot, conversation.id, draft("a bot speaks"))
            .await
            .expect("a bot writes in its conversations");
        assert_eq!(sent.message.sender, Sender::Bot);
        assert!(service.replies().drain(DRAIN).await);
        assert_eq!(engine.calls(), 0);
        let other_bot = Caller {
            role: Role::Bot(BotId::parse("other").expect("valid bot id")),
            ..bot
        };
        let refused = service
            .send(&other_bot, conversation.id, draft("intruder"))
            .await;
        assert!(
            matches!(refused, Err(DomainError::ConversationNotFound)),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn listing_shows_only_the_callers_conversations() {
        let (fakes, _) = fakes();
        let service = service(&fakes);
        let mine = start(&service, &user("ana")).await;
        start(&service, &user("bob")).await;
        let page = service
            .list(
                &user("ana"),
                &ListQuery {
                    filter: ConversationFilter::default(),
                    position: ListPosition::Offset(0),
                    limit: PageSize::LIST_DEFAULT,
                },
            )
            .await
            .expect("listing");
        let ids: Vec<ConversationId> = page.conversations.iter().map(|c| c.id).collect();
        assert_eq!(ids, [mine.id]);
        assert_eq!(page.total, 1);
    }

    #[tokio::test]
    async fn a_bus_that_is_down_loses_events_but_never_a_message() {
        let (fakes, _) = fakes();
        let service = service(&fakes);
        let ana = user("ana");
        let conversation = start(&service, &ana).await;
        fakes.events.set_unavailable(true);
        let sent = service
            .send(&ana, conversation.id, draft("still stored"))
            .await
            .expect("a send succeeds without the bus");
        assert!(service.replies().drain(DRAIN).await);
        let stored = fakes.store.messages_of(conversation.id);
        assert_eq!(stored.first(), Some(&sent.message));
        assert_eq!(stored.len(), 2, "the reply is stored too");
        let refused = service.follow(&ana, conversation.id, None).await;
        assert!(
            matches!(refused, Err(DomainError::Events(_))),
            "following needs the bus: {:?}",
            refused.err()
        );
    }
}
