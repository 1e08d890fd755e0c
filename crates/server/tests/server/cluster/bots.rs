//! A bot changed through one instance is dropped from the other instances' caches by
//! the announcement on the bus, not when their copy expires.

use std::sync::Arc;
use std::time::{Duration, Instant};

use confab_domain::bot::{Bot, BotId, BotName, EngineKind, EngineSpec};
use confab_domain::ports::Clock as _;
use confab_server::cluster::{Topology, forget_changed_bots};
use confab_server::config::{Config, EventSettings};
use confab_storage_seaorm::SeaOrmStore;

use super::nats_url;
use crate::helpers::{Backend, PATIENCE, TestDatabase, postgres_configured};

/// Longer than the test: a change that reaches the second instance can only have
/// come through the bus.
const NEVER_EXPIRES: Duration = Duration::from_secs(3600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_changed_on_one_instance_is_read_anew_by_the_others() {
    if !postgres_configured() {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres).await;
    let config = Config {
        database_url: database.url.clone(),
        events: EventSettings {
            url: Some(nats_url()),
        },
        ..Config::default()
    };
    let open = || async {
        let db = confab_storage_seaorm::connect(&database.url)
            .await
            .expect("a pool");
        Arc::new(SeaOrmStore::new(db).with_bot_ttl(NEVER_EXPIRES))
    };
    let (first, second) = (
        Topology::from_config(&config).await.expect("a bus"),
        Topology::from_config(&config).await.expect("a bus"),
    );
    let (first_store, second_store) = (open().await, open().await);
    let (first_bots, second_bots) = (first.bots(&first_store), second.bots(&second_store));
    let listening = tokio::spawn(forget_changed_bots(
        second.nats().expect("clustered").clone(),
        second_store.clone(),
        std::future::pending(),
    ));

    let id = BotId::parse("greeter").expect("an id");
    first_bots
        .upsert(&named(&id, "Greeter 0"))
        .await
        .expect("stored");
    assert_eq!(name_of(&*second_bots, &id).await, "Greeter 0");
    // The second instance now keeps "Greeter 0" for an hour. Its listener may not
    // have subscribed yet, so changes go on until one is heard of.
    let deadline = Instant::now() + PATIENCE;
    for version in 1.. {
        let name = format!("Greeter {version}");
        first_bots.upsert(&named(&id, &name)).await.expect("stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
        if name_of(&*second_bots, &id).await == name {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second instance still reads a stale bot"
        );
    }
    listening.abort();
}

fn named(id: &BotId, name: &str) -> Bot {
    let now = confab_domain::ports::SystemClock.now();
    Bot {
        id: id.clone(),
        name: BotName::parse(name).expect("a name"),
        description: String::new(),
        engine: EngineSpec::of(EngineKind::Echo),
        created_at: now,
        updated_at: now,
    }
}

async fn name_of(bots: &dyn confab_domain::ports::BotRepository, id: &BotId) -> String {
    bots.get(id)
        .await
        .expect("the bot")
        .name
        .as_str()
        .to_owned()
}
