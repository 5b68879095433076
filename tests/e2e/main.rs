//! End-to-end tests: `cargo test --release -p comet-e2e`.
//!
//! Each test starts the `comet` runner on `127.0.0.1:0` through [`support::Runner`] and talks
//! to it over real HTTP. The first test to run builds the runner and the wasm components once
//! (see [`support::ensure_built`]). Redis tests need a Redis on `127.0.0.1:6379` and fail, not
//! skip, without one.

mod node;
mod runner;
mod security;
mod sockjs;
mod stress;
mod support;
mod v1;
