//! The operational adapters the server plugs into the API: the Prometheus recorder
//! behind `/metrics` and the database and bus check behind `/readyz`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use confab_api_axum::ops::Readiness;
use confab_events_nats::NatsEventBus;
use confab_migrations::{Migrator, MigratorTrait as _};
use confab_storage_seaorm::DatabaseConnection;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How long `/readyz` waits for the database before answering 503.
pub const READINESS_TIMEOUT: Duration = Duration::from_secs(3);

/// How often histogram samples are folded into their buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Histogram buckets in seconds, from a fast request to a slow bot reply.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process's Prometheus recorder, installed on first use.
///
/// A process has one global recorder, and tests start several servers in one
/// process: they all share it, so their counters add up (tests compare before and
/// after rather than absolute values).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder is already installed; /metrics stays empty");
            }
            // Histogram samples pile up between scrapes until upkeep folds them into
            // their buckets; without a scraper, memory would grow with every request.
            // A thread rather than a task: the recorder outlives any one runtime.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start metrics upkeep; histograms drain only when scraped");
            }
            handle
        })
        .clone()
}

/// Ready when the database answers, no migration is pending and, in a cluster, the
/// NATS connection is up: an instance cut off from the bus would store messages that
/// the other instances' sockets only see late, so the load balancer should prefer
/// the others meanwhile.
pub struct ServerReadiness {
    db: DatabaseConnection,
    bus: Option<Arc<NatsEventBus>>,
}

impl ServerReadiness {
    /// Checks `db` and, when given, `bus`.
    pub fn new(db: DatabaseConnection, bus: Option<Arc<NatsEventBus>>) -> Self {
        Self { db, bus }
    }
}

#[async_trait]
impl Readiness for ServerReadiness {
    async fn check(&self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if let Some(bus) = &self.bus
            && !bus.is_connected()
        {
            return Err("the NATS event bus is not connected".into());
        }
        let pending = Migrator::get_pending_migrations_read_only(&self.db).await?;
        if pending.is_empty() {
            Ok(())
        } else {
            Err(format!("{} database migrations are pending", pending.len()).into())
        }
    }
}
