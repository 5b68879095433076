//! The public `/v1` API of the Comet functions (`spin.toml` at the repo root), over real HTTP
//! against the `comet` runner. Every behaviour runs on both backends: the embedded key-value
//! store and Redis (see [`both!`]).

mod cors;
mod errors;
mod health;
mod history;
mod input;
mod openapi;
mod poll;
mod publish;
mod sse;
mod stream;
pub(super) mod tokens;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{Runner, RunnerOpts, redis_url, unique, workspace_root};

/// The publish key every test runner is started with.
pub(super) const KEY: &str = "e2e-publish-key";

/// Which store the functions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    /// The embedded key-value store (default).
    Kv,
    /// The test Redis (`backend = "redis"`).
    Redis,
}

/// Generates one `#[tokio::test]` per backend for an `async fn(Backend)`:
/// `both!(name)` → `name::kv` and `name::redis`.
macro_rules! both {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread")]
            async fn kv() {
                super::$name($crate::v1::Backend::Kv).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn redis() {
                super::$name($crate::v1::Backend::Redis).await;
            }
        }
    )+};
}
pub(super) use both;

/// The app manifest under test.
pub(super) fn manifest() -> PathBuf {
    workspace_root().join("spin.toml")
}

/// Runner options for `backend` with fast timeouts, plus `extra` variables (`NAME` → value of
/// `SPIN_VARIABLE_NAME`, later ones win).
pub(super) fn opts(backend: Backend, extra: &[(&str, &str)]) -> RunnerOpts {
    let mut o = RunnerOpts::default()
        .env("SPIN_VARIABLE_PUBLISH_KEY", KEY)
        .env("SPIN_VARIABLE_HEARTBEAT_SECONDS", "1")
        .env("SPIN_VARIABLE_MAX_STREAM_SECONDS", "3")
        .env("SPIN_VARIABLE_POLL_TIMEOUT_DEFAULT", "1");
    if backend == Backend::Redis {
        o = o
            .env("SPIN_VARIABLE_BACKEND", "redis")
            .env("SPIN_VARIABLE_REDIS_URL", redis_url());
    }
    for (name, value) in extra {
        o = o.env(&format!("SPIN_VARIABLE_{}", name.to_uppercase()), value);
    }
    o
}

/// A runner serving `spin.toml` on one backend, and a client for it.
pub(super) struct Api {
    pub runner: Runner,
    pub client: reqwest::Client,
}

/// What a request answered.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Answer {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    /// The `error.code` of an error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code in {:?}", self.text))
            .to_owned()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Api {
    /// Starts the app on `backend` with the default test variables.
    pub fn start(backend: Backend) -> Api {
        Api::with(backend, &[])
    }

    /// Starts the app on `backend` with extra variables.
    pub fn with(backend: Backend, extra: &[(&str, &str)]) -> Api {
        let runner = Runner::start(&manifest(), opts(backend, extra));
        Api {
            runner,
            client: client(),
        }
    }

    /// A channel name unique to this run (Redis is shared between runs).
    pub fn channel(&self, prefix: &str) -> String {
        unique(prefix).replace('-', "_")
    }

    /// The app URL of `path`.
    pub fn url(&self, path: &str) -> String {
        self.runner.url(path)
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.expect("body read");
        Answer {
            status,
            headers,
            text,
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.client.get(self.url(path))).await
    }

    /// `POST /v1/publish` with the right key and a JSON body.
    pub async fn publish_body(&self, body: &Value) -> Answer {
        self.send(
            self.client
                .post(self.url("/v1/publish"))
                .bearer_auth(KEY)
                .json(body),
        )
        .await
    }

    /// Publishes one message and returns its result (`seq`, `epoch`, …); panics unless 200.
    pub async fn publish(&self, channel: &str, data: Value) -> Value {
        let a = self
            .publish_body(&json!({ "channel": channel, "data": data }))
            .await;
        assert_eq!(a.status, StatusCode::OK, "publish: {}", a.text);
        a.json()
    }

    /// Publishes `data` values in order as one batch; returns the results.
    pub async fn publish_batch(
        &self,
        channel: &str,
        data: impl IntoIterator<Item = Value>,
    ) -> Vec<Value> {
        let body: Vec<Value> = data
            .into_iter()
            .map(|d| json!({ "channel": channel, "data": d }))
            .collect();
        let a = self.publish_body(&Value::Array(body)).await;
        assert_eq!(a.status, StatusCode::OK, "batch publish: {}", a.text);
        a.json()["results"].as_array().expect("results").clone()
    }

    /// `GET /v1/poll?query`, asserting 200; returns the JSON.
    pub async fn poll(&self, query: &str) -> Value {
        let a = self.get(&format!("/v1/poll?{query}")).await;
        assert_eq!(a.status, StatusCode::OK, "poll ?{query}: {}", a.text);
        a.json()
    }

    /// The cursor at "now" for `channels` (a comma list): a poll without cursor, `timeout=0`.
    pub async fn cursor_now(&self, channels: &str) -> String {
        let v = self.poll(&format!("channel={channels}&timeout=0")).await;
        v["cursor"].as_str().expect("cursor").to_owned()
    }

    /// The admin `/metrics` text.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.runner.admin_url());
        self.client
            .get(url)
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }
}

