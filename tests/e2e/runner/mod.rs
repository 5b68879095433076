//! The runner's host interfaces and HTTP behaviour, through the probe component
//! (`tests/components/probe`, mounted at `/probe/...` by `tests/probe-app/spin.toml`).

mod cli_errors;
mod key_value;
mod lifecycle;
mod outbound_http;
mod outbound_redis;
mod routing;
mod streaming;
mod variables;
mod wasi_keyvalue;

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    Runner, RunnerOpts, probe_manifest, redis_conn, redis_url, run_comet, unique,
};

/// The value the tests give the probe app's required `api_secret` variable.
pub(super) const SECRET: &str = "s3cret-from-env";

/// The probe's variables: its secret, and the test Redis as its one allowed Redis host.
pub(super) fn probe_opts() -> RunnerOpts {
    RunnerOpts::default()
        .env("SPIN_VARIABLE_API_SECRET", SECRET)
        .env("SPIN_VARIABLE_REDIS_URL", redis_url())
}

pub(super) fn start_probe() -> Runner {
    Runner::start(&probe_manifest(), probe_opts())
}

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client")
}

/// GETs `url`, returning the status and body text.
pub(super) async fn get(url: &str) -> (StatusCode, String) {
    let resp = client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status();
    (status, resp.text().await.expect("body"))
}

/// Sends `method url` with `body`, returning the status and body text.
pub(super) async fn send(
    method: reqwest::Method,
    url: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, String) {
    let resp = client()
        .request(method.clone(), url)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status();
    (status, resp.text().await.expect("body"))
}

pub(super) async fn post(url: &str, body: impl Into<reqwest::Body>) -> (StatusCode, String) {
    send(reqwest::Method::POST, url, body).await
}

pub(super) async fn put(url: &str, body: impl Into<reqwest::Body>) -> (StatusCode, String) {
    send(reqwest::Method::PUT, url, body).await
}

/// Writes a runtime config making both probe stores Redis-backed (`other` in database 1).
pub(super) fn redis_runtime_config(dir: &Path) -> std::path::PathBuf {
    let url = redis_url();
    let path = dir.join("runtime-config.toml");
    std::fs::write(
        &path,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{url}\"\n\n\
             [key_value_store.other]\ntype = \"redis\"\nurl = \"{url}/1\"\n"
        ),
    )
    .expect("write runtime config");
    path
}
