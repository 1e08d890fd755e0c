//! Handoff for the service's callers: a user asks for a person, agents work the
//! queue, claim conversations and give them back, admins move any of them. The rules
//! are [`crate::handoff`]'s; moving and telling everyone is
//! [`move_handoff`](crate::reply::move_handoff)'s.

use crate::conversation::{Conversation, ConversationId, PageSize};
use crate::error::DomainError;
use crate::handoff::{HandoffAction, HandoffActor, HandoffListing};
use crate::message::{HistoryQuery, Message};
use crate::reply::move_handoff;
use crate::user::{Caller, Role};

use super::{ConversationService, not_found_as};

/// How many conversations one listing of the queue, or of an agent's, holds at most.
pub const HANDOFF_LIST_MAX: u32 = 100;

/// How many of a conversation's latest messages come with it in the queue: enough
/// for an agent to see what the user wants before claiming.
pub const QUEUE_RECENT_MESSAGES: u32 = 5;

/// A conversation in handoff, with its latest messages.
#[derive(Debug, Clone, PartialEq)]
pub struct HandoffEntry {
    /// The conversation.
    pub conversation: Conversation,
    /// Its latest messages, oldest first.
    pub recent: Vec<Message>,
}

impl ConversationService {
    /// Puts the conversation in the agents' queue: its user asks for a person, or an
    /// admin moves it (also out of an agent's hands). Asking again changes nothing.
    pub async fn request_handoff(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<Conversation, DomainError> {
        let conversation = self.conversation(caller, id).await?;
        let actor = if conversation.user_id == caller.user_id {
            HandoffActor::User
        } else if caller.is_admin() {
            HandoffActor::Admin
        } else {
            return Err(DomainError::Forbidden);
        };
        move_handoff(&self.ports, id, &actor, HandoffAction::Request).await
    }

    /// The calling agent takes a waiting conversation over; the first claim wins.
    pub async fn claim(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<Conversation, DomainError> {
        let actor = agent(caller)?;
        // Any conversation in handoff, not only the waiting ones an agent sees: of
        // two agents claiming at once, the second learns it lost (a conflict), not
        // that the conversation vanished.
        let conversation = self
            .ports
            .conversations
            .get(id)
            .await
            .map_err(not_found_as(DomainError::ConversationNotFound))?;
        if conversation.handoff.bot_answers() {
            self.conversation(caller, id).await?;
        }
        move_handoff(&self.ports, id, &actor, HandoffAction::Claim).await
    }

    /// Gives the conversation back to its bot: by the agent who holds it, or an
    /// admin.
    pub async fn release(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<Conversation, DomainError> {
        if !caller.is_agent() {
            return Err(DomainError::Forbidden);
        }
        let conversation = self.conversation(caller, id).await?;
        let actor = match &caller.role {
            // An admin holding the conversation releases it as its agent would.
            Role::Admin if conversation.handoff.holder() != Some(&caller.user_id) => {
                HandoffActor::Admin
            }
            _ => agent(caller)?,
        };
        move_handoff(&self.ports, id, &actor, HandoffAction::Release).await
    }

    /// The conversations waiting for an agent, the longest waiting first, each with
    /// its latest messages.
    pub async fn handoff_queue(
        &self,
        caller: &Caller,
        limit: PageSize,
    ) -> Result<Vec<HandoffEntry>, DomainError> {
        agent(caller)?;
        self.in_handoff(&HandoffListing::Waiting, limit).await
    }

    /// The conversations the calling agent holds, the longest held first, each with
    /// its latest messages.
    pub async fn held_conversations(
        &self,
        caller: &Caller,
        limit: PageSize,
    ) -> Result<Vec<HandoffEntry>, DomainError> {
        agent(caller)?;
        self.in_handoff(&HandoffListing::HeldBy(caller.user_id.clone()), limit)
            .await
    }

    async fn in_handoff(
        &self,
        listing: &HandoffListing,
        limit: PageSize,
    ) -> Result<Vec<HandoffEntry>, DomainError> {
        let conversations = self
            .ports
            .conversations
            .in_handoff(listing, limit.get().min(HANDOFF_LIST_MAX))
            .await?;
        let latest = HistoryQuery {
            before: None,
            after: None,
            limit: PageSize::clamped(QUEUE_RECENT_MESSAGES, PageSize::HISTORY_MAX),
        };
        let pages = conversations
            .iter()
            .map(|conversation| self.ports.messages.history(conversation.id, &latest));
        let pages = futures::future::try_join_all(pages).await?;
        Ok(conversations
            .into_iter()
            .zip(pages)
            .map(|(conversation, page)| HandoffEntry {
                conversation,
                recent: page.messages,
            })
            .collect())
    }
}

/// The caller as an agent, if they are one (admins are agents too).
fn agent(caller: &Caller) -> Result<HandoffActor, DomainError> {
    if caller.is_agent() {
        Ok(HandoffActor::Agent(caller.user_id.clone()))
    } else {
        Err(DomainError::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::bot::BotId;
    use crate::conversation::Metadata;
    use crate::event::EventKind;
    use crate::handoff::{HandoffRefusal, HandoffState};
    use crate::message::Sender;
    use crate::ports::BotReply;
    use crate::reply::ReplySettings;
    use crate::service::{MessageDraft, StartConversation};
    use crate::testing::{ScriptedEngine, TestPorts, user};
    use crate::user::UserId;

    const DRAIN: Duration = Duration::from_secs(10);

    fn agent(id: &str) -> Caller {
        Caller {
            user_id: UserId::parse(id).expect("a valid user id"),
            role: Role::Agent,
        }
    }

    fn draft(text: &str) -> MessageDraft {
        MessageDraft::parse(text, Vec::new(), None).expect("a valid draft")
    }

    fn limit() -> PageSize {
        PageSize::clamped(10, HANDOFF_LIST_MAX)
    }

    async fn started(service: &ConversationService, first: Option<&str>) -> Conversation {
        service
            .start(
                &user("ana"),
                StartConversation {
                    bot_id: BotId::parse("echo").expect("a valid bot id"),
                    initial_message: first.map(draft),
                    title: None,
                    metadata: Metadata::default(),
                },
            )
            .await
            .expect("starting")
            .conversation
    }

    fn setup(engine: ScriptedEngine) -> (TestPorts, ConversationService) {
        let fakes = TestPorts::with_engine(engine);
        fakes.seed_bot("echo");
        let service = fakes.service(ReplySettings::default());
        (fakes, service)
    }

    #[tokio::test(start_paused = true)]
    async fn the_bot_is_never_asked_about_what_the_user_sends_while_people_answer() {
        let engine = ScriptedEngine::echo();
        let (fakes, service) = setup(engine.clone());
        let conversation = started(&service, None).await;
        let ana = user("ana");
        service
            .request_handoff(&ana, conversation.id)
            .await
            .expect("asking for a person");
        let sent = service
            .send(&ana, conversation.id, draft("anyone?"))
            .await
            .expect("sending");
        assert!(service.replies().drain(DRAIN).await);
        assert_eq!(engine.calls(), 0);

        // No reply will come, and waiting for one says so at once: on the paused
        // clock, a wait would have moved time on by its whole timeout.
        let before = tokio::time::Instant::now();
        let replies = service
            .await_replies(&sent.message, Duration::from_secs(3600))
            .await
            .expect("waiting");
        assert!(replies.is_empty());
        assert_eq!(before.elapsed(), Duration::ZERO);

        let alice = agent("alice");
        service
            .claim(&alice, conversation.id)
            .await
            .expect("claiming");
        service
            .send(&alice, conversation.id, draft("alice here"))
            .await
            .expect("the agent writes");
        service
            .release(&alice, conversation.id)
            .await
            .expect("releasing");
        let after = service
            .send(&ana, conversation.id, draft("hello bot"))
            .await
            .expect("sending");
        let replies = service
            .await_replies(&after.message, DRAIN)
            .await
            .expect("waiting");
        assert_eq!(replies[0].content.as_str(), "hello bot");
        assert_eq!(engine.calls(), 1, "only the message after the release");
        let senders: Vec<Sender> = fakes
            .store
            .messages_of(conversation.id)
            .iter()
            .map(|m| m.sender)
            .collect();
        assert_eq!(
            senders,
            [
                Sender::System,
                Sender::User,
                Sender::System,
                Sender::Agent,
                Sender::System,
                Sender::User,
                Sender::Bot
            ]
        );
    }

    #[tokio::test]
    async fn the_first_claim_wins_and_only_its_agent_writes() {
        let (_, service) = setup(ScriptedEngine::echo());
        let conversation = started(&service, None).await;
        service
            .request_handoff(&user("ana"), conversation.id)
            .await
            .expect("asking");
        let (alice, bob) = (agent("alice"), agent("bob"));
        let refused = service.send(&alice, conversation.id, draft("early")).await;
        assert!(
            matches!(
                refused,
                Err(DomainError::Handoff(HandoffRefusal::NotHolder))
            ),
            "{refused:?}"
        );
        let held = service.claim(&alice, conversation.id).await.expect("claim");
        assert_eq!(held.handoff, HandoffState::Agent(alice.user_id.clone()));
        let second = service.claim(&bob, conversation.id).await;
        assert!(
            matches!(
                second,
                Err(DomainError::Handoff(HandoffRefusal::HeldByAnother))
            ),
            "{second:?}"
        );
        let again = service
            .claim(&alice, conversation.id)
            .await
            .expect("a retry");
        assert_eq!(
            again.handoff_since, held.handoff_since,
            "a retry changes nothing"
        );
        let queue = service.handoff_queue(&alice, limit()).await.expect("queue");
        assert!(queue.is_empty());
        let mine = service
            .held_conversations(&alice, limit())
            .await
            .expect("held");
        assert_eq!(mine[0].conversation.id, conversation.id);
        assert!(
            service
                .held_conversations(&bob, limit())
                .await
                .expect("held")
                .is_empty()
        );
        let not_allowed = service.handoff_queue(&user("ana"), limit()).await;
        assert!(
            matches!(not_allowed, Err(DomainError::Forbidden)),
            "{not_allowed:?}"
        );
    }

    #[tokio::test]
    async fn a_bot_that_asks_for_a_person_puts_the_conversation_in_the_queue() {
        let engine = ScriptedEngine::replying_with(
            Vec::<String>::new(),
            BotReply {
                content: "Let me find a person.".to_owned(),
                handoff: true,
                ..BotReply::default()
            },
        );
        let (fakes, service) = setup(engine.clone());
        let conversation = started(&service, Some("I want a human")).await;
        assert!(service.replies().drain(DRAIN).await);
        let now = service
            .conversation(&user("ana"), conversation.id)
            .await
            .expect("reading");
        assert_eq!(now.handoff, HandoffState::Waiting);
        let stored = fakes.store.messages_of(conversation.id);
        let told: Vec<(Sender, &str)> = stored
            .iter()
            .map(|m| (m.sender, m.content.as_str()))
            .collect();
        assert_eq!(
            told,
            [
                (Sender::User, "I want a human"),
                (Sender::Bot, "Let me find a person."),
                (Sender::System, "Waiting for a person to join"),
            ]
        );
        let queue = service
            .handoff_queue(&agent("alice"), limit())
            .await
            .expect("the queue");
        assert_eq!(queue[0].conversation.id, conversation.id);
        assert_eq!(queue[0].recent.len(), 3);
        let handoffs: Vec<EventKind> = fakes
            .events
            .events_of(conversation.id)
            .into_iter()
            .map(|e| e.kind)
            .filter(|kind| matches!(kind, EventKind::Handoff(_)))
            .collect();
        assert_eq!(handoffs, [EventKind::Handoff(HandoffState::Waiting)]);
    }
}
