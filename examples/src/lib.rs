//! Examples of embedding `confab-domain`; the code is in `conversation.rs` (run it with
//! `cargo run -p embedding-examples --example conversation`) and in
//! `tests/own_storage.rs` (`cargo test -p embedding-examples`). This library is empty:
//! Cargo wants a target for the package.
