//! The storage and platform primitives the engine is written against.
//!
//! Function crates implement these with `spin-sdk` (key-value, `spin:redis`, clocks, random);
//! the crate's tests implement them natively. Futures need not be `Send`: they run on Spin's
//! single-threaded WASIp3 executor.

use std::time::Duration;

use crate::error::StoreError;

/// The primitives of Spin's key-value store plus `wasi:keyvalue` atomics and batch.
///
/// Counters: [`KvOps::increment`] may store its value in any representation (Spin's returns
/// an `i64` and stores it in the backend's own format), so the engine treats counter keys as
/// opaque and touches them only via `increment` and [`KvOps::get_counter`].
#[expect(
    async_fn_in_trait,
    reason = "single-threaded executor; futures need not be Send"
)]
pub trait KvOps {
    /// Reads a value.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Writes a value unconditionally.
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Deletes a key (absent keys are fine).
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Reads many values in one round trip, in the order of `keys`.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Atomically adds `delta` to a counter (created at 0) and returns the new value.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// Atomically replaces the value if it equals `expected` (`None` = only if absent);
    /// returns whether it did.
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError>;

    /// Reads a counter written by [`KvOps::increment`] (0 when absent).
    ///
    /// The default increments by 0, which is atomic and representation-agnostic; adapters
    /// that know the representation may read it directly.
    async fn get_counter(&self, key: &str) -> Result<i64, StoreError> {
        self.increment(key, 0).await
    }

    /// Decodes the bytes a `get`/`get_many` returned for a counter key.
    ///
    /// The default accepts decimal ASCII and 8-byte little-endian `i64`, the two forms Spin's
    /// backends use; adapters override it if theirs differs.
    fn decode_counter(&self, bytes: &[u8]) -> Option<i64> {
        if let Some(n) = std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return Some(n);
        }
        <[u8; 8]>::try_from(bytes).ok().map(i64::from_le_bytes)
    }

    /// Hints that `key` may vanish after `ttl` (Redis sets a TTL; Spin KV has none: no-op).
    async fn expire_hint(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        let _ = (key, ttl);
        Ok(())
    }
}

/// An argument of a Redis command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisArg {
    /// An integer argument.
    Int(i64),
    /// A binary-safe string argument.
    Bytes(Vec<u8>),
}

impl From<&str> for RedisArg {
    fn from(s: &str) -> Self {
        RedisArg::Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for RedisArg {
    fn from(s: String) -> Self {
        RedisArg::Bytes(s.into_bytes())
    }
}

/// One element of a Redis reply, as `spin:redis@3.0.0` returns them: nested arrays are
/// flattened, so every engine script returns a flat array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisValue {
    /// Nil (a Lua `false` becomes nil).
    Nil,
    /// A status reply such as `OK`.
    Status(String),
    /// An integer reply.
    Int(i64),
    /// A bulk string.
    Bytes(Vec<u8>),
}

/// The one primitive of Spin's outbound Redis: run a command, get a flat list of results.
#[expect(
    async_fn_in_trait,
    reason = "single-threaded executor; futures need not be Send"
)]
pub trait RedisOps {
    /// Runs `command` with `args`; errors carry Redis's message (e.g. `NOSCRIPT …`).
    async fn execute(
        &self,
        command: &str,
        args: Vec<RedisArg>,
    ) -> Result<Vec<RedisValue>, StoreError>;
}

/// Time, sleeping and randomness of the host.
#[expect(
    async_fn_in_trait,
    reason = "single-threaded executor; futures need not be Send"
)]
pub trait Clock {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> u64;
    /// Sleeps for `d` (Spin: `spin_sdk::time::sleep`).
    async fn sleep(&self, d: Duration);
    /// `n` bytes from a CSPRNG: session ids and epochs must be unguessable.
    fn random_bytes(&self, n: usize) -> Vec<u8>;

    /// A one-shot wake-up that another task may fire: the function fires it, the future
    /// resolves once it is fired or dropped.
    ///
    /// The default uses a `futures` oneshot channel (fine natively). On WASIp3 a task must
    /// not wake another task's `Waker` (wit-bindgen traps without its `inter-task-wakeup`
    /// feature, which in turn traps on wasmtime 48), so Spin adapters back this with a
    /// component-model stream whose writer is dropped to fire.
    fn wake_pair(&self) -> (WakeFn, WakeFuture) {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        (
            Box::new(move || {
                let _ = tx.send(());
            }),
            Box::pin(async move {
                let _ = rx.await;
            }),
        )
    }
}

/// Fires a [`Clock::wake_pair`] wake-up.
pub type WakeFn = Box<dyn FnOnce()>;

/// Resolves when a [`Clock::wake_pair`] wake-up fires.
pub type WakeFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

impl<T: KvOps + ?Sized> KvOps for &T {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(key).await
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        (**self).set(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        (**self).delete(key).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        (**self).get_many(keys).await
    }
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        (**self).increment(key, delta).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        (**self).compare_and_swap(key, expected, new).await
    }
    async fn get_counter(&self, key: &str) -> Result<i64, StoreError> {
        (**self).get_counter(key).await
    }
    fn decode_counter(&self, bytes: &[u8]) -> Option<i64> {
        (**self).decode_counter(bytes)
    }
    async fn expire_hint(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        (**self).expire_hint(key, ttl).await
    }
}

impl<T: RedisOps + ?Sized> RedisOps for &T {
    async fn execute(
        &self,
        command: &str,
        args: Vec<RedisArg>,
    ) -> Result<Vec<RedisValue>, StoreError> {
        (**self).execute(command, args).await
    }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
    async fn sleep(&self, d: Duration) {
        (**self).sleep(d).await
    }
    fn random_bytes(&self, n: usize) -> Vec<u8> {
        (**self).random_bytes(n)
    }
}
