//! [`BotAdmin`]: the bot registry's use cases. Administrators create, change and
//! delete bots; the deployer's configuration declares bots that are created or
//! updated at start.
//!
//! Deleting a bot archives its active conversations first, one by one through the
//! service (so each publishes its `status` event), and only then removes the bot:
//! conversations are never left pointing at a bot that answers nothing while still
//! taking messages. Their history stays readable; unarchiving one later gets a
//! `system` message ("The bot is not available.") for each new message until a bot
//! with the same id is created again.

use std::sync::Arc;

use super::require_admin;
use crate::bot::{Bot, BotId, BotName, EngineSpec};
use crate::conversation::{ConversationSelection, ConversationStatus};
use crate::error::{DomainError, RepoError, ValidationError};
use crate::ports::ConversationMaintenance;
use crate::service::{BatchAction, ConversationService};
use crate::user::Caller;

/// Longest bot description, in characters.
pub const DESCRIPTION_MAX_CHARS: usize = 1000;

/// Conversations archived per page while deleting a bot.
const ARCHIVE_PAGE: u32 = 200;

/// A bot to create, or to declare from configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BotDraft {
    /// The slug that addresses the bot.
    pub id: BotId,
    /// The name shown to users.
    pub name: BotName,
    /// What the bot does.
    pub description: String,
    /// Its engine and settings.
    pub engine: EngineSpec,
}

/// Changes to a bot; `None` keeps a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BotChanges {
    /// A new name.
    pub name: Option<BotName>,
    /// A new description.
    pub description: Option<String>,
    /// A new engine, settings included.
    pub engine: Option<EngineSpec>,
}

/// What declaring a bot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declared {
    /// The bot did not exist and was created.
    Created,
    /// The bot existed with other fields and was updated.
    Updated,
    /// The bot existed exactly as declared.
    Unchanged,
}

/// The bot registry's use cases; see the module documentation.
pub struct BotAdmin {
    service: Arc<ConversationService>,
    maintenance: Arc<dyn ConversationMaintenance>,
}

impl BotAdmin {
    /// Bot administration over `service`, finding a bot's conversations through
    /// `maintenance`.
    pub fn new(
        service: Arc<ConversationService>,
        maintenance: Arc<dyn ConversationMaintenance>,
    ) -> Self {
        Self {
            service,
            maintenance,
        }
    }

