//! Runner figures with the probe component: cold start, trivial req/s, RSS per held request.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::client::{Conn, addr_of};
use crate::proc_stats::{cpu_time, rss_bytes, self_cpu_time};
use crate::server::{Runner, workspace_root};

/// Options for `comet-bench runner`.
#[derive(clap::Args)]
pub struct Options {
    /// Held-request counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000")]
    held: Vec<usize>,
    /// How long each held request sleeps in the guest, in ms.
    #[arg(long, default_value_t = 10_000)]
    hold_ms: u64,
    /// Connections for the trivial-request throughput run.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of the throughput run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

fn manifest() -> PathBuf {
    workspace_root().join("tests/probe-app/spin.toml")
}

const ENV: &[(&str, &str)] = &[("SPIN_VARIABLE_API_SECRET", "bench")];

/// Runs all runner benchmarks and prints a table.
///
/// # Errors
/// The runner cannot start.
pub async fn run(opts: Options) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("comet-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "# comet runner benchmark ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Cold start: the first start compiles the component (empty cache), later ones load it.
    let mut starts = Vec::new();
    for _ in 0..4 {
        let r = Runner::start(&manifest(), &dir, &[], ENV)?;
        starts.push(r.startup);
    }
    let mut warm: Vec<Duration> = starts[1..].to_vec();
    warm.sort();
    println!(
        "cold start (spawn → Serving): first (empty compile cache) {:.0} ms, warm cache median {:.0} ms",
        starts[0].as_secs_f64() * 1000.0,
        warm[warm.len() / 2].as_secs_f64() * 1000.0
    );

    let runner = Runner::start(&manifest(), &dir, &[], ENV)?;
    throughput(&runner, opts.connections, Duration::from_secs(opts.seconds)).await?;
    drop(runner);
    for &n in &opts.held {
        // A fresh runner per size, so the baseline is not inflated by the previous run.
        let runner = Runner::start(&manifest(), &dir, &[], ENV)?;
        held(&runner, n, opts.hold_ms).await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn throughput(runner: &Runner, connections: usize, duration: Duration) -> Result<()> {
    let addr = addr_of(&runner.base)?;
    // Warm up: instantiate and fault in the code paths.
    let mut c = Conn::open(addr).await?;
    for _ in 0..200 {
        c.get("/probe/hello").await?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let server_cpu0 = cpu_time(runner.pid());
    let self_cpu0 = self_cpu_time();
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut c = Conn::open(addr).await?;
            while Instant::now() < deadline {
                let t = Instant::now();
                let (status, _) = c.get("/probe/hello").await?;
                anyhow::ensure!(status == 200, "status {status}");
                lat.push(t.elapsed());
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    lat.sort();
    let n = done.load(Ordering::Relaxed);
    let secs = duration.as_secs_f64();
    println!(
        "trivial GET /probe/hello, {connections} keep-alive connections, {secs:.0} s: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms (server CPU {:.1} s, load generator CPU {:.1} s)",
        n as f64 / secs,
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        (cpu_time(runner.pid()) - server_cpu0).as_secs_f64(),
        (self_cpu_time() - self_cpu0).as_secs_f64(),
    );
    Ok(())
}

async fn held(runner: &Runner, n: usize, hold_ms: u64) -> Result<()> {
    let addr = addr_of(&runner.base)?;
    let mut c = Conn::open(addr).await?;
    c.get("/probe/hello").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let base_rss = rss_bytes(runner.pid());
    let path = format!("/probe/sleep?ms={hold_ms}");
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let mut c = Conn::open(addr).await?;
            let (status, _) = c.get(&path).await?;
            anyhow::Ok((status, t.elapsed()))
        }));
    }
    let pid = runner.pid();
    let peak = Arc::new(AtomicU64::new(base_rss));
    let sampler = tokio::spawn({
        let peak = peak.clone();
        async move {
            loop {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let mut ok = 0;
    let mut failed = 0;
    let mut lat = Vec::new();
    for t in tasks {
        match t.await? {
            Ok((200, d)) => {
                ok += 1;
                lat.push(d);
            }
            _ => failed += 1,
        }
    }
    let total = start.elapsed();
    sampler.abort();
    let peak = peak.load(Ordering::Relaxed);
    lat.sort();
    let delta = peak.saturating_sub(base_rss);
    println!(
        "held {n} × {hold_ms} ms sleeps: {ok} ok / {failed} failed in {:.1} s; latency min/p50/max {:.2}/{:.2}/{:.2} s; RSS base {:.1} MiB, peak {:.1} MiB, {:.1} KiB per held request",
        total.as_secs_f64(),
        lat.first().map_or(0.0, |d| d.as_secs_f64()),
        pct(&lat, 0.5) / 1000.0,
        lat.last().map_or(0.0, |d| d.as_secs_f64()),
        base_rss as f64 / 1048576.0,
        peak as f64 / 1048576.0,
        delta as f64 / 1024.0 / n as f64,
    );
    Ok(())
}

/// The `q` quantile of sorted durations, in milliseconds.
pub fn pct(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}
