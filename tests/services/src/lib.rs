//! Services the test suites start for themselves, so `cargo test --release --workspace` runs on
//! a fresh machine with nothing running.
//!
//! Today that is Redis: every test process that asks gets its own throw-away `redis-server` on
//! a free loopback port (no persistence, gone when the process exits), instead of sharing
//! whatever may or may not listen on 127.0.0.1:6379 — a developer's data is never touched and
//! a missing Redis is never a reason to fail or skip. `COMET_TEST_REDIS_URL` points the tests at
//! an existing Redis instead (e.g. a cluster or a remote one).
#![deny(missing_docs)]

mod redis;

pub use redis::redis_url;
