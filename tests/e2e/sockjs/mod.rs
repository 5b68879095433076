//! SockJS 0.3.3 and the Jii-comet protocol under real HTTP: the protocol-test services
//! (`tests/sockjs/spin.toml`) for framing, escaping, heartbeats, conflicts and bad input, and
//! the app's `/comet` endpoint (`spin.toml`) for Jii commands, actions, server sends and a
//! session served alternately by two runners sharing Redis.

mod jii;
mod protocol;
mod shared;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Runner, RunnerOpts, redis_url, unique, workspace_root};
use crate::v1::{Answer, Api, Backend, client};

/// The protocol-test services' manifest.
fn test_manifest() -> std::path::PathBuf {
    workspace_root().join("tests/sockjs/spin.toml")
}

/// Runner options for the test services: `backend` plus `extra` variables.
fn test_opts(backend: Backend, extra: &[(&str, &str)]) -> RunnerOpts {
    let mut o = RunnerOpts::default();
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

/// The SockJS test services on `backend`.
fn test_services(backend: Backend, extra: &[(&str, &str)]) -> Api {
    Api {
        runner: Runner::start(&test_manifest(), test_opts(backend, extra)),
        client: client(),
    }
}

/// A fresh session id (SockJS clients choose them).
fn session_id() -> String {
    unique("s").replace(['.', ':'], "_")
}

/// One SockJS session of a service: `{prefix}/000/{id}/…` on one or more runners.
struct Sock<'a> {
    apis: Vec<&'a Api>,
    base: String,
    turn: std::cell::Cell<usize>,
}

impl<'a> Sock<'a> {
    /// A new session under `prefix` (e.g. `/echo`).
    fn new(api: &'a Api, prefix: &str) -> Self {
        Self::across(vec![api], prefix)
    }

    /// A session whose requests go round-robin over `apis` (other instances/processes).
    fn across(apis: Vec<&'a Api>, prefix: &str) -> Self {
        Self {
            apis,
            base: format!("{prefix}/000/{}", session_id()),
            turn: std::cell::Cell::new(0),
        }
    }

    fn next_api(&self) -> &'a Api {
        let i = self.turn.get();
        self.turn.set(i + 1);
        self.apis[i % self.apis.len()]
    }

    /// The session id.
    fn id(&self) -> &str {
        self.base.rsplit('/').next().unwrap_or_default()
    }

    /// `POST …/{transport}` with a body.
    async fn post(&self, transport: &str, body: &str) -> Answer {
        let api = self.next_api();
        api.send(
            api.client
                .post(api.url(&format!("{}/{transport}", self.base)))
                .header("content-type", "text/plain")
                .body(body.to_owned()),
        )
        .await
    }

    /// `GET …/{transport}{query}`.
    async fn get(&self, transport_and_query: &str) -> Answer {
        let api = self.next_api();
        api.get(&format!("{}/{transport_and_query}", self.base))
            .await
    }

    /// Opens a receiving stream (`xhr_streaming` is POSTed, the others are GETs), unread.
    async fn stream(&self, transport_and_query: &str) -> reqwest::Response {
        let api = self.next_api();
        let url = api.url(&format!("{}/{transport_and_query}", self.base));
        let req = if transport_and_query.starts_with("xhr") {
            api.client.post(url)
        } else {
            api.client.get(url)
        };
        req.send()
            .await
            .unwrap_or_else(|e| panic!("{transport_and_query}: {e}"))
    }

    /// One xhr poll; returns the body, asserting 200.
    async fn xhr(&self) -> String {
        let a = self.post("xhr", "").await;
        assert_eq!(a.status, StatusCode::OK, "xhr: {}", a.text);
        a.text
    }

    /// Opens the session with an xhr poll (asserting `o`).
    async fn open(&self) {
        assert_eq!(self.xhr().await, "o\n", "opening {}", self.base);
    }

    /// Sends messages with xhr_send, asserting 204.
    async fn send(&self, messages: &[&str]) {
        let body = serde_json::to_string(messages).expect("json");
        let a = self.post("xhr_send", &body).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "xhr_send: {}", a.text);
        assert_eq!(a.text, "");
    }

    /// Polls until `n` messages arrived (bounded by 15 s); returns them in arrival order.
    async fn collect(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut got = Vec::new();
        while got.len() < n {
            assert!(
                Instant::now() < deadline,
                "{}: only {} of {n} messages within 15 s: {got:?}",
                self.base,
                got.len()
            );
            let body = self.xhr().await;
            match body.as_bytes().first() {
                Some(b'a') => got.extend(messages_of(&body)),
                Some(b'h') => {}
                _ => panic!("{}: unexpected frame {body:?} after {got:?}", self.base),
            }
        }
        got
    }
}

/// The messages of one `a[...]` frame (with or without the trailing newline).
fn messages_of(frame: &str) -> Vec<String> {
    let json = frame
        .trim_end_matches('\n')
        .strip_prefix('a')
        .unwrap_or_else(|| panic!("not a message frame: {frame:?}"));
    let values: Vec<Value> =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("bad frame {frame:?}: {e}"));
    values
        .into_iter()
        .map(|v| v.as_str().expect("string message").to_owned())
        .collect()
}

/// Reads a streaming response until `done(text so far)` holds or `limit` passes; returns
/// the text and whether the response ended.
async fn read_until(
    resp: &mut reqwest::Response,
    limit: Duration,
    done: impl Fn(&str) -> bool,
    text: &mut String,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while !done(text) {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => return true,
            Ok(Err(e)) => panic!("stream broke: {e} after {text:?}"),
            Err(_) => panic!("timed out after {limit:?}; got {text:?}"),
        }
    }
    false
}
