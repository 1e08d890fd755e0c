//! Start-up: connect and migrate the database, register the built-in bots, build the
//! adapters, the service and the router, and bind the listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use confab_api_axum::config::EmbedOrigins;
use confab_api_axum::limits::{LimitSettings, Limiter, SendRate};
use confab_api_axum::ops::Operations;
use confab_api_axum::shutdown::{Shutdown, ShutdownTrigger};
use confab_api_axum::{ApiConfig, AppState, Auth};
use confab_bots::BuiltinEngines;
use confab_bots::declaration::BotDeclaration;
use confab_domain::admin::BotAdmin;
use confab_domain::admin::{AdminService, RetentionPolicy};
use confab_domain::error::RepoError;
use confab_domain::lease::LeaseHolder;
use confab_domain::ports::{
    BotRepository, Clock, IdGenerator as _, Ports, SecretSource, SystemClock, UuidV7Generator,
};
use confab_domain::reply::ReplySettings;
use confab_domain::service::ConversationService;
use confab_domain::webhooks::{WebhookAdmin, WebhookDispatcher};
use confab_storage_seaorm::{DatabaseConnection, SeaOrmStore};
use rand::Rng as _;
use tokio::net::TcpListener;

use crate::cluster::Topology;
use crate::config::Config;
use crate::metering::{MeteredEngines, MeteredEventBus};
use crate::monitoring::ServerReadiness;
use crate::webhooks::{EnvSecrets, HttpWebhookSender, MeteredOutbox};

/// A built server, bound to its port, not yet serving.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    service: Arc<ConversationService>,
    admin: Arc<AdminService>,
    store: Arc<SeaOrmStore>,
    webhooks: WebhookDispatcher,
    topology: Topology,
    config: Config,
    shutdown: ShutdownTrigger,
}

