//! The state engine's storage traits implemented with `spin-sdk`, and the instance's log.
//!
//! Plain reads and writes use the async `spin:key-value@3` store; the operations that must be
//! atomic across instances (increment, compare-and-swap) and batched reads use
//! `wasi:keyvalue`, which real Spin provides for exactly that. One log and one watcher live per
//! instance and are shared by all its concurrent requests (WASIp3 runs many requests in one
//! instance), so idle long-polls of an instance cost one poll loop, not one each.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use comet_state::{
    Batch, ChannelInfo, Clock, Envelope, KvLog, KvOps, Log, LogConfig, Position, Published,
    RedisArg, RedisLog, RedisOps, RedisValue, StateError, StoreError, Subscription, WakeFn,
    WakeFuture, WatchConfig, Watcher,
};
use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store as wasi_store};
use spin_sdk::key_value::Store;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

use crate::config::{Backend, Config};

fn store_err(e: impl std::fmt::Debug) -> StoreError {
    StoreError::new(format!("{e:?}"))
}

/// Spin's key-value store (label `default`) as the engine's [`KvOps`].
pub struct SpinKv {
    store: Store,
    bucket: wasi_store::Bucket,
}

impl SpinKv {
    /// Opens the `default` store through both interfaces.
    ///
    /// # Errors
    /// The component is not granted the `default` store.
    pub async fn open() -> Result<Self, StoreError> {
        Ok(Self {
            store: Store::open_default().await.map_err(store_err)?,
            bucket: wasi_store::open("default").map_err(store_err)?,
        })
    }
}

impl KvOps for SpinKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.store.get(key).await.map_err(store_err)
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.store.set(key, value).await.map_err(store_err)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.store.delete(key).await.map_err(store_err)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let found = batch::get_many(&self.bucket, keys).map_err(store_err)?;
        // The draft interface returns (key, value) pairs; answer in the order asked.
        let mut by_key: std::collections::HashMap<String, Option<Vec<u8>>> =
            found.into_iter().collect();
        Ok(keys.iter().map(|k| by_key.remove(k).flatten()).collect())
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(&self.bucket, key, delta).map_err(store_err)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let cas = atomics::Cas::new(&self.bucket, key).map_err(store_err)?;
        if cas.current().map_err(store_err)?.as_deref() != expected {
            return Ok(false);
        }
        match atomics::swap(cas, new) {
            Ok(()) => Ok(true),
            Err(atomics::CasError::CasFailed(_)) => Ok(false),
            Err(atomics::CasError::StoreError(e)) => Err(store_err(e)),
        }
    }
}

/// Spin's outbound Redis as the engine's [`RedisOps`].
pub struct SpinRedis {
    conn: Connection,
}

impl SpinRedis {
    /// Connects to `url`.
    ///
    /// # Errors
    /// The URL is not in `allowed_outbound_hosts` or Redis is unreachable.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Connection::open(url).await.map_err(store_err)?,
        })
    }
}

impl RedisOps for SpinRedis {
    async fn execute(
        &self,
        command: &str,
        args: Vec<RedisArg>,
    ) -> Result<Vec<RedisValue>, StoreError> {
        let params = args.into_iter().map(|a| match a {
            RedisArg::Int(i) => RedisParameter::Int64(i),
            RedisArg::Bytes(b) => RedisParameter::Binary(b),
        });
        let results = self
            .conn
            .execute(command, params)
            .await
            .map_err(|e| match e {
                spin_sdk::redis::Error::Other(message) => StoreError::new(message),
                other => store_err(other),
            })?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                RedisResult::Nil => RedisValue::Nil,
                RedisResult::Status(s) => RedisValue::Status(s),
                RedisResult::Int64(i) => RedisValue::Int(i),
                RedisResult::Binary(b) => RedisValue::Bytes(b),
            })
            .collect())
    }
}

/// Wall clock, `spin_sdk::time::sleep`, and the WASI CSPRNG.
#[derive(Clone, Copy, Default)]
pub struct SpinClock;

