//! Engine tests: the same log suite on `MemoryKv` and on real Redis, watcher, sessions.
//!
//! Run: `cargo test -p comet-state`. The Redis tests start a throw-away `redis-server` of their
//! own (`comet-test-services`; `COMET_TEST_REDIS_URL` names an existing one instead).

mod concurrency;
mod log_suite;
mod props;
mod session;
mod support;
mod watch;
