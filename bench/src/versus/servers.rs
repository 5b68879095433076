//! The servers under test (Comet runners on either store, Nginx + Nchan), started fresh per
//! scenario, and what is read off them: memory (PSS), CPU, store operations.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use serde_json::json;

use super::table::Target;
use super::{KEY, Options};
use crate::client::{Conn, addr_of, admin_metric};
use crate::loadgen::unix_micros;
use crate::nchan::Nginx;
use crate::proc_stats::{cpu_time, pss_bytes};
use crate::server::{Runner, workspace_root};
use crate::state_bench::redis_commands;

/// A server under test, started fresh for one scenario.
pub(super) enum Server {
    Comet {
        runners: Vec<Runner>,
        state: tempfile::TempDir,
        env: Vec<(&'static str, String)>,
    },
    Nchan(Nginx),
}

impl Server {
    pub(super) async fn start(opts: &Options, t: Target) -> Result<Self> {
        let server = match t {
            Target::Nchan => Self::Nchan(Nginx::start()?),
            Target::CometKv | Target::CometRedis => {
                let mut env = vec![
                    ("SPIN_VARIABLE_PUBLISH_KEY", KEY.to_string()),
                    ("SPIN_VARIABLE_PUBLISH_RATE_LIMIT", "10000000".to_string()),
                ];
                if t == Target::CometRedis {
                    env.push(("SPIN_VARIABLE_BACKEND", "redis".to_string()));
                    env.push(("SPIN_VARIABLE_REDIS_URL", opts.redis_url.clone()));
                }
                let mut s = Self::Comet {
                    runners: Vec::new(),
                    state: tempfile::tempdir()?,
                    env,
                };
                s.add_runner()?;
                s
            }
        };
        server.warm_up().await?;
        Ok(server)
    }

    /// Another runner on the same store (Comet only).
    pub(super) fn add_runner(&mut self) -> Result<()> {
        if let Self::Comet {
            runners,
            state,
            env,
        } = self
        {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            runners.push(Runner::start(
                &workspace_root().join("spin.toml"),
                state.path(),
                &[],
                &env,
            )?);
        }
        Ok(())
    }

    pub(super) fn bases(&self) -> Vec<String> {
        match self {
            Self::Comet { runners, .. } => runners.iter().map(|r| r.base.clone()).collect(),
            Self::Nchan(n) => vec![n.base.clone()],
        }
    }

    pub(super) fn pids(&self) -> Vec<u32> {
        match self {
            Self::Comet { runners, .. } => runners.iter().map(Runner::pid).collect(),
            Self::Nchan(n) => n.pids(),
        }
    }

    /// Sum of the server processes' PSS, bytes.
    pub(super) fn memory(&self) -> u64 {
        self.pids().into_iter().map(pss_bytes).sum()
    }

    pub(super) fn server_cpu(&self) -> f64 {
        self.pids()
            .into_iter()
            .map(|p| cpu_time(p).as_secs_f64())
            .sum()
    }

    /// Store operations so far: Comet's own KV counter, or Redis's command count; Nchan keeps
    /// messages in its own shared memory, so it has none.
    pub(super) async fn store_ops(&self, opts: &Options) -> Result<Option<f64>> {
        match self {
            Self::Comet { runners, env, .. } => {
                if env
                    .iter()
                    .any(|(k, v)| *k == "SPIN_VARIABLE_BACKEND" && v == "redis")
                {
                    return Ok(Some(redis_commands(&opts.redis_url)?));
                }
                let mut sum = 0.0;
                for r in runners {
                    sum += admin_metric(&r.admin, "comet_kv_ops_total").await?;
                }
                Ok(Some(sum))
            }
            Self::Nchan(_) => Ok(None),
        }
    }

    /// One publish and one read, so lazily built pools and caches exist before the baseline.
    pub(super) async fn warm_up(&self) -> Result<()> {
        for base in self.bases() {
            let mut c = Conn::open(addr_of(&base)?).await?;
            self.publish(&mut c, "warm-up", 0).await?;
        }
        Ok(())
    }

    /// Publishes one stamped message (`"bt"` = now in µs since the epoch).
    pub(super) async fn publish(&self, c: &mut Conn, channel: &str, n: u64) -> Result<()> {
        let data = json!({"bt": unix_micros(), "n": n});
        let (status, body) = match self {
            Self::Comet { .. } => {
                c.post_json(
                    "/v1/publish",
                    KEY,
                    json!({"channel": channel, "data": data}).to_string(),
                )
                .await?
            }
            Self::Nchan(_) => {
                c.post_json(&format!("/pub?id={channel}"), "", data.to_string())
                    .await?
            }
        };
        ensure!(
            (200..300).contains(&status),
            "publish: {status} {}",
            String::from_utf8_lossy(&body)
        );
        Ok(())
    }

    pub(super) fn stop(self) {
        drop(self);
    }
}

/// Waits (up to 30 s) until the machine's CPUs are at least 90 % idle over half a second.
pub(super) async fn await_idle() {
    pub(super) fn sample() -> (u64, u64) {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let nums: Vec<u64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        let idle = nums.get(3).copied().unwrap_or(0) + nums.get(4).copied().unwrap_or(0);
        (nums.iter().sum(), idle)
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (t0, i0) = sample();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (t1, i1) = sample();
        let busy = 1.0 - (i1 - i0) as f64 / (t1 - t0).max(1) as f64;
        if busy < 0.10 || Instant::now() > deadline {
            return;
        }
    }
}
