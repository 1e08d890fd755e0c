//! What changes when several instances share one database: the event bus between
//! them (NATS), reply leases in the database, bot changes announced on the bus, and
//! readiness that includes the bus.
//!
//! One instance alone ([`EventSettings::url`] absent) keeps events in its process
//! and needs no lease; with a URL, the database must be shared (PostgreSQL), so a
//! SQLite database is refused here rather than left to split the data silently.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use confab_domain::bot::{Bot, BotId};
use confab_domain::error::RepoError;
use confab_domain::ports::{BotRepository, EventBus, ReplyLeases};
use confab_domain::reply::SingleInstanceLeases;
use confab_events_inprocess::InProcessEventBus;
use confab_events_nats::{NatsEventBus, NatsSettings};
use confab_storage_seaorm::SeaOrmStore;
use futures::StreamExt as _;

use crate::config::Config;

/// How long the bot-change listener waits before subscribing again after its stream
/// ended (NATS reconnecting or closed).
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// How many sweeps for orphaned reply work run per lease period: a dead instance's
/// work is taken over at most a quarter of a lease after its lease ran out.
const SWEEPS_PER_LEASE: u32 = 4;

/// The instance's place: alone, or one of a cluster on a shared bus.
pub enum Topology {
    /// The only instance on its database; events stay in the process.
    Alone(Arc<InProcessEventBus>),
    /// One of several instances sharing PostgreSQL and NATS.
    Clustered(Arc<NatsEventBus>),
}

impl Topology {
    /// Connects the configured bus. An unreachable NATS server is not an error (the
    /// instance starts unready and the client keeps trying); an invalid URL is.
    ///
    /// # Errors
    /// `events.url` with a SQLite database, or a NATS URL the client cannot use.
    pub async fn from_config(config: &Config) -> anyhow::Result<Self> {
        let Some(url) = &config.events.url else {
            return Ok(Self::Alone(Arc::new(InProcessEventBus::default())));
        };
        if !is_postgres(&config.database_url) {
            anyhow::bail!(
                "invalid configuration key `events.url`: several instances need a shared PostgreSQL database, and `database_url` is not one (a SQLite file serves one instance); remove `events.url` or use postgres://"
            );
        }
        let bus = NatsEventBus::connect(NatsSettings {
            url: url.clone(),
            ..NatsSettings::default()
        })
        .await
        .with_context(|| format!("invalid configuration key `events.url`: {url}"))?;
        Ok(Self::Clustered(Arc::new(bus)))
    }

    /// The event bus of the service.
    pub fn events(&self) -> Arc<dyn EventBus> {
        match self {
            Self::Alone(bus) => bus.clone(),
            Self::Clustered(bus) => bus.clone(),
        }
    }

    /// The reply leases: none to take alone, the database's in a cluster.
    pub fn leases(&self, store: &Arc<SeaOrmStore>) -> Arc<dyn ReplyLeases> {
        match self {
            Self::Alone(_) => Arc::new(SingleInstanceLeases),
            Self::Clustered(_) => store.clone(),
        }
    }

    /// The bot repository of the service: in a cluster, every change is announced
    /// to the other instances, which drop what they keep of the bot.
    pub fn bots(&self, store: &Arc<SeaOrmStore>) -> Arc<dyn BotRepository> {
        match self {
            Self::Alone(_) => store.clone(),
            Self::Clustered(bus) => Arc::new(AnnouncedBots {
                store: store.clone(),
                bus: bus.clone(),
            }),
        }
    }

    /// How often to sweep for reply work whose holder died, if ever.
    pub fn sweep_interval(&self, lease: Duration) -> Option<Duration> {
        match self {
            Self::Alone(_) => None,
            Self::Clustered(_) => Some((lease / SWEEPS_PER_LEASE).max(Duration::from_millis(100))),
        }
    }

    /// The NATS bus, in a cluster.
    pub fn nats(&self) -> Option<&Arc<NatsEventBus>> {
        match self {
            Self::Alone(_) => None,
            Self::Clustered(bus) => Some(bus),
        }
    }
}

fn is_postgres(url: &str) -> bool {
    let scheme = url.split(':').next().unwrap_or_default();
    scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql")
}

/// The store's bots, with every change announced on the bus.
struct AnnouncedBots {
    store: Arc<SeaOrmStore>,
    bus: Arc<NatsEventBus>,
}

impl AnnouncedBots {
    async fn announce(&self, id: &BotId) {
        // The change is stored; an instance that misses the announcement (NATS down)
        // reads the bot again once its short-lived copy expires.
        if let Err(error) = self.bus.announce_bot_change(id).await {
            tracing::warn!(bot = %id, %error, "bot change not announced to the other instances");
        }
    }
}

#[async_trait]
impl BotRepository for AnnouncedBots {
    async fn get(&self, id: &BotId) -> Result<Bot, RepoError> {
        BotRepository::get(&*self.store, id).await
    }

    async fn list(&self) -> Result<Vec<Bot>, RepoError> {
        BotRepository::list(&*self.store).await
    }

    async fn upsert(&self, bot: &Bot) -> Result<(), RepoError> {
        BotRepository::upsert(&*self.store, bot).await?;
        self.announce(&bot.id).await;
        Ok(())
    }

    async fn delete(&self, id: &BotId) -> Result<(), RepoError> {
        BotRepository::delete(&*self.store, id).await?;
        self.announce(id).await;
        Ok(())
    }
}

/// Drops the store's copy of every bot another instance announces as changed, until
/// `stopped` completes. Subscribes again whenever the stream ends (a reconnect).
pub async fn forget_changed_bots(
    bus: Arc<NatsEventBus>,
    store: Arc<SeaOrmStore>,
    stopped: impl std::future::Future<Output = ()>,
) {
    let listen = async {
        loop {
            match bus.bot_changes().await {
                Ok(mut changes) => {
                    while let Some(id) = changes.next().await {
                        store.forget_bot(&id);
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "cannot listen for bot changes yet");
                }
            }
            tokio::time::sleep(RESUBSCRIBE_DELAY).await;
        }
    };
    tokio::select! {
        () = listen => {}
        () = stopped => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_urls_are_told_from_sqlite_ones() {
        assert!(is_postgres("postgres://confab@db/confab"));
        assert!(is_postgres("PostgreSQL://confab@db/confab"));
        assert!(!is_postgres("sqlite://confab.db?mode=rwc"));
        assert!(!is_postgres("sqlite::memory:"));
    }
}
