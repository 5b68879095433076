//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch): what real Spin offers for atomic
//! counters and compare-and-swap, which the state engine needs so concurrent publishers on many
//! instances never collide.
//!
//! These WIT functions are synchronous for the guest: the calling instance waits for each one.
//! Keep them to the operations that must be atomic; plain reads and writes should use the async
//! `spin:key-value@3` interface.

use wasmtime::component::Resource;

use super::Ctx;
use super::wasi_keyvalue::atomics::{self, CasError};
use super::wasi_keyvalue::batch;
use super::wasi_keyvalue::store::{self, Error, KeyResponse};
use crate::kv::{KvError, KvStore};

/// A guest's open bucket.
pub struct OpenBucket {
    store: KvStore,
}

/// A compare-and-swap in progress: the value seen when it was created is the expectation.
pub struct OpenCas {
    store: KvStore,
    key: String,
    seen: Option<Vec<u8>>,
}

impl From<KvError> for Error {
    fn from(e: KvError) -> Self {
        Error::Other(e.to_string())
    }
}

impl Ctx {
    fn bucket(&mut self, handle: &Resource<OpenBucket>) -> Result<KvStore, Error> {
        self.table()
            .get(handle)
            .map(|b| b.store.clone())
            .map_err(|e| Error::Other(e.to_string()))
    }
}

macro_rules! try_store {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        }
    };
}

impl store::Host for Ctx {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<OpenBucket>, Error>> {
        let Some(store) = self.host.open_store(&identifier) else {
            return Ok(Err(Error::AccessDenied));
        };
        Ok(self
            .table()
            .push(OpenBucket { store })
            .map_err(|e| Error::Other(e.to_string())))
    }
}

impl store::HostBucket for Ctx {
    async fn get(
        &mut self,
        this: Resource<OpenBucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let store = try_store!(self.bucket(&this));
        Ok(store.get(&key).await.map_err(Error::from))
    }

    async fn set(
        &mut self,
        this: Resource<OpenBucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = try_store!(self.bucket(&this));
        Ok(store.set(&key, &value).await.map_err(Error::from))
    }

    async fn delete(
        &mut self,
        this: Resource<OpenBucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = try_store!(self.bucket(&this));
        Ok(store.delete(&key).await.map_err(Error::from))
    }

    async fn exists(
        &mut self,
        this: Resource<OpenBucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let store = try_store!(self.bucket(&this));
        Ok(store.exists(&key).await.map_err(Error::from))
    }

    async fn list_keys(
        &mut self,
        this: Resource<OpenBucket>,
        cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, Error>> {
        let store = try_store!(self.bucket(&this));
        let keys = try_store!(store.keys().await.map_err(Error::from));
        // One page holding everything after the cursor (keys come sorted).
        let keys = match cursor {
            Some(after) => keys.into_iter().filter(|k| *k > after).collect(),
            None => keys,
        };
        Ok(Ok(KeyResponse { keys, cursor: None }))
    }

    async fn drop(&mut self, rep: Resource<OpenBucket>) -> wasmtime::Result<()> {
        self.table().delete(rep)?;
        Ok(())
    }
}

impl atomics::Host for Ctx {
    async fn increment(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let store = try_store!(self.bucket(&bucket));
        Ok(store.increment(&key, delta).await.map_err(Error::from))
    }

    async fn swap(
        &mut self,
        cas: Resource<OpenCas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), CasError>> {
        let op = self.table().delete(cas)?;
        match op
            .store
            .compare_and_swap(&op.key, op.seen.as_deref(), &value)
            .await
        {
            Ok(true) => Ok(Ok(())),
            Ok(false) => {
                // Hand the guest a fresh CAS on the current value so it can retry.
                let seen = match op.store.get(&op.key).await {
                    Ok(v) => v,
                    Err(e) => return Ok(Err(CasError::StoreError(e.into()))),
                };
                let retry = self.table().push(OpenCas {
                    store: op.store,
                    key: op.key,
                    seen,
                })?;
                Ok(Err(CasError::CasFailed(retry)))
            }
            Err(e) => Ok(Err(CasError::StoreError(e.into()))),
        }
    }
}

impl atomics::HostCas for Ctx {
    async fn new(
        &mut self,
        bucket: Resource<OpenBucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<OpenCas>, Error>> {
        let store = try_store!(self.bucket(&bucket));
        let seen = try_store!(store.get(&key).await.map_err(Error::from));
        Ok(self
            .table()
            .push(OpenCas { store, key, seen })
            .map_err(|e| Error::Other(e.to_string())))
    }

    async fn current(
        &mut self,
        this: Resource<OpenCas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        Ok(Ok(self.table().get(&this)?.seen.clone()))
    }

    async fn drop(&mut self, rep: Resource<OpenCas>) -> wasmtime::Result<()> {
        self.table().delete(rep)?;
        Ok(())
    }
}

impl batch::Host for Ctx {
    async fn get_many(
        &mut self,
        bucket: Resource<OpenBucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, Error>> {
        let store = try_store!(self.bucket(&bucket));
        let values = try_store!(store.get_many(&keys).await.map_err(Error::from));
        Ok(Ok(keys.into_iter().zip(values).collect()))
    }

    async fn set_many(
        &mut self,
        bucket: Resource<OpenBucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = try_store!(self.bucket(&bucket));
        Ok(store.set_many(&key_values).await.map_err(Error::from))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<OpenBucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = try_store!(self.bucket(&bucket));
        Ok(store.delete_many(&keys).await.map_err(Error::from))
    }
}
