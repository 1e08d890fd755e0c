//! The storage contract suite run against `InMemoryStore`, invoked exactly as a
//! storage adapter's integration test invokes it, so that the documented form is
//! known to compile from outside the crate.

#![cfg(feature = "test-util")]

use std::sync::Arc;

use confab_domain::testing::InMemoryStore;
use confab_domain::testing::contract::Stores;

confab_domain::storage_contract_tests!(|| async {
    let store = InMemoryStore::new();
    Stores {
        conversations: Arc::new(store.clone()),
        messages: Arc::new(store.clone()),
        sessions: Arc::new(store.clone()),
        bots: Arc::new(store.clone()),
        leases: Arc::new(store),
        teardown: None,
    }
});
