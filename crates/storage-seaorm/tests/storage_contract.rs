//! The storage contract suite of `confab_domain::testing::contract`, run against
//! [`SeaOrmStore`] on SQLite built from the real migrations and, when
//! `CONFAB_TEST_POSTGRES_URL` names a server, on PostgreSQL. Every check gets a
//! database of its own, dropped afterwards.

use std::sync::Arc;

use confab_domain::testing::contract::Stores;
use confab_storage_seaorm::SeaOrmStore;
use futures::future::BoxFuture;

/// One store behind every port, and what to do once the check is over.
fn stores(store: SeaOrmStore, teardown: BoxFuture<'static, ()>) -> Stores {
    Stores {
        conversations: Arc::new(store.clone()),
        messages: Arc::new(store.clone()),
        sessions: Arc::new(store.clone()),
        bots: Arc::new(store.clone()),
        leases: Arc::new(store),
        teardown: Some(teardown),
    }
}

mod sqlite {
    use confab_storage_seaorm::testing::sqlite_temp;

    confab_domain::storage_contract_tests!(|| async {
        let db = sqlite_temp()
            .await
            .expect("creating a SQLite test database");
        let store = db.store();
        super::stores(store, Box::pin(async move { drop(db) }))
    });
}

#[cfg(confab_postgres_tests)]
mod postgres {
    use confab_storage_seaorm::testing::{postgres_temp, postgres_url};

    confab_domain::storage_contract_tests!(|| async {
        let admin_url = postgres_url().expect("CONFAB_TEST_POSTGRES_URL is set");
        let db = postgres_temp(&admin_url)
            .await
            .expect("creating a PostgreSQL test database");
        let store = db.store();
        super::stores(
            store,
            Box::pin(async move {
                db.drop_database()
                    .await
                    .expect("dropping the PostgreSQL test database");
            }),
        )
    });
}
