//! Key-value stores behind `spin:key-value@3` and `wasi:keyvalue` (store, atomics, batch).
//!
//! Two engines, chosen per store label by runtime config exactly as Spin does:
//! - [`SqliteKv`], the embedded default: one SQLite file in WAL mode under `--state-dir`.
//!   A commit is a `write()` into the WAL, so a `kill -9` of the runner loses nothing that was
//!   acknowledged; only a power cut can drop the last few commits (`synchronous = NORMAL`).
//!   It is what Spin itself uses for its default store, and it measured fastest of the
//!   engines tried for our small-value, commit-per-operation load
//!   (`comet-bench kv-engine`; figures in `bench/README.md`).
//! - [`RedisKv`], for many runners (or real Spin) sharing one store. Keys are stored as-is, as
//!   Spin's Redis store does, so a runner and `spin up` can share data.
//!
//! Counters made by `increment` are stored as ASCII decimal on both engines (Redis `INCRBY`
//! semantics), so `get` of a counter key returns e.g. `b"42"` everywhere.

mod redis_kv;
mod sqlite;

pub use redis_kv::RedisKv;
pub use sqlite::{SqliteDb, SqliteKv, Sync};

/// Errors from a store engine, turned into the WIT `error::other` for the guest.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The embedded engine failed (disk, corruption, lock).
    #[error("embedded store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Redis failed or is unreachable.
    #[error("redis store: {0}")]
    Redis(#[from] redis::RedisError),
    /// `increment` hit a value that is not a decimal integer.
    #[error("value of key {0:?} is not an integer")]
    NotAnInteger(String),
    /// A blocking task was cancelled or panicked.
    #[error("store worker failed: {0}")]
    Worker(String),
}

/// One opened store (cheap to clone): what a guest's `store`/`bucket` handle points at.
#[derive(Clone)]
pub enum KvStore {
    /// A label inside the embedded SQLite file.
    Sqlite(SqliteKv),
    /// A Redis database.
    Redis(RedisKv),
}

/// Store operations issued by guests since start (a batch counts once: it is one round trip).
/// Exposed as `comet_kv_ops_total` so benchmarks can measure what idle waiters cost.
pub static KV_OPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

macro_rules! dispatch {
    ($self:ident, $kv:ident => $e:expr) => {
        match {
            KV_OPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            $self
        } {
            KvStore::Sqlite($kv) => $e,
            KvStore::Redis($kv) => $e,
        }
    };
}

impl KvStore {
    /// Reads a value.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        dispatch!(self, kv => kv.get(key).await)
    }

    /// Writes a value.
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        dispatch!(self, kv => kv.set(key, value).await)
    }

    /// Removes a key; absent keys are fine.
    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        dispatch!(self, kv => kv.delete(key).await)
    }

    /// Whether a key exists.
    pub async fn exists(&self, key: &str) -> Result<bool, KvError> {
        dispatch!(self, kv => kv.exists(key).await)
    }

    /// All keys of the store.
    pub async fn keys(&self) -> Result<Vec<String>, KvError> {
        dispatch!(self, kv => kv.keys().await)
    }

    /// Atomically adds `delta` (absent = 0) and returns the new value.
    pub async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        dispatch!(self, kv => kv.increment(key, delta).await)
    }

    /// Atomically writes `new` only if the current value equals `expected` (`None` = absent).
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        dispatch!(self, kv => kv.compare_and_swap(key, expected, new).await)
    }

    /// Reads many keys in one round trip.
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        dispatch!(self, kv => kv.get_many(keys).await)
    }

    /// Writes many keys in one round trip (one transaction on SQLite).
    pub async fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        dispatch!(self, kv => kv.set_many(pairs).await)
    }

    /// Deletes many keys in one round trip.
    pub async fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        dispatch!(self, kv => kv.delete_many(keys).await)
    }
}

/// Parses an ASCII decimal counter value (absent = 0).
fn parse_counter(key: &str, value: Option<&[u8]>) -> Result<i64, KvError> {
    match value {
        None => Ok(0),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| KvError::NotAnInteger(key.to_string())),
    }
}