    /// Creates a bot.
    ///
    /// # Errors
    /// `Forbidden` unless the caller is an administrator; `BotExists` when the id is
    /// taken; `Invalid` when the description is too long or the engine cannot be
    /// built from its settings; storage failures.
    pub async fn create(&self, caller: &Caller, draft: BotDraft) -> Result<Bot, DomainError> {
        require_admin(caller)?;
        let ports = self.service.ports();
        match ports.bots.get(&draft.id).await {
            Ok(_) => return Err(DomainError::BotExists(draft.id.to_string())),
            Err(RepoError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
        let now = ports.clock.now();
        let bot = Bot {
            id: draft.id,
            name: draft.name,
            description: draft.description,
            engine: draft.engine,
            created_at: now,
            updated_at: now,
        };
        self.check(&bot)?;
        ports.bots.upsert(&bot).await?;
        Ok(bot)
    }

    /// Changes a bot; its engine is rebuilt for the next reply.
    ///
    /// # Errors
    /// `Forbidden` unless the caller is an administrator; `BotNotFound`; `Invalid`
    /// as for [`BotAdmin::create`]; storage failures.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &BotId,
        changes: BotChanges,
    ) -> Result<Bot, DomainError> {
        require_admin(caller)?;
        let ports = self.service.ports();
        let mut bot = ports.bots.get(id).await.map_err(|error| match error {
            RepoError::NotFound => DomainError::BotNotFound(id.to_string()),
            other => other.into(),
        })?;
        if let Some(name) = changes.name {
            bot.name = name;
        }
        if let Some(description) = changes.description {
            bot.description = description;
        }
        if let Some(engine) = changes.engine {
            bot.engine = engine;
        }
        bot.updated_at = ports.clock.now().max(bot.updated_at);
        self.check(&bot)?;
        ports.bots.upsert(&bot).await?;
        Ok(bot)
    }

    /// Archives the bot's active conversations, then deletes the bot. Returns how
    /// many conversations were archived.
    ///
    /// # Errors
    /// `Forbidden` unless the caller is an administrator; `BotNotFound`; storage
    /// failures (conversations archived before one stay archived, and the bot stays
    /// until a retry succeeds).
    pub async fn delete(&self, caller: &Caller, id: &BotId) -> Result<u64, DomainError> {
        require_admin(caller)?;
        let ports = self.service.ports();
        match ports.bots.get(id).await {
            Ok(_) => {}
            Err(RepoError::NotFound) => return Err(DomainError::BotNotFound(id.to_string())),
            Err(error) => return Err(error.into()),
        }
        let selection = ConversationSelection {
            bot_id: Some(id.clone()),
            status: Some(ConversationStatus::Active),
            ..ConversationSelection::default()
        };
        let mut archived = 0;
        let mut after = None;
        // Paging by ascending id ends: each page starts past the last id seen.
        loop {
            let ids = self
                .maintenance
                .select(&selection, after, ARCHIVE_PAGE)
                .await?;
            for &conversation in &ids {
                match self
                    .service
                    .apply(caller, BatchAction::Archive, conversation)
                    .await
                {
                    Ok(()) => archived += 1,
                    Err(DomainError::ConversationNotFound) => {}
                    Err(error) => return Err(error),
                }
            }
            match ids.last() {
                Some(&last) if ids.len() == ARCHIVE_PAGE as usize => after = Some(last),
                _ => break,
            }
        }
        match ports.bots.delete(id).await {
            Ok(()) | Err(RepoError::NotFound) => Ok(archived),
            Err(error) => Err(error.into()),
        }
    }

    /// Creates the bot, or updates it when it exists with other fields: what the
    /// deployer's configuration says wins. Its `created_at` is kept, and
    /// `updated_at` moves only when something changed.
    ///
    /// # Errors
    /// `Invalid` as for [`BotAdmin::create`]; storage failures.
    pub async fn declare(&self, draft: BotDraft) -> Result<Declared, DomainError> {
        let ports = self.service.ports();
        let now = ports.clock.now();
        let (bot, declared) = match ports.bots.get(&draft.id).await {
            Ok(existing) => {
                if existing.name == draft.name
                    && existing.description == draft.description
                    && existing.engine == draft.engine
                {
                    return Ok(Declared::Unchanged);
                }
                let bot = Bot {
                    updated_at: now.max(existing.updated_at),
                    created_at: existing.created_at,
                    id: draft.id,
                    name: draft.name,
                    description: draft.description,
                    engine: draft.engine,
                };
                (bot, Declared::Updated)
            }
            Err(RepoError::NotFound) => {
                let bot = Bot {
                    id: draft.id,
                    name: draft.name,
                    description: draft.description,
                    engine: draft.engine,
                    created_at: now,
                    updated_at: now,
                };
                (bot, Declared::Created)
            }
            Err(error) => return Err(error.into()),
        };
        self.check(&bot)?;
        ports.bots.upsert(&bot).await?;
        Ok(declared)
    }

    /// Refuses a description that is too long or holds NUL, reply limits that are
    /// not positive integers (named with the bot and the key), and an engine that
    /// cannot be built from its settings, so mistakes show when the bot is saved
    /// rather than as failed or oddly limited replies.
    fn check(&self, bot: &Bot) -> Result<(), DomainError> {
        if bot.description.chars().count() > DESCRIPTION_MAX_CHARS {
            return Err(ValidationError::InvalidBot(format!(
                "the description is longer than {DESCRIPTION_MAX_CHARS} characters"
            ))
            .into());
        }
        crate::message::reject_nul(&bot.description, "description")?;
        bot.engine.limits().map_err(|error| match error {
            ValidationError::InvalidBot(why) => {
                ValidationError::InvalidBot(format!("bot {}: {why}", bot.id))
            }
            other => other,
        })?;
        self.service
            .ports()
            .engines
            .engine_for(bot)
            .map(drop)
            .map_err(|error| ValidationError::InvalidBot(error.to_string()).into())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::bot::EngineKind;
    use crate::error::BotError;
    use crate::ports::{ConversationRepository, MockEngineRegistry};
    use crate::reply::ReplySettings;
    use crate::testing::{ScriptedEngine, TestPorts, start_conversation, user};
    use crate::user::Role;

    fn admin() -> Caller {
        Caller {
            role: Role::Admin,
            ..user("root")
        }
    }

    fn draft(id: &str) -> BotDraft {
        BotDraft {
            id: BotId::parse(id).expect("a valid id"),
            name: BotName::parse("Helper").expect("a valid name"),
            description: "Helps.".to_owned(),
            engine: EngineSpec::of(EngineKind::Echo),
        }
    }

    fn setup(fakes: &TestPorts) -> (Arc<ConversationService>, BotAdmin) {
        let service = Arc::new(fakes.service(ReplySettings::default()));
        let admin = BotAdmin::new(Arc::clone(&service), Arc::new(fakes.store.clone()));
        (service, admin)
    }

    #[tokio::test]
    async fn only_administrators_change_the_registry() {
        let fakes = TestPorts::with_engine(ScriptedEngine::echo());
        let (_, bots) = setup(&fakes);
        let alice = user("alice");
        assert!(matches!(
            bots.create(&alice, draft("helper")).await,
            Err(DomainError::Forbidden)
        ));
        fakes.seed_bot("echo");
        let id = BotId::parse("echo").expect("a valid id");
        assert!(matches!(
            bots.update(&alice, &id, BotChanges::default()).await,
            Err(DomainError::Forbidden)
        ));
        assert!(matches!(
            bots.delete(&alice, &id).await,
            Err(DomainError::Forbidden)
        ));
    }

    #[tokio::test]
    async fn a_bot_is_created_once_then_changed() {
        let fakes = TestPorts::with_engine(ScriptedEngine::echo());
        let (service, bots) = setup(&fakes);
        let created = bots
            .create(&admin(), draft("helper"))
            .await
            .expect("created");
        assert!(matches!(
            bots.create(&admin(), draft("helper")).await,
            Err(DomainError::BotExists(_))
        ));
        let changed = bots
            .update(
                &admin(),
                &created.id,
                BotChanges {
                    description: Some("Helps more.".to_owned()),
                    ..BotChanges::default()
                },
            )
            .await
            .expect("changed");
        assert_eq!(changed.description, "Helps more.");
        assert_eq!(changed.name, created.name);
        assert_eq!(changed.created_at, created.created_at);
        assert!(changed.updated_at > created.updated_at);
        assert_eq!(service.bot(&created.id).await.expect("stored"), changed);
    }

    #[tokio::test]
    async fn a_reply_limit_that_is_not_a_positive_integer_is_refused_with_the_bot_and_the_key() {
        let fakes = TestPorts::with_engine(ScriptedEngine::echo());
        let (service, bots) = setup(&fakes);
        let with = |settings: serde_json::Value| {
            let mut draft = draft("helper");
            if let serde_json::Value::Object(settings) = settings {
                draft.engine.settings = settings;
            }
            draft
        };
        let refused = bots
            .create(&admin(), with(serde_json::json!({"timeout_ms": "soon"})))
            .await;
        assert!(
            matches!(&refused, Err(DomainError::Invalid(ValidationError::InvalidBot(why)))
                if why.contains("helper") && why.contains("timeout_ms")),
            "{refused:?}"
        );
        let helper = BotId::parse("helper").expect("a valid id");
        assert!(matches!(
            service.bot(&helper).await,
            Err(DomainError::BotNotFound(_))
        ));
        bots.create(&admin(), with(serde_json::json!({"max_concurrency": 2})))
            .await
            .expect("a positive limit is kept");
        let refused = bots
            .update(
                &admin(),
                &helper,
                BotChanges {
                    engine: Some(with(serde_json::json!({"max_concurrency": 0})).engine),
                    ..BotChanges::default()
                },
            )
            .await;
        assert!(
            matches!(&refused, Err(DomainError::Invalid(ValidationError::InvalidBot(why)))
                if why.contains("helper") && why.contains("max_concurrency")),
            "{refused:?}"
        );
        let refused = bots
            .declare(with(serde_json::json!({"timeout_ms": -5})))
            .await;
        assert!(
            matches!(refused, Err(DomainError::Invalid(_))),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn an_engine_that_cannot_be_built_is_refused_when_saved() {
        let mut engines = MockEngineRegistry::new();
        engines
            .expect_engine_for()
            .returning(|_| Err(BotError::Misconfigured("no api key".to_owned())));
        let fakes = TestPorts::new(Arc::new(engines));
        let (_, bots) = setup(&fakes);
        let error = bots
            .create(&admin(), draft("helper"))
            .await
            .expect_err("refused");
        assert!(
            matches!(&error, DomainError::Invalid(ValidationError::InvalidBot(reason)) if reason.contains("no api key")),
            "{error:?}"
        );
        let mut long = draft("other");
        long.description = "x".repeat(DESCRIPTION_MAX_CHARS + 1);
        assert!(bots.create(&admin(), long).await.is_err());
    }

    #[tokio::test]
    async fn deleting_a_bot_archives_its_conversations_first() {
        let fakes = TestPorts::with_engine(ScriptedEngine::echo());
        fakes.seed_bot("echo");
        fakes.seed_bot("other");
        let (service, bots) = setup(&fakes);
        let mut started = Vec::new();
        for (owner, bot) in [("ana", "echo"), ("bo", "echo"), ("ana", "other")] {
            let conversation = start_conversation(&service, &user(owner), bot).await;
            started.push(conversation.id);
        }
        let echo = BotId::parse("echo").expect("a valid id");
        assert_eq!(bots.delete(&admin(), &echo).await.expect("deleted"), 2);
        assert!(matches!(
            service.bot(&echo).await,
            Err(DomainError::BotNotFound(_))
        ));
        let status = |id| {
            let store = fakes.store.clone();
            async move {
                ConversationRepository::get(&store, id)
                    .await
                    .expect("kept")
                    .status
            }
        };
        assert_eq!(status(started[0]).await, ConversationStatus::Archived);
        assert_eq!(status(started[1]).await, ConversationStatus::Archived);
        assert_eq!(status(started[2]).await, ConversationStatus::Active);
        assert!(matches!(
            bots.delete(&admin(), &echo).await,
            Err(DomainError::BotNotFound(_))
        ));
    }

    #[tokio::test]
    async fn declaring_creates_then_updates_only_on_change() {
        let fakes = TestPorts::with_engine(ScriptedEngine::echo());
        let (service, bots) = setup(&fakes);
        assert_eq!(
            bots.declare(draft("helper")).await.expect("declared"),
            Declared::Created
        );
        let first = service
            .bot(&BotId::parse("helper").expect("a valid id"))
            .await
            .expect("stored");
        assert_eq!(
            bots.declare(draft("helper")).await.expect("declared"),
            Declared::Unchanged
        );
        let mut renamed = draft("helper");
        renamed.name = BotName::parse("Helper 2").expect("a valid name");
        assert_eq!(
            bots.declare(renamed).await.expect("declared"),
            Declared::Updated
        );
        let second = service.bot(&first.id).await.expect("stored");
        assert_eq!(second.name.as_str(), "Helper 2");
        assert_eq!(second.created_at, first.created_at);
    }
}
