//! `spin:key-value/key-value@3.0.0`: async key-value for guests.
//!
//! Every call grabs what it needs from the store inside a short `Accessor::with` and awaits the
//! engine outside it, so one slow store call never stalls the other requests of an instance.

use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

use super::spin_key_value::{Error, Host, HostStore, HostStoreWithStore};
use super::{Ctx, SpinHost};
use crate::kv::{KvError, KvStore};

/// A guest's open store handle.
pub struct OpenStore {
    store: KvStore,
}

impl From<KvError> for Error {
    fn from(e: KvError) -> Self {
        Error::Other(e.to_string())
    }
}

fn store_of<T>(
    acc: &Accessor<T, SpinHost>,
    handle: &Resource<OpenStore>,
) -> Result<KvStore, Error> {
    acc.with(|mut a| {
        let ctx: &mut Ctx = a.get();
        ctx.table()
            .get(handle)
            .map(|s| s.store.clone())
            .map_err(|e| Error::Other(e.to_string()))
    })
}

impl Host for Ctx {}
impl HostStore for Ctx {}

impl<T> HostStoreWithStore<T> for SpinHost {
    async fn open(
        acc: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        Ok(acc.with(|mut a| {
            let ctx: &mut Ctx = a.get();
            let Some(store) = ctx.host.open_store(&label) else {
                return Err(Error::AccessDenied);
            };
            ctx.table()
                .push(OpenStore { store })
                .map_err(|_| Error::StoreTableFull)
        }))
    }

    async fn get(
        acc: &Accessor<T, Self>,
        this: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let store = match store_of(acc, &this) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(store.get(&key).await.map_err(Error::from))
    }

    async fn set(
        acc: &Accessor<T, Self>,
        this: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = match store_of(acc, &this) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(store.set(&key, &value).await.map_err(Error::from))
    }

    async fn delete(
        acc: &Accessor<T, Self>,
        this: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let store = match store_of(acc, &this) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(store.delete(&key).await.map_err(Error::from))
    }

    async fn exists(
        acc: &Accessor<T, Self>,
        this: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let store = match store_of(acc, &this) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        Ok(store.exists(&key).await.map_err(Error::from))
    }

    async fn get_keys(
        acc: &Accessor<T, Self>,
        this: Resource<OpenStore>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        let listed = match store_of(acc, &this) {
            Ok(store) => store.keys().await.map_err(Error::from),
            Err(e) => Err(e),
        };
        let (keys, outcome) = match listed {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(e)),
        };
        acc.with(|mut a| {
            let stream = StreamReader::new(&mut a, keys)?;
            let done = FutureReader::new(&mut a, async move { wasmtime::error::Ok(outcome) })?;
            Ok((stream, done))
        })
    }

    async fn drop(acc: &Accessor<T, Self>, rep: Resource<OpenStore>) -> wasmtime::Result<()> {
        acc.with(|mut a| {
            let ctx: &mut Ctx = a.get();
            ctx.table().delete(rep)?;
            Ok(())
        })
    }
}
