//! The admin listener: `/metrics` (Prometheus), `/healthz` (readiness), `/livez` (liveness),
//! and the operator page at `/` with its one data endpoint `/api/channels`.
//!
//! It is a separate port so that operators can expose it to their monitoring network only; it
//! never needs the publish key itself (the operator page asks for it to publish through the
//! application's own API).

use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::health::Readiness;
use crate::metrics::Metrics;
use crate::occupancy::Occupancy;

/// The operator page: plain HTML + a module script, no external resources.
const OPERATOR_PAGE: &str = include_str!("operator.html");

/// Channels `/api/channels` lists at most.
const MAX_LISTED_CHANNELS: usize = 500;

/// Everything the admin listener reports on.
pub struct Admin {
    /// Process-wide counters.
    pub metrics: Arc<Metrics>,
    /// The stores the app depends on.
    pub readiness: Readiness,
    /// Open responses by channel.
    pub occupancy: Arc<Occupancy>,
    /// The application's base URL, for the operator page's calls to the app's API.
    pub app_url: String,
}

/// What one admin request answers: status, content type, body.
type Answer = (u16, &'static str, String);

impl Admin {
    async fn answer(&self, path: &str) -> Answer {
        match path {
            "/" | "/index.html" => (200, "text/html; charset=utf-8", OPERATOR_PAGE.to_string()),
            "/metrics" => (200, "text/plain; version=0.0.4", self.metrics.render()),
            "/livez" => (200, "text/plain", "ok\n".to_string()),
            "/healthz" => {
                let (ready, report) = self.readiness.check().await;
                let status = if ready { 200 } else { 503 };
                (status, "application/json", format!("{report}\n"))
            }
            "/api/channels" => {
                let channels: Vec<_> = self
                    .occupancy
                    .top(MAX_LISTED_CHANNELS)
                    .into_iter()
                    .map(|(channel, open)| json!({ "channel": channel, "open": open }))
                    .collect();
                let body = json!({ "app": self.app_url, "channels": channels });
                (200, "application/json", format!("{body}\n"))
            }
            _ => (
                404,
                "application/json",
                json!({"error": {"code": "not_found", "message": "no such admin path"}})
                    .to_string(),
            ),
        }
    }
}

/// Serves the admin listener until `shutdown` flips.
///
/// # Errors
/// Accepting a connection fails.
pub async fn serve(
    listener: TcpListener,
    admin: Arc<Admin>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted.context("admin accept")?,
            _ = shutdown.changed() => return Ok(()),
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let admin = admin.clone();
                async move {
                    let (status, ctype, body) = if req.method() == http::Method::GET {
                        admin.answer(req.uri().path()).await
                    } else {
                        (405, "application/json", json!({"error": {"code": "method_not_allowed", "message": "the admin listener answers GET only"}}).to_string())
                    };
                    let mut resp = hyper::Response::builder()
                        .status(status)
                        .header(http::header::CONTENT_TYPE, ctype)
                        .header(http::header::CACHE_CONTROL, "no-store");
                    if status == 405 {
                        resp = resp.header(http::header::ALLOW, "GET");
                    }
                    resp.body(Full::new(Bytes::from(body)))
                        .map_err(|e| anyhow::anyhow!(e))
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
