//! A loaded application: compiled components, their instance pools and the router.
//!
//! Each component is compiled once (with wasmtime's on-disk cache under `--state-dir`),
//! pre-instantiated, and served through `ProxyHandler`, which reuses one instance for many
//! concurrent WASIp3 requests. That reuse is what lets thousands of held long-polls fit in
//! memory: a parked request costs a guest task, not a whole instance.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::oneshot;
use wasmtime::component::{Component, GuestTaskId, Linker};
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::handler::{
    HandlerState, Instance, ProxyHandler, ProxyPre, ShouldAccept, WorkerExpiration, WorkerState,
    WorkerStatus,
};
use wasmtime_wasi_http::{WasiBody, WasiHttpView};

use crate::health::{self, Dependency};
use crate::host::{self, ComponentHost, Ctx};
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::outbound::{AllowedHosts, ChainedResponse, InternalDispatch, OutboundHooks};
use crate::redis_pool::RedisPool;
use crate::routes::{Route, RouteMatch, Router};
use crate::runtime_config::Stores;
use crate::variables::AppVariables;

/// How instances are reused; mirrors `spin up`'s flags.
#[derive(Debug, Clone, Copy)]
pub struct InstancePolicy {
    /// Requests one instance serves before it is retired (`--max-instance-reuse-count`).
    pub max_reuse: usize,
    /// Requests one instance serves at once (`--max-instance-concurrent-reuse-count`).
    pub max_concurrent: usize,
    /// How long an idle instance is kept for reuse.
    pub idle_timeout: Duration,
    /// Longest a request (including a streamed body) may run; `None` = no limit.
    pub request_timeout: Option<Duration>,
    /// How long a guest may run on after its client left before it is cancelled.
    pub cancel_grace: Duration,
}

/// One component ready to serve.
struct ComponentEntry {
    id: String,
    handler: ProxyHandler<ComponentState>,
}

/// The whole application.
pub struct App {
    components: Vec<ComponentEntry>,
    router: Router,
    metrics: Arc<Metrics>,
    name: String,
    dependencies: Vec<Dependency>,
}

/// Turns a request the router did not match, or a host failure, into Comet's JSON error body.
pub fn error_response(
    status: http::StatusCode,
    code: &str,
    message: &str,
) -> http::Response<WasiBody> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut resp = http::Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

