//! The application's HTTP/1.1 listener: accept, serve through the [`App`], drain on stop.
//! The admin listener is `admin.rs`.
//!
//! Connections are served by hyper with `TCP_NODELAY` (without it Nagle's algorithm holds SSE
//! events back ~40 ms). On Ctrl-C or SIGTERM the listeners close, open connections are asked
//! to finish, and the process waits up to the drain timeout for them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use wasmtime_wasi_http::WasiBody;

use crate::app::App;
use crate::metrics::Metrics;
use crate::occupancy::{Hold, Occupancy};

/// Binds a listener with a clear message when the port is taken.
///
/// # Errors
/// The address is in use or not available.
pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "{what} address {addr} is already in use; pick another with --listen/--admin-listen"
            )
        } else {
            anyhow::anyhow!("cannot listen on {addr} ({what}): {e}")
        }
    })
}

/// Serves the application until `shutdown` flips, then drains.
pub async fn serve_app(
    listener: TcpListener,
    app: Arc<App>,
    metrics: Arc<Metrics>,
    occupancy: Arc<Occupancy>,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) -> Result<()> {
    let mut connections = JoinSet::new();
    loop {
        let (stream, client) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        // Reap finished connection tasks so the set stays small.
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let metrics = metrics.clone();
        let occupancy = occupancy.clone();
        let mut stop = shutdown.clone();
        connections.spawn(async move {
            metrics.connection(1);
            let body_stop = stop.clone();
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let app = app.clone();
                let body_stop = body_stop.clone();
                let hold = occupancy.hold(req.uri().query());
                async move {
                    let req =
                        req.map(|b| b.map_err(wasmtime_wasi_http::Error::from).boxed_unsync());
                    let resp = app.serve(req, client).await;
                    Ok::<_, std::convert::Infallible>(
                        resp.map(|b| EndOnShutdown::new(b, body_stop, hold).boxed_unsync()),
                    )
                }
            });
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            metrics.connection(-1);
        });
    }
    drop(listener);
    tracing::info!(open = connections.len(), "draining connections");
    if tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            left = connections.len(),
            "drain timeout; closing remaining connections"
        );
        connections.abort_all();
    }
    Ok(())
}

/// A response body that ends cleanly, between two chunks, when the runner shuts down.
///
/// Held streams (SSE, NDJSON) would otherwise keep a draining runner alive until the drain
/// timeout and then be cut mid-response; ended cleanly, their clients reconnect (to another
/// runner) and resume from their cursor with nothing lost.
///
/// It also carries the request's [`Hold`] on its channels, so a held response counts as
/// occupancy until its body ends.
struct EndOnShutdown {
    inner: WasiBody,
    stopped: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    _hold: Option<Hold>,
}

impl EndOnShutdown {
    fn new(inner: WasiBody, mut stop: watch::Receiver<bool>, hold: Option<Hold>) -> Self {
        Self {
            inner,
            stopped: Box::pin(async move {
                let _ = stop.wait_for(|stopping| *stopping).await;
            }),
            _hold: hold,
        }
    }
}

impl hyper::body::Body for EndOnShutdown {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        // Data already produced goes out first; the end comes at the next chunk boundary.
        if let std::task::Poll::Ready(frame) = std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            return std::task::Poll::Ready(frame);
        }
        if self.stopped.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

static SHUTTING_DOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the process is stopping (workers dropped mid-flight are expected then).
pub fn shutting_down() -> bool {
    SHUTTING_DOWN.load(std::sync::atomic::Ordering::Relaxed)
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM), and marks the process as
/// shutting down.
pub async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    SHUTTING_DOWN.store(true, std::sync::atomic::Ordering::Relaxed);
}