/// A client with a generous overall timeout (tests assert their own, shorter ones).
pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// A gauge or counter value from Prometheus text (`name value` lines, no labels).
pub(super) fn metric(text: &str, name: &str) -> Option<i64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        (n == name).then(|| v.trim().parse().ok())?
    })
}

/// The `(channel, seq, data)` of each message envelope in `events`, skipping other events.
pub(super) fn seqs(events: &[Value], channel: &str) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e.get("type").is_none() && e["channel"] == channel)
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect()
}

/// Asserts every envelope has the documented shape.
pub(super) fn assert_envelope(e: &Value) {
    let obj = e.as_object().unwrap_or_else(|| panic!("envelope {e}"));
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["channel", "data", "epoch", "seq", "time"],
        "envelope {e}"
    );
    assert!(e["seq"].as_u64().is_some_and(|s| s > 0), "seq of {e}");
    assert!(
        e["epoch"].as_str().is_some_and(|s| !s.is_empty()),
        "epoch of {e}"
    );
    assert!(
        e["time"].as_u64().is_some_and(|t| t > 1_600_000_000_000),
        "time of {e}"
    );
}

/// Publishes `n` messages `{"i":k}` on `channel` from `publishers` concurrent tasks, each
/// publishing its share in order. Returns nothing; order across publishers is by seq.
pub(super) async fn publish_concurrently(api: &Api, channel: &str, n: usize, publishers: usize) {
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let client = api.client.clone();
        let url = api.url("/v1/publish");
        let channel = channel.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in (p..n).step_by(publishers) {
                let resp = client
                    .post(&url)
                    .bearer_auth(KEY)
                    .json(&json!({ "channel": channel, "data": { "i": i, "p": p } }))
                    .send()
                    .await
                    .expect("publish");
                let status = resp.status();
                let text = resp.text().await.expect("publish body");
                assert_eq!(status, StatusCode::OK, "publish: {text}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("publisher task");
    }
}

/// Checks a delivered sequence of one channel: exactly `1..=n`, in order, and each
/// publisher's messages in the order it sent them.
pub(super) fn assert_complete_in_order(events: &[Value], channel: &str, n: u64) {
    let got = seqs(events, channel);
    let want: Vec<u64> = (1..=n).collect();
    assert_eq!(got, want, "seqs delivered on {channel}");
    let mut last_i_per_publisher = std::collections::HashMap::new();
    for e in events
        .iter()
        .filter(|e| e["channel"] == channel && e.get("type").is_none())
    {
        assert_envelope(e);
        let p = e["data"]["p"].as_u64().expect("p");
        let i = e["data"]["i"].as_u64().expect("i");
        if let Some(prev) = last_i_per_publisher.insert(p, i) {
            assert!(prev < i, "publisher {p}: {i} delivered after {prev}");
        }
    }
}

/// A line-oriented reader over a streamed response body with a deadline per read.
pub(super) struct Lines {
    stream: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buffer: Vec<u8>,
    pub ended: bool,
}

impl Lines {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            stream: resp.bytes_stream().map(|c| c.map(|b| b.to_vec())).boxed(),
            buffer: Vec::new(),
            ended: false,
        }
    }

    /// The next `\n`-terminated line (without the `\n`), `None` at the end of the body.
    /// Panics if nothing arrives within `within`.
    pub async fn next_line(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
            }
            if self.ended {
                assert!(
                    self.buffer.is_empty(),
                    "body ended mid-line: {:?}",
                    String::from_utf8_lossy(&self.buffer)
                );
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.stream.next()).await {
                Err(_) => panic!(
                    "no line within {within:?} (buffered {:?})",
                    String::from_utf8_lossy(&self.buffer)
                ),
                Ok(None) => self.ended = true,
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk.expect("body chunk")),
            }
        }
    }
}
