//! Readiness and liveness for the admin listener.
//!
//! `/livez` answers while the process serves at all (restart it when this fails). `/healthz`
//! is readiness: it answers 200 only when every store the application depends on answers, so
//! a load balancer stops sending traffic to an instance whose Redis is gone instead of letting
//! every publish fail with `store_unavailable`. What the app depends on is read from the
//! manifest: each key-value label a component declares, and — Comet's convention — the
//! `redis_url` of every component whose `backend` variable is `redis`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::runtime_config::Stores;

/// How long one dependency may take to answer before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency of the application.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dependency {
    /// A key-value store label (embedded SQLite or a runtime-config Redis).
    KeyValue(String),
    /// An outbound Redis the functions dial (`backend = redis`).
    Redis(String),
}

/// What one component depends on: its key-value labels, and its Redis when its `backend`
/// variable says `redis` (Comet's functions dial `redis_url` then).
pub fn component_dependencies(
    kv_labels: &[String],
    variables: &BTreeMap<String, String>,
) -> Vec<Dependency> {
    let mut out: Vec<Dependency> = kv_labels
        .iter()
        .map(|label| Dependency::KeyValue(label.clone()))
        .collect();
    if variables.get("backend").map(String::as_str) == Some("redis")
        && let Some(url) = variables.get("redis_url")
    {
        out.push(Dependency::Redis(url.clone()));
    }
    out
}

/// What `/healthz` checks, built once at start-up.
pub struct Readiness {
    stores: Arc<Stores>,
    dependencies: Vec<Dependency>,
}

impl Readiness {
    /// The checks for these dependencies (duplicates are checked once).
    pub fn new(stores: Arc<Stores>, dependencies: impl IntoIterator<Item = Dependency>) -> Self {
        let dependencies: BTreeSet<Dependency> = dependencies.into_iter().collect();
        Self {
            stores,
            dependencies: dependencies.into_iter().collect(),
        }
    }

    /// Checks every dependency concurrently: whether all answered, and a JSON report
    /// `{"status":"ready"|"unavailable","checks":[{"name","ok","ms","error"?}]}`.
    pub async fn check(&self) -> (bool, Value) {
        let results =
            futures::future::join_all(self.dependencies.iter().map(|d| self.check_one(d))).await;
        let ready = results.iter().all(|r| r["ok"] == json!(true));
        let status = if ready { "ready" } else { "unavailable" };
        (ready, json!({ "status": status, "checks": results }))
    }

    async fn check_one(&self, dependency: &Dependency) -> Value {
        let started = Instant::now();
        let (name, outcome) = match dependency {
            Dependency::KeyValue(label) => {
                let store = self.stores.get(label);
                let probe = async move {
                    store
                        .exists("comet:readiness-probe")
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                };
                (format!("key-value store {label}"), timed(probe).await)
            }
            Dependency::Redis(url) => (format!("redis {}", redact(url)), timed(ping(url)).await),
        };
        let ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(()) => json!({ "name": name, "ok": true, "ms": ms }),
            Err(error) => json!({ "name": name, "ok": false, "ms": ms, "error": error }),
        }
    }
}

async fn timed(check: impl Future<Output = Result<(), String>>) -> Result<(), String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
    }
}

async fn ping(url: &str) -> Result<(), String> {
    let mut conn = crate::redis_pool::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The URL without its password, for the report.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_report() {
        assert_eq!(
            redact("redis://default:hunter2@10.0.0.1:6379/3"),
            "redis://***@10.0.0.1:6379/3"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