impl App {
    /// Connects to the database, runs migrations, wires every adapter and binds the
    /// listen address (port 0 picks a free port; see [`App::port`]).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // Before the database: a cluster setting that cannot work is refused before
        // anything is created.
        let topology = Topology::from_config(&config).await?;
        let db = open_database(&config).await?;
        let readiness = Arc::new(ServerReadiness::new(db.clone(), topology.nats().cloned()));
        let store = Arc::new(SeaOrmStore::new(db));
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        register_builtin_bots(&*store, &*clock).await?;
        let secret = match &config.jwt_secret {
            Some(secret) => secret.clone(),
            None => store
                .signing_secret(&random_secret())
                .await
                .context("cannot read or store the token signing secret")?,
        };
        let ports = Ports {
            conversations: store.clone(),
            messages: store.clone(),
            sessions: store.clone(),
            bots: topology.bots(&store),
            engines: Arc::new(MeteredEngines::new(Arc::new(BuiltinEngines::new()))),
            events: Arc::new(MeteredEventBus::new(topology.events())),
            leases: topology.leases(&store),
            clock,
            ids: Arc::new(UuidV7Generator),
        };
        let service = Arc::new(ConversationService::new(
            ports,
            ReplySettings {
                timeout: config.reply_timeout,
                lease: config.reply_lease,
                ..ReplySettings::default()
            },
        ));
        let auth = Arc::new(Auth::new(secret.as_bytes()));
        let embed_origins = EmbedOrigins::parse(&config.web.embed_origins).map_err(|problem| {
            anyhow::anyhow!("invalid configuration key `web.embed_origins`: {problem}")
        })?;
        let limits = &config.limits;
        let limiter = Limiter::new(
            LimitSettings {
                send_rate: SendRate {
                    per_minute: limits.messages_per_minute,
                    burst: limits.message_burst,
                },
                sockets_per_user: limits.sockets_per_user,
                request_timeout: limits.request_timeout,
            },
            auth.clone(),
        );
        let bot_admin = Arc::new(BotAdmin::new(service.clone(), store.clone()));
        let secrets: Arc<dyn SecretSource> = Arc::new(EnvSecrets);
        let webhook_admin = Arc::new(WebhookAdmin::new(
            store.clone(),
            secrets.clone(),
            Arc::new(SystemClock),
            Arc::new(UuidV7Generator),
        ));
        let webhooks = WebhookDispatcher::new(
            Arc::new(MeteredOutbox::new(store.clone())),
            Arc::new(HttpWebhookSender::new(config.webhooks.timeout)?),
            secrets,
            Arc::new(SystemClock),
            // This process, as the holder of its claims: a restarted instance is a
            // new holder and takes its predecessor's deliveries once their claims run
            // out.
            LeaseHolder::from_uuid(UuidV7Generator.new_id()),
            config.webhooks.dispatch()?,
        );
        let admin = Arc::new(AdminService::new(service.clone(), store.clone()));
        let (shutdown_signal, shutdown) = Shutdown::new();
        let state = AppState {
            service: service.clone(),
            admin: admin.clone(),
            bot_admin: bot_admin.clone(),
            webhooks: webhook_admin,
            auth,
            limiter,
            shutdown: shutdown_signal,
            config: Arc::new(ApiConfig {
                guests_enabled: config.guests_enabled,
                guest_token_ttl: config.guest_token_ttl,
                wait_timeout: config.wait_timeout,
                ws: config.ws,
                embed_origins: embed_origins.clone(),
                directline: config.directline.resolve(|name| std::env::var(name).ok())?,
            }),
        };
        let metrics = crate::monitoring::prometheus();
        let router = confab_api_axum::ops::router_with_operations(
            state,
            Operations {
                readiness,
                metrics: Arc::new(move || metrics.render()),
                cors_origins: config
                    .limits
                    .cors_origins
                    .iter()
                    .chain(embed_origins.cors_origins())
                    .cloned()
                    .collect(),
                readiness_timeout: crate::monitoring::READINESS_TIMEOUT,
            },
        )
        .map_err(|problem| {
            anyhow::anyhow!("invalid configuration key `limits.cors_origins`: {problem}")
        })?;
        declare_bots(&bot_admin, &config.bots).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        Ok(Self {
            listener,
            router,
            service,
            admin,
            store,
            webhooks,
            topology,
            config,
            shutdown,
        })
    }

    /// The token signing secret kept in the configured database, created when none is
    /// stored yet: what a server without `jwt_secret` signs with. Opens and migrates
    /// the database.
    ///
    /// # Errors
    /// The database cannot be opened, migrated, read or written.
    pub async fn stored_signing_secret(config: &Config) -> anyhow::Result<String> {
        let db = open_database(config).await?;
        SeaOrmStore::new(db)
            .signing_secret(&random_secret())
            .await
            .context("cannot read or store the token signing secret")
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Serves until `shutdown` completes, then stops accepting, closes WebSockets with
    /// 1001 and lets in-flight requests finish (both within the grace period, after
    /// which the rest are abandoned), and waits up to the grace period again for
    /// replies being produced.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let replies = self.service.replies().clone();
        let recovered = match self.topology.sweep_interval(self.config.reply_lease) {
            // In a cluster, pending work may be another live instance's: take only
            // what no lease covers.
            Some(_) => replies.sweep().await,
            None => replies.recover().await,
        }
        .context("cannot look for unanswered messages")?;
        if recovered > 0 {
            tracing::info!(
                conversations = recovered,
                "resuming replies interrupted by the last stop"
            );
        }
        let (stop_cluster, cluster_stopped) = tokio::sync::watch::channel(false);
        let until_stopped = move || {
            let mut stopped = cluster_stopped.clone();
            async move {
                let _ = stopped.wait_for(|stopped| *stopped).await;
            }
        };
        let mut cluster_tasks = Vec::new();
        if let Some(interval) = self.topology.sweep_interval(self.config.reply_lease) {
            cluster_tasks.push(tokio::spawn(
                replies.clone().run_sweeps(interval, until_stopped()),
            ));
        }
        if let Some(bus) = self.topology.nats() {
            cluster_tasks.push(tokio::spawn(crate::cluster::forget_changed_bots(
                bus.clone(),
                self.store.clone(),
                until_stopped(),
            )));
        }
        tracing::info!(address = %self.local_addr(), "confab is listening");
        let (stop_retention, retention_stopped) = tokio::sync::oneshot::channel::<()>();
        let retention = {
            let admin = self.admin.clone();
            let settings = self.config.retention;
            let policy = RetentionPolicy {
                archive_after: settings.archive_after,
                delete_after: settings.delete_after,
            };
            tokio::spawn(async move {
                let stopped = async {
                    let _ = retention_stopped.await;
                };
                admin
                    .run_retention(policy, settings.sweep_interval, stopped)
                    .await;
            })
        };
        let (stop_webhooks, webhooks_stopped) = tokio::sync::oneshot::channel::<()>();
        let webhooks = tokio::spawn(self.webhooks.run(async move {
            let _ = webhooks_stopped.await;
        }));
        let grace = self.config.shutdown_grace;
        let (stopping, mut stopped) = tokio::sync::watch::channel(false);
        // Without TCP_NODELAY a frame written right after another (a message after
        // its typing frame) waits for the peer's delayed ACK: 40 ms per round trip.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        // Through `into_make_service`, each connection gets a clone of the router (a
        // reference count); a `Router` handed over as it is rebuilds its route table
        // for every connection, about 3 KiB that an idle WebSocket keeps.
        let server = axum::serve(listener, self.router.into_make_service())
            .with_graceful_shutdown(async move {
                shutdown.await;
                stopping.send_replace(true);
            })
            .into_future();
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => result.context("the server failed")?,
            () = async { let _ = stopped.wait_for(|stopped| *stopped).await; } => {
                // Upgraded connections are no longer the HTTP server's: WebSockets are
                // closed (1001) through their own signal while requests finish.
                let (sockets_closed, requests) = tokio::join!(
                    self.shutdown.stop(grace),
                    tokio::time::timeout(grace, &mut server),
                );
                match requests {
                    Ok(result) => result.context("the server failed")?,
                    Err(_) => tracing::warn!(?grace, "requests still in flight after the grace period; abandoning them"),
                }
                if !sockets_closed {
                    tracing::warn!(?grace, "WebSockets still open after the grace period");
                }
            }
        }
        stop_cluster.send_replace(true);
        for task in cluster_tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "a cluster task failed");
            }
        }
        let _ = stop_retention.send(());
        if let Err(error) = retention.await {
            tracing::warn!(%error, "the retention task failed");
        }
        // Attempts in flight end within the webhook timeout; what they leave pending
        // is sent at the next start.
        let _ = stop_webhooks.send(());
        if let Err(error) = webhooks.await {
            tracing::warn!(%error, "the webhook task failed");
        }
        if !self
            .service
            .replies()
            .shut_down(self.config.shutdown_grace)
            .await
        {
            tracing::warn!("replies still running at shutdown; they resume at the next start");
        }
        Ok(())
    }
}

