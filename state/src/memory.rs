//! An in-memory [`KvOps`] for tests and benchmarks.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use crate::error::StoreError;
use crate::store::KvOps;

/// In-memory key-value store with an operation counter.
///
/// Single-threaded (`RefCell`), like a Spin instance. Each call is one atomic step, which is
/// exactly the atomicity Spin's store gives; an optional yield before each call lets tests
/// interleave concurrent tasks at every store operation, as separate instances would.
#[derive(Debug, Default)]
pub struct MemoryKv {
    map: RefCell<HashMap<String, Vec<u8>>>,
    ops: Cell<u64>,
    yield_each_op: bool,
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that yields to the executor before every operation, so concurrent
    /// tasks interleave at every await point (for race tests).
    pub fn interleaving() -> Self {
        Self {
            yield_each_op: true,
            ..Self::default()
        }
    }

    /// Store operations issued so far (a `get_many` counts once, like one host call).
    pub fn ops(&self) -> u64 {
        self.ops.get()
    }

    /// Number of keys held (tests check that retention bounds storage).
    pub fn len(&self) -> usize {
        self.map.borrow().len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.map.borrow().is_empty()
    }

    /// Keys starting with `prefix`, sorted (for tests).
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .map
            .borrow()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// Removes every key (simulates a flushed store).
    pub fn clear(&self) {
        self.map.borrow_mut().clear();
    }

    async fn step(&self) {
        self.ops.set(self.ops.get() + 1);
        if self.yield_each_op {
            YieldNow(false).await;
        }
    }
}

/// Yields once to the executor (a dependency-free `yield_now`).
struct YieldNow(bool);

impl std::future::Future for YieldNow {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

impl KvOps for MemoryKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.step().await;
        Ok(self.map.borrow().get(key).cloned())
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.step().await;
        self.map.borrow_mut().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.step().await;
        self.map.borrow_mut().remove(key);
        Ok(())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.step().await;
        let map = self.map.borrow();
        Ok(keys.iter().map(|k| map.get(k).cloned()).collect())
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.step().await;
        let mut map = self.map.borrow_mut();
        let current = match map.get(key) {
            Some(v) => self
                .decode_counter(v)
                .ok_or_else(|| StoreError::new(format!("value at {key:?} is not a counter")))?,
            None => 0,
        };
        let next = current + delta;
        map.insert(key.to_owned(), next.to_string().into_bytes());
        Ok(next)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        self.step().await;
        let mut map = self.map.borrow_mut();
        if map.get(key).map(Vec::as_slice) == expected {
            map.insert(key.to_owned(), new.to_vec());
            Ok(true)
        } else {
            Ok(false)
        }
    }
}
