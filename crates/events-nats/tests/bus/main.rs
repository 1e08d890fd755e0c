//! The NATS event bus against real NATS servers: the shared one of the test machine
//! (`CONFAB_TEST_NATS_URL`, default `nats://127.0.0.1:4222`) for delivery, and servers
//! of the tests' own for outages. A server that does not answer fails the tests.

mod bots;
mod delivery;
mod helpers;
mod outage;
mod subscriptions;
