//! End-to-end tests: `cargo test --release -p comet-e2e`.
//!
//! Each test starts the `comet` runner on `127.0.0.1:0` through [`support::Runner`] and talks
//! to it over real HTTP. The first test to run builds the runner and the wasm components once
//! (see [`support::ensure_built`], which also installs the `wasm32-wasip2` target if it is
//! missing). Redis tests use a throw-away `redis-server` of this process on a free port
//! ([`support::redis_url`]).

mod docs;
mod node;
mod publishers;
mod runner;
mod security;
mod sockjs;
mod stress;
mod support;
mod v1;