impl Clock for SpinClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }

    async fn sleep(&self, d: Duration) {
        spin_sdk::time::sleep(d).await;
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        // wasi:random never fails on Spin; an all-zero id would only weaken uniqueness.
        let _ = getrandom::fill(&mut buf);
        buf
    }

    fn wake_pair(&self) -> (WakeFn, WakeFuture) {
        // A component-model stream: the waiting task reads it (its own waitable), and any
        // task fires it by dropping the writer. No cross-task `Waker` is involved.
        let (writer, mut reader) = spin_sdk::wasip3::wit_stream::new::<u8>();
        (
            Box::new(move || drop(writer)),
            Box::pin(async move {
                let _ = reader.next().await;
            }),
        )
    }
}

/// The configured backend's log.
pub enum AnyLog {
    /// Spin key-value store.
    Kv(KvLog<SpinKv, SpinClock>),
    /// Redis through `spin:redis`.
    Redis(RedisLog<SpinRedis, SpinClock>),
}

macro_rules! each {
    ($self:ident, $log:ident => $e:expr) => {
        match $self {
            AnyLog::Kv($log) => $e,
            AnyLog::Redis($log) => $e,
        }
    };
}

impl Log for AnyLog {
    async fn publish(
        &self,
        messages: &[comet_state::NewMessage],
    ) -> Result<Vec<Published>, StateError> {
        each!(self, l => l.publish(messages).await)
    }

    async fn read(
        &self,
        subscriptions: &[Subscription],
        limit: usize,
    ) -> Result<Batch, StateError> {
        each!(self, l => l.read(subscriptions, limit).await)
    }

    async fn history(
        &self,
        channel: &comet_state::Channel,
        since: u64,
        limit: usize,
    ) -> Result<(Vec<Envelope>, Position), StateError> {
        each!(self, l => l.history(channel, since, limit).await)
    }

    async fn info(&self, channel: &comet_state::Channel) -> Result<ChannelInfo, StateError> {
        each!(self, l => l.info(channel).await)
    }

    async fn heads(&self, channels: &[comet_state::Channel]) -> Result<Vec<u64>, StateError> {
        each!(self, l => l.heads(channels).await)
    }

    fn head_ops(&self, channels: usize) -> u64 {
        each!(self, l => l.head_ops(channels))
    }
}

/// What an instance keeps between requests.
pub struct Instance {
    /// The channel log.
    pub log: AnyLog,
    /// The shared waiter for held requests.
    pub watcher: Watcher,
    /// The configuration it was built with.
    pub config: Config,
}

thread_local! {
    static INSTANCE: RefCell<Option<Rc<Instance>>> = const { RefCell::new(None) };
}

/// The instance's log and watcher, created on first use (one store/Redis connection and one
/// poll loop per instance).
///
/// # Errors
/// The store cannot be opened (not granted, Redis down).
pub async fn instance(config: &Config) -> Result<Rc<Instance>, StoreError> {
    if let Some(existing) = INSTANCE.with(|i| i.borrow().clone()) {
        return Ok(existing);
    }
    let log_config = LogConfig {
        retention: config.retention,
        ..LogConfig::default()
    };
    let (log, watch) = match &config.backend {
        Backend::Kv => (
            AnyLog::Kv(KvLog::new(SpinKv::open().await?, SpinClock, log_config)),
            WatchConfig::KV,
        ),
        Backend::Redis { url, cluster } => (
            AnyLog::Redis(
                RedisLog::new(SpinRedis::open(url).await?, SpinClock, log_config).cluster(*cluster),
            ),
            WatchConfig::REDIS,
        ),
    };
    let created = Rc::new(Instance {
        log,
        watcher: Watcher::new(watch),
        config: config.clone(),
    });
    // Two first requests may race here; the second simply reuses the first one's instance.
    Ok(INSTANCE.with(|i| i.borrow_mut().get_or_insert(created).clone()))
}

/// Forgets the instance state after a store failure, so the next request reconnects.
pub fn reset_instance() {
    INSTANCE.with(|i| i.borrow_mut().take());
}
