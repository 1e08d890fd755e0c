//! `confab-loadgen`: drives a running confab over real HTTP and WebSocket and reports
//! throughput and latency percentiles, as a table and as JSON.
//!
//! # Layout
//! - [`client`]: the few API calls the scenarios make.
//! - [`scenarios`]: `send` (REST and WebSocket), `roundtrip`, `list`, `sockets`.
//! - [`seeded`]: `history`, `search` and `export`, over conversations seeded straight
//!   into the database.
//! - [`fanout`]: several sockets of one user following one conversation.
//! - [`cluster`]: the scale-out scenarios, over several instances sharing PostgreSQL
//!   and NATS.
//! - [`cpu`]: how many cores the machine and the servers used during a measurement.
//! - [`seed`]: large histories written straight into the database.
//! - [`floor`]: the floors figures are compared with (bare SQLite, bare WS echo).
//! - [`report`]: [`Report`](report::Report), its table and its JSON.
//!
//! `cargo xtask bench` runs the binary against a release server and writes
//! docs/benchmarks.md.

pub mod client;
pub mod cluster;
pub mod cpu;
pub mod fanout;
pub mod floor;
pub mod report;
pub mod scenarios;
pub mod seed;
pub mod seeded;