impl App {
    /// Compiles and pre-instantiates every component of the manifest.
    ///
    /// # Errors
    /// A `.wasm` is missing (the message suggests `--build`) or invalid, a variable cannot be
    /// resolved, or an allowed host is malformed.
    pub fn load(
        manifest: &Manifest,
        engine: &Engine,
        stores: Arc<Stores>,
        policy: InstancePolicy,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>> {
        let variables = AppVariables::resolve(manifest, &|k| std::env::var(k).ok())?;
        let mut linker = Linker::<Ctx>::new(engine);
        host::add_to_linker(&mut linker)
            .map_err(wasmtime_error)
            .context("linking host interfaces")?;
        let redis = RedisPool::default();

        // Prepare everything fallible first; the cyclic constructor below cannot fail.
        let mut prepared = Vec::new();
        let mut dependencies = Vec::new();
        for (id, decl) in &manifest.components {
            let path = manifest.source_path(decl);
            if !path.exists() {
                bail!(
                    "component {id:?}: {} does not exist; build it first with `comet up --build` \
                     (or run the component's build command)",
                    path.display()
                );
            }
            let component = Component::from_file(engine, &path)
                .map_err(wasmtime_error)
                .with_context(|| format!("component {id:?}: cannot load {}", path.display()))?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(wasmtime_error)
                .with_context(|| {
                    format!("component {id:?}: imports an interface comet does not provide")
                })?;
            let (pre, is_p3) = match wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone())
            {
                Ok(p) => (ProxyPre::P3(p), true),
                Err(_) => (
                    ProxyPre::P2(
                        wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre)
                            .map_err(wasmtime_error)
                            .with_context(|| {
                                format!("component {id:?} exports no wasi:http handler")
                            })?,
                    ),
                    false,
                ),
            };
            let hosts = decl
                .allowed_outbound_hosts
                .iter()
                .map(|h| variables.expand(h))
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("component {id:?}: allowed_outbound_hosts"))?;
            let component_variables = variables.for_component(id, decl)?;
            dependencies.extend(health::component_dependencies(
                &decl.key_value_stores,
                &component_variables,
            ));
            let host = Arc::new(ComponentHost {
                id: id.clone(),
                kv_labels: decl.key_value_stores.clone(),
                stores: stores.clone(),
                allowed_hosts: Arc::new(
                    AllowedHosts::parse(&hosts).with_context(|| format!("component {id:?}"))?,
                ),
                variables: component_variables,
                redis: redis.clone(),
            });
            let env: Vec<(String, String)> = decl
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // WASIp2 instances cannot run requests concurrently and Spin gives each request a
            // fresh one; keep that behaviour for them.
            let policy = if is_p3 {
                policy
            } else {
                InstancePolicy {
                    max_reuse: 1,
                    max_concurrent: 1,
                    ..policy
                }
            };
            prepared.push((id.clone(), pre, host, env, policy));
        }
        let mut routes = Vec::new();
        for trigger in &manifest.http_triggers {
            let Some(pattern) = &trigger.route else {
                continue;
            };
            let target = prepared
                .iter()
                .position(|(id, ..)| *id == trigger.component)
                .context("trigger names a component that was not loaded")?;
            routes.push(Route::new(pattern, target)?);
        }
        let router = Router::new(routes);
        let engine = engine.clone();
        Ok(Arc::new_cyclic(|weak: &Weak<App>| {
            let dispatch: Weak<dyn InternalDispatch> = weak.clone();
            let components = prepared
                .into_iter()
                .map(|(id, pre, host, env, policy)| ComponentEntry {
                    id: id.clone(),
                    handler: ProxyHandler::new(ComponentState {
                        engine: engine.clone(),
                        pre,
                        host,
                        env,
                        policy,
                        app: dispatch.clone(),
                        metrics: metrics.clone(),
                    }),
                })
                .collect();
            App {
                components,
                router,
                metrics: metrics.clone(),
                name: manifest.name.clone(),
                dependencies,
            }
        }))
    }

    /// The application name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stores the components need to serve requests, for readiness checks.
    pub fn dependencies(&self) -> &[Dependency] {
        &self.dependencies
    }

    /// `(route, component id)` pairs for the startup banner.
    pub fn routes(&self) -> Vec<(String, String)> {
        self.router
            .patterns()
            .map(|(p, t)| (p.to_string(), self.components[t].id.clone()))
            .collect()
    }

    /// Routes and serves one request from a client.
    pub async fn serve(
        &self,
        request: http::Request<WasiBody>,
        client: SocketAddr,
    ) -> http::Response<WasiBody> {
        let path = request.uri().path().to_string();
        let Some(matched) = self.router.route(&path) else {
            return error_response(
                http::StatusCode::NOT_FOUND,
                "route_not_found",
                "no component serves this path",
            );
        };
        self.serve_matched(matched, request, Some(client)).await
    }

    async fn serve_matched(
        &self,
        matched: RouteMatch,
        mut request: http::Request<WasiBody>,
        client: Option<SocketAddr>,
    ) -> http::Response<WasiBody> {
        let entry = &self.components[matched.target];
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        if let Err(e) = prepare_request(&mut request, &matched, client) {
            return error_response(http::StatusCode::BAD_REQUEST, "bad_request", &e.to_string());
        }
        // Dropping `_disconnect` (client gone before a response) expires the guest task after
        // the cancel grace; the guard logs that case, which otherwise would leave no trace.
        let (_disconnect, cancelled) = oneshot::channel::<()>();
        let mut pending = PendingRequest::new(&self.metrics, &entry.id, &method, &path);
        let result = entry.handler.handle(cancelled, request).await;
        pending.done();
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(component = %entry.id, error = ?e, "guest failed");
                error_response(
                    http::StatusCode::INTERNAL_SERVER_ERROR,
                    "component_failed",
                    "the component failed to produce a response",
                )
            }
        };
        let status = response.status().as_u16();
        self.metrics.count_response(&entry.id, status);
        tracing::info!(
            component = %entry.id,
            %method,
            %path,
            status,
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
        response
    }
}