/// Registers the built-in bots ([`confab_bots::builtin`]) that are missing, and
/// leaves the others alone, so that an operator's changes stick.
async fn register_builtin_bots(bots: &dyn BotRepository, clock: &dyn Clock) -> anyhow::Result<()> {
    for bot in confab_bots::builtin::bots(clock.now())? {
        match bots.get(&bot.id).await {
            Ok(_) => {}
            Err(RepoError::NotFound) => bots.upsert(&bot).await?,
            Err(error) => return Err(error).context("cannot read the bot registry"),
        }
    }
    Ok(())
}

/// Creates or updates the bots of the configuration's `[[bots]]`, after the built-in
/// ones, so that a declared bot with a built-in id replaces it.
async fn declare_bots(admin: &BotAdmin, bots: &[BotDeclaration]) -> anyhow::Result<()> {
    for declaration in bots {
        let draft = declaration
            .to_draft()
            .map_err(anyhow::Error::msg)
            .context("invalid [[bots]] entry in the configuration")?;
        let id = draft.id.clone();
        let declared = admin
            .declare(draft)
            .await
            .with_context(|| format!("cannot register the bot {id} of the configuration"))?;
        tracing::info!(bot = %id, ?declared, "bot from the configuration");
    }
    Ok(())
}

/// Opens the configured database and brings its schema up to date.
async fn open_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = confab_storage_seaorm::connect(&config.database_url)
        .await
        .with_context(|| {
            format!(
                "cannot open the database {}",
                crate::config::redact_url(&config.database_url)
            )
        })?;
    confab_storage_seaorm::migrate(&db)
        .await
        .context("cannot apply database migrations")?;
    Ok(db)
}

fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
