//! Engine tests: the same log suite on `MemoryKv` and on real Redis, watcher, sessions.
//!
//! Run: `cargo test -p comet-state`. Needs Redis on 127.0.0.1:6379 (override with
//! `COMET_TEST_REDIS`); the Redis tests fail, not skip, when it is down.

mod concurrency;
mod log_suite;
mod props;
mod session;
mod support;
mod watch;
