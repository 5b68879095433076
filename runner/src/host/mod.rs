//! The Spin host interfaces `comet` implements for guests, and the per-store data they share.
//!
//! Only what real Spin ≥ 4.1 also provides lives here (`spin:key-value@3`, `spin:redis@3`,
//! `spin:variables@3`, `wasi:keyvalue@0.2.0-draft2` store/atomics/batch), so a component that
//! runs under `comet` runs unchanged under `spin up`. WASI itself (p2 + p3) and `wasi:http`
//! come from `wasmtime-wasi` / `wasmtime-wasi-http`.

mod spin_kv;
mod spin_redis;
mod spin_variables;
mod wasi_kv;

use std::collections::BTreeMap;
use std::sync::Arc;

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::kv::KvStore;
use crate::outbound::{AllowedHosts, OutboundHooks};
use crate::redis_pool::RedisPool;
use crate::runtime_config::Stores;

mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "comet:host/spin-host",
        imports: {
            "wasi:keyvalue/store": async | trappable,
            "wasi:keyvalue/atomics": async | trappable,
            "wasi:keyvalue/batch": async | trappable,
            default: async | store | trappable,
        },
        with: {
            "spin:key-value/key-value.store": super::spin_kv::OpenStore,
            "spin:redis/redis.connection": super::spin_redis::OpenConnection,
            "wasi:keyvalue/store.bucket": super::wasi_kv::OpenBucket,
            "wasi:keyvalue/atomics.cas": super::wasi_kv::OpenCas,
        },
    });
}

pub use bindings::spin::key_value::key_value as spin_key_value;
pub use bindings::spin::redis::redis as spin_redis_api;
pub use bindings::spin::variables::variables as spin_variables_api;
pub use bindings::wasi::keyvalue as wasi_keyvalue;

/// What every instance of one component shares: its grants and its resolved variables.
pub struct ComponentHost {
    /// The component id, for logs.
    pub id: String,
    /// Store labels the manifest lets this component open.
    pub kv_labels: Vec<String>,
    /// Opened stores by label (shared by all components).
    pub stores: Arc<Stores>,
    /// `allowed_outbound_hosts`, parsed.
    pub allowed_hosts: Arc<AllowedHosts>,
    /// The component's variables, templates already expanded.
    pub variables: BTreeMap<String, String>,
    /// Shared outbound Redis connections.
    pub redis: RedisPool,
}

impl ComponentHost {
    /// Opens a store if the manifest grants the label.
    pub fn open_store(&self, label: &str) -> Option<KvStore> {
        self.kv_labels
            .iter()
            .any(|l| l == label)
            .then(|| self.stores.get(label))
    }
}

/// The data of one `Store`: WASI contexts, the resource table and this component's grants.
pub struct Ctx {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: OutboundHooks,
    /// Grants and shared services of the component this store runs.
    pub host: Arc<ComponentHost>,
}

impl Ctx {
    /// A fresh context for one instance.
    pub fn new(wasi: WasiCtx, host: Arc<ComponentHost>, hooks: OutboundHooks) -> Self {
        Self {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
            host,
        }
    }

    /// The resource table, for host-interface implementations.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }
}

impl WasiView for Ctx {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Ctx {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// `HasData` marker for the Spin interfaces: host functions see `&mut Ctx`.
pub struct SpinHost;

impl HasData for SpinHost {
    type Data<'a> = &'a mut Ctx;
}

/// Adds WASI (p2 and p3), `wasi:http` and the Spin interfaces to a linker.
///
/// # Errors
/// Two definitions collide (a wasmtime version mismatch).
pub fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    // Rust std on wasm32-wasip2 imports WASI 0.2.x even from a WASIp3 component, so both sets
    // are linked.
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    wasmtime_wasi::p3::add_to_linker(linker)?;
    wasmtime_wasi_http::p3::add_to_linker(linker)?;
    spin_key_value::add_to_linker::<Ctx, SpinHost>(linker, |c| c)?;
    spin_redis_api::add_to_linker::<Ctx, SpinHost>(linker, |c| c)?;
    spin_variables_api::add_to_linker::<Ctx, SpinHost>(linker, |c| c)?;
    wasi_keyvalue::store::add_to_linker::<Ctx, SpinHost>(linker, |c| c)?;
    wasi_keyvalue::atomics::add_to_linker::<Ctx, SpinHost>(linker, |c| c)?;
    wasi_keyvalue::batch::add_to_linker::<Ctx, SpinHost>(linker, |c| c)?;
    Ok(())
}