/// Tracks a request until its response head: in-flight gauge, and a log line if the client
/// leaves first (the serving future is then dropped mid-await).
struct PendingRequest<'a> {
    metrics: &'a Metrics,
    component: &'a str,
    method: &'a http::Method,
    path: &'a str,
    started: Instant,
    finished: bool,
}

impl<'a> PendingRequest<'a> {
    fn new(
        metrics: &'a Metrics,
        component: &'a str,
        method: &'a http::Method,
        path: &'a str,
    ) -> Self {
        metrics.request_started();
        Self {
            metrics,
            component,
            method,
            path,
            started: Instant::now(),
            finished: false,
        }
    }

    fn done(&mut self) {
        self.finished = true;
    }
}

impl Drop for PendingRequest<'_> {
    fn drop(&mut self) {
        self.metrics.request_finished();
        if !self.finished {
            self.metrics.count_response(self.component, 499);
            tracing::info!(
                component = %self.component,
                method = %self.method,
                path = %self.path,
                ms = self.started.elapsed().as_secs_f64() * 1000.0,
                "client went away before the response; guest task abandoned"
            );
        }
    }
}

/// Makes the URI absolute (wasi-http requires it) and adds Spin's `spin-*` request headers.
fn prepare_request(
    request: &mut http::Request<WasiBody>,
    matched: &RouteMatch,
    client: Option<SocketAddr>,
) -> Result<()> {
    let host = request
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost")
        .to_string();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let full = format!("http://{host}{path_and_query}");
    *request.uri_mut() = full.parse().context("invalid request URI")?;
    let headers = request.headers_mut();
    let mut put = |name: &str, value: &str| -> Result<()> {
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes())?,
            http::HeaderValue::from_str(value)?,
        );
        Ok(())
    };
    put("spin-full-url", &full)?;
    put("spin-path-info", &matched.path_info)?;
    put("spin-matched-route", &matched.pattern)?;
    put("spin-raw-component-route", &matched.pattern)?;
    put("spin-component-route", &matched.component_route)?;
    put("spin-base-path", "/")?;
    if let Some(client) = client {
        put("spin-client-addr", &client.to_string())?;
    }
    for (name, value) in &matched.params {
        put(&format!("spin-path-match-{name}"), value)?;
    }
    Ok(())
}

impl InternalDispatch for App {
    fn dispatch(
        self: Arc<Self>,
        id: &str,
        request: http::Request<WasiBody>,
    ) -> Option<ChainedResponse> {
        let target = self.components.iter().position(|c| c.id == id)?;
        let path = request.uri().path().to_string();
        let matched = self
            .router
            .route(&path)
            .filter(|m| m.target == target)
            .unwrap_or(RouteMatch {
                target,
                pattern: "/...".into(),
                component_route: String::new(),
                path_info: path,
                params: Vec::new(),
            });
        Some(Box::pin(async move {
            Ok(self.serve_matched(matched, request, None).await)
        }))
    }
}

/// Per-component state for `ProxyHandler`: how to make and retire instances.
struct ComponentState {
    engine: Engine,
    pre: ProxyPre<Ctx>,
    host: Arc<ComponentHost>,
    env: Vec<(String, String)>,
    policy: InstancePolicy,
    app: Weak<dyn InternalDispatch>,
    metrics: Arc<Metrics>,
}

impl HandlerState for ComponentState {
    type StoreData = Ctx;
    type WorkerExpiration = Expiry;
    type WorkerState = Worker;

    async fn instantiate(&self) -> wasmtime::Result<Instance<Ctx, Expiry, Worker>> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdout().inherit_stderr();
        for (k, v) in &self.env {
            wasi.env(k, v);
        }
        let hooks = OutboundHooks::new(self.host.allowed_hosts.clone(), self.app.clone());
        let mut store = Store::new(
            &self.engine,
            Ctx::new(wasi.build(), self.host.clone(), hooks),
        );
        let proxy = self.pre.instantiate_async(&mut store).await?;
        self.metrics.instance_created();
        let abandoned = Arc::new(AtomicBool::new(false));
        Ok(Instance {
            store,
            proxy,
            view: <Ctx as WasiHttpView>::http,
            expiration: Expiry {
                policy: self.policy,
                abandoned: abandoned.clone(),
                timer: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            },
            state: Worker {
                policy: self.policy,
                abandoned,
                metrics: self.metrics.clone(),
            },
        })
    }
}

