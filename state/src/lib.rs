//! Comet's channel-queue engine: ordered, retained, resumable per-channel logs, sessions and
//! waiting for news, over Spin's key-value store or Redis.
//!
//! The crate is SDK-free: storage and platform come in through [`KvOps`], [`RedisOps`] and
//! [`Clock`], which the function crates implement with `spin-sdk`. Futures are not `Send`;
//! they run on Spin's single-threaded WASIp3 executor (and on a tokio `LocalSet` in tests).
//!
//! * [`KvLog`] and [`RedisLog`] implement [`Log`]: publish, read, history, info, heads.
//! * [`Watcher`] shares one polling loop among all waiting requests of an instance.
//! * [`Cursor`] is the opaque resume token; [`Envelope`] and [`Event`] serialise byte-exactly.
//! * [`Sessions`] keeps SockJS/Jii sessions: subscriptions, a direct queue, a receive lease.
//!
//! See `state/README.md` for key layouts, the concurrency argument and tuning.

#![deny(missing_docs)]

pub mod channel;
mod config;
pub mod cursor;
mod envelope;
mod error;
mod kv_log;
mod log;
mod memory;
mod redis_kv;
mod redis_log;
mod script;
mod session;
mod store;
mod watch;

pub use channel::Channel;
pub use config::{LogConfig, Retention, RetentionOverride, SessionConfig, WatchConfig};
pub use cursor::{Cursor, Position};
pub use envelope::{Envelope, Epoch, Event, MAX_ID_LEN, NewMessage, Published};
pub use error::{ChannelError, CursorError, MessageError, StateError, StoreError};
pub use kv_log::KvLog;
pub use log::{Batch, ChannelInfo, Log, Start, Subscription};
pub use memory::MemoryKv;
pub use redis_kv::RedisKv;
pub use redis_log::RedisLog;
pub use session::{Opened, Session, SessionId, Sessions};
pub use store::{Clock, KvOps, RedisArg, RedisOps, RedisValue, WakeFn, WakeFuture};
pub use watch::{WatchStats, Watcher};