/// Decides how many requests an instance takes, and expires requests whose client left.
struct Worker {
    policy: InstancePolicy,
    abandoned: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
}

impl WorkerState for Worker {
    type StoreData = Ctx;
    type RequestData = oneshot::Receiver<()>;

    fn should_accept_request(&self, concurrent: usize, total: usize) -> ShouldAccept {
        if total >= self.policy.max_reuse {
            ShouldAccept::Never
        } else if concurrent >= self.policy.max_concurrent {
            ShouldAccept::No
        } else {
            ShouldAccept::Yes
        }
    }

    fn on_request_start(
        &self,
        _store: StoreContextMut<'_, Ctx>,
        disconnected: oneshot::Receiver<()>,
        _task: GuestTaskId,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + Sync>> {
        let abandoned = self.abandoned.clone();
        let timeout = self.policy.request_timeout;
        let grace = self.policy.cancel_grace;
        Box::pin(async move {
            let timed_out = async {
                match timeout {
                    Some(t) => tokio::time::sleep(t).await,
                    None => std::future::pending().await,
                }
            };
            let client_gone = async {
                let _ = disconnected.await;
                tokio::time::sleep(grace).await;
            };
            tokio::select! {
                () = client_gone => {}
                () = timed_out => {}
            }
            // The guest task cannot be cancelled on its own, so the instance stops taking
            // requests and is torn down as soon as its other requests finish.
            abandoned.store(true, Ordering::Release);
        })
    }

    fn drop(&self, store: Store<Ctx>, result: wasmtime::Result<()>) {
        if let Err(e) = result {
            // At shutdown every live worker is dropped mid-flight; that is not worth a warning.
            if crate::server::shutting_down() {
                tracing::debug!(error = ?e, "instance dropped at shutdown");
            } else {
                tracing::warn!(error = ?e, "instance retired with an error");
            }
        }
        self.metrics.instance_dropped();
        drop(store);
    }
}

/// Tells `ProxyHandler` when an instance should go away.
struct Expiry {
    policy: InstancePolicy,
    abandoned: Arc<AtomicBool>,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl WorkerExpiration for Expiry {
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        status: WorkerStatus,
        start: Instant,
    ) -> Poll<()> {
        if self.abandoned.load(Ordering::Acquire) && status != WorkerStatus::Requests {
            return Poll::Ready(());
        }
        let limit = match status {
            WorkerStatus::Idle => Some(self.policy.idle_timeout),
            WorkerStatus::Requests | WorkerStatus::PostReturn => self.policy.request_timeout,
        };
        let Some(limit) = limit else {
            return Poll::Pending;
        };
        let deadline = tokio::time::Instant::from_std(start + limit);
        if self.timer.deadline() != deadline {
            self.timer.as_mut().reset(deadline);
        }
        self.timer.as_mut().poll(cx)
    }
}

/// Builds the wasmtime engine: component model + async, compiled-code cache on disk.
///
/// # Errors
/// The cache directory cannot be created.
pub fn engine(cache_dir: &Path) -> Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.wasm_component_model(true);
    config.wasm_component_model_async(true);
    let mut cache = wasmtime::CacheConfig::new();
    cache.with_directory(cache_dir);
    config.cache(Some(wasmtime::Cache::new(cache).map_err(wasmtime_error)?));
    // `COMET_PROFILE=perfmap`: name JIT code in /tmp/perf-<pid>.map so `perf report` shows
    // guest functions (how bench/RESULTS.md's profiles were taken).
    if std::env::var("COMET_PROFILE").is_ok_and(|v| v == "perfmap") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    Engine::new(&config).map_err(wasmtime_error)
}

/// Converts wasmtime's own error type (not `std::error::Error` in wasmtime 48) for `anyhow`,
/// keeping its whole cause chain in the message.
pub fn wasmtime_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{e:?}")
}
