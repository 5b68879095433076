//! State-engine figures through the real functions (`spin.toml`), per backend: publish/s
//! single and batched, read/s, publish→wake latency, and store operations per idle waiter.
//!
//! Every figure is measured over HTTP against `target/release/comet up -f spin.toml`, and
//! printed with the CPU time the runner, Redis (on the Redis backend) and this load generator
//! used meanwhile: on a 2-core box they all compete.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::client::{Conn, addr_of, admin_metric};
use crate::proc_stats::{cpu_time, self_cpu_time};
use crate::runner_bench::pct;
use crate::server::{Runner, workspace_root};

/// Options for `comet-bench state`.
#[derive(clap::Args)]
pub struct Options {
    /// Backends to measure, in order: `kv` (embedded store), `redis`.
    #[arg(long, value_delimiter = ',', default_value = "kv,redis")]
    backends: Vec<String>,
    /// Redis for the `redis` backend (must be running; `redis-cli` must be on PATH).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Keep-alive connections for single publishes and reads.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Keep-alive connections for batched publishes.
    #[arg(long, default_value_t = 8)]
    batch_connections: usize,
    /// Messages per batched publish.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Seconds of each throughput run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Messages each read returns (poll from a cursor that many behind the head; history).
    #[arg(long, default_value_t = 10)]
    read_messages: usize,
    /// Subscribers long-polling one shared channel for the wake-latency run.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Messages published (one at a time) in the wake-latency run.
    #[arg(long, default_value_t = 100)]
    wakes: usize,
    /// Pause between those publishes, in ms.
    #[arg(long, default_value_t = 50)]
    wake_interval_ms: u64,
    /// Idle long-polls held for the store-cost run.
    #[arg(long, default_value_t = 1000)]
    idle: usize,
    /// Distinct channels the idle long-polls wait on, one run each (1 = all on one channel;
    /// equal to --idle = one channel each).
    #[arg(long, value_delimiter = ',', default_value = "1,1000")]
    idle_channels: Vec<usize>,
    /// Seconds the idle long-polls are measured.
    #[arg(long, default_value_t = 10)]
    idle_seconds: u64,
    /// Seconds of the no-waiter baseline subtracted from the idle figures.
    #[arg(long, default_value_t = 5)]
    baseline_seconds: u64,
    /// Phases to run: single, batch, read, wake, idle.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "single,batch,read,wake,idle"
    )]
    phases: Vec<String>,
}

const KEY: &str = "bench-publish-key";

/// Which store a run uses, and how to count its operations.
#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Kv,
    Redis,
}

/// CPU times at a moment, to print what a phase cost next to its figure.
struct CpuMark {
    server_pid: u32,
    redis_pid: Option<u32>,
    server: Duration,
    redis: Duration,
    me: Duration,
}

impl CpuMark {
    fn now(server_pid: u32, redis_pid: Option<u32>) -> Self {
        Self {
            server_pid,
            redis_pid,
            server: cpu_time(server_pid),
            redis: redis_pid.map(cpu_time).unwrap_or_default(),
            me: self_cpu_time(),
        }
    }

    /// `runner CPU 1.2 s, redis CPU 0.4 s, load generator CPU 0.8 s` since the mark.
    fn since(&self) -> String {
        let server = (cpu_time(self.server_pid) - self.server).as_secs_f64();
        let me = (self_cpu_time() - self.me).as_secs_f64();
        match self.redis_pid {
            Some(pid) => format!(
                "runner CPU {server:.1} s, redis CPU {:.1} s, load generator CPU {me:.1} s",
                (cpu_time(pid) - self.redis).as_secs_f64()
            ),
            None => format!("runner CPU {server:.1} s, load generator CPU {me:.1} s"),
        }
    }
}

/// Runs the state benchmarks for each backend and prints the figures.
///
/// # Errors
/// The runner cannot start, Redis is unreachable, or a request fails.
pub async fn run(opts: Options) -> Result<()> {
    println!(
        "# comet state benchmark ({} cores), through spin.toml over HTTP",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for name in opts.backends.clone() {
        let backend = match name.as_str() {
            "kv" => Backend::Kv,
            "redis" => Backend::Redis,
            other => bail!("unknown backend {other:?}: use kv or redis"),
        };
        run_backend(&opts, backend, &name).await?;
    }
    Ok(())
}

async fn run_backend(opts: &Options, backend: Backend, name: &str) -> Result<()> {
    let state = tempfile::tempdir()?;
    let mut env = vec![("SPIN_VARIABLE_PUBLISH_KEY", KEY)];
    let redis_pid = if backend == Backend::Redis {
        env.push(("SPIN_VARIABLE_BACKEND", "redis"));
        env.push(("SPIN_VARIABLE_REDIS_URL", opts.redis_url.as_str()));
        Some(redis_pid(&opts.redis_url)?)
    } else {
        None
    };
    let runner = Runner::start(&workspace_root().join("spin.toml"), state.path(), &[], &env)?;
    let addr = addr_of(&runner.base)?;
    let prefix = format!("bench-{}-{name}", std::process::id());
    let b = Bench {
        opts,
        backend,
        addr,
        admin: runner.admin.clone(),
        prefix: prefix.clone(),
        redis_url: opts.redis_url.clone(),
        pid: runner.pid(),
        redis_pid,
    };
    println!(
        "\n## backend {name} (runner pid {}{})",
        runner.pid(),
        redis_pid.map_or(String::new(), |p| format!(", redis-server pid {p}"))
    );
    // Warm up: instantiate both components and fault in the code paths.
    let mut c = Conn::open(addr).await?;
    for i in 0..50 {
        publish_one(&mut c, &format!("{prefix}-warm"), &json!({"w": i})).await?;
        c.get(&format!(
            "/v1/poll?channel={prefix}-warm&from=start&timeout=0"
        ))
        .await?;
    }
    drop(c);

    let on = |phase: &str| opts.phases.iter().any(|p| p == phase);
    let result = async {
        if on("single") {
            b.publish_single().await?;
        }
        if on("batch") {
            b.publish_batched().await?;
        }
        if on("read") {
            b.reads().await?;
        }
        if on("wake") {
            b.wake_latency().await?;
        }
        if on("idle") {
            b.idle_cost().await?;
        }
        anyhow::Ok(())
    }
    .await;
    drop(runner);
    if backend == Backend::Redis {
        cleanup_redis(&opts.redis_url, &prefix);
    }
    result
}

struct Bench<'a> {
    opts: &'a Options,
    backend: Backend,
    addr: SocketAddr,
    admin: String,
    prefix: String,
    redis_url: String,
    pid: u32,
    redis_pid: Option<u32>,
}

/// A small payload, like a chat message.
fn small_data(n: u64) -> Value {
    json!({"n": n, "text": "hello from the comet benchmark, a short chat-sized message"})
}

async fn publish_one(c: &mut Conn, channel: &str, data: &Value) -> Result<Value> {
    let body = json!({"channel": channel, "data": data}).to_string();
    let (status, body) = c.post_json("/v1/publish", KEY, body).await?;
    ensure!(
        status == 200,
        "publish: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

impl Bench<'_> {
    fn mark(&self) -> CpuMark {
        CpuMark::now(self.pid, self.redis_pid)
    }

    /// Runs `connections` loops of `op` for `seconds`; returns (operations, latencies, errors).
    async fn for_a_while<F, Fut>(
        &self,
        connections: usize,
        op: F,
    ) -> Result<(u64, Vec<Duration>, u64)>
    where
        F: Fn(usize, u64, Conn) -> Fut + Send + Sync + Clone + 'static,
        Fut: std::future::Future<Output = Result<(bool, Conn)>> + Send,
    {
        let deadline = Instant::now() + Duration::from_secs(self.opts.seconds);
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for k in 0..connections {
            let op = op.clone();
            let done = done.clone();
            let addr = self.addr;
            tasks.push(tokio::spawn(async move {
                let mut c = Conn::open(addr).await?;
                let (mut lat, mut errors, mut n) = (Vec::new(), 0u64, 0u64);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let (ok, back) = op(k, n, c).await?;
                    c = back;
                    n += 1;
                    if ok {
                        lat.push(t.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors += 1;
                    }
                }
                anyhow::Ok((lat, errors))
            }));
        }
        let (mut lat, mut errors) = (Vec::new(), 0);
        for t in tasks {
            let (l, e) = t.await??;
            lat.extend(l);
            errors += e;
        }
        lat.sort();
        Ok((done.load(Ordering::Relaxed), lat, errors))
    }

    async fn publish_single(&self) -> Result<()> {
        let conns = self.opts.connections;
        let prefix = self.prefix.clone();
        let mark = self.mark();
        let (n, lat, errors) = self
            .for_a_while(conns, move |k, i, mut c| {
                let channel = format!("{prefix}-single{}", k % 8);
                async move {
                    let body = json!({"channel": channel, "data": small_data(i)}).to_string();
                    let (status, _) = c.post_json("/v1/publish", KEY, body).await?;
                    Ok((status == 200, c))
                }
            })
            .await?;
        let secs = self.opts.seconds as f64;
        println!(
            "publish single, {conns} connections → 8 channels, {secs:.0} s: {:.0} msg/s, p50 {:.2} ms, p99 {:.2} ms, {errors} errors ({})",
            n as f64 / secs,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            mark.since()
        );
        Ok(())
    }

    async fn publish_batched(&self) -> Result<()> {
        let conns = self.opts.batch_connections;
        let size = self.opts.batch;
        let prefix = self.prefix.clone();
        let mark = self.mark();
        let (n, lat, errors) = self
            .for_a_while(conns, move |k, i, mut c| {
                let channel = format!("{prefix}-batch{k}");
                async move {
                    let batch: Vec<Value> = (0..size as u64)
                        .map(|j| json!({"channel": channel, "data": small_data(i * 1000 + j)}))
                        .collect();
                    let body = Value::Array(batch).to_string();
                    let (status, _) = c.post_json("/v1/publish", KEY, body).await?;
                    Ok((status == 200, c))
                }
            })
            .await?;
        let secs = self.opts.seconds as f64;
        println!(
            "publish batched ×{size}, {conns} connections (one channel each), {secs:.0} s: {:.0} msg/s ({:.0} requests/s), request p50 {:.2} ms, p99 {:.2} ms, {errors} errors ({})",
            (n * size as u64) as f64 / secs,
            n as f64 / secs,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            mark.since()
        );
        Ok(())
    }

    async fn reads(&self) -> Result<()> {
        let channel = format!("{}-read", self.prefix);
        let k = self.opts.read_messages.max(1);
        // 200 retained messages; readers ask for the last `k`.
        let mut c = Conn::open(self.addr).await?;
        for round in 0..2u64 {
            let batch: Vec<Value> = (0..100u64)
                .map(|j| json!({"channel": channel, "data": small_data(round * 100 + j)}))
                .collect();
            let (status, body) = c
                .post_json("/v1/publish", KEY, Value::Array(batch).to_string())
                .await?;
            ensure!(status == 200, "publish: {status} {body:?}");
        }
        let head = 200u64;
        let since = head - k as u64;
        let (status, body) = c
            .get(&format!(
                "/v1/history/{channel}?since={}&limit={k}",
                since - k as u64
            ))
            .await?;
        ensure!(status == 200, "history: {status} {body:?}");
        let v: Value = serde_json::from_slice(&body)?;
        let cursor = v["cursor"].as_str().context("history cursor")?.to_owned();
        let (status, body) = c
            .get(&format!(
                "/v1/poll?channel={channel}&cursor={cursor}&timeout=0"
            ))
            .await?;
        let v: Value = serde_json::from_slice(&body)?;
        ensure!(
            status == 200 && v["messages"].as_array().map(Vec::len) == Some(k),
            "poll from cursor returned {status} {v}"
        );
        drop(c);

        let conns = self.opts.connections;
        let secs = self.opts.seconds as f64;
        let poll_path = Arc::new(format!(
            "/v1/poll?channel={channel}&cursor={cursor}&timeout=0"
        ));
        let mark = self.mark();
        let (n, lat, errors) = self
            .for_a_while(conns, move |_, _, mut c| {
                let path = poll_path.clone();
                async move {
                    let (status, body) = c.get(&path).await?;
                    Ok((status == 200 && body.len() > 100, c))
                }
            })
            .await?;
        println!(
            "read: poll from a cursor {k} behind the head, {conns} connections, {secs:.0} s: {:.0} reads/s ({:.0} msg/s), p50 {:.2} ms, p99 {:.2} ms, {errors} errors ({})",
            n as f64 / secs,
            (n * k as u64) as f64 / secs,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            mark.since()
        );
        let history_path = Arc::new(format!("/v1/history/{channel}?since={since}&limit={k}"));
        let mark = self.mark();
        let (n, lat, errors) = self
            .for_a_while(conns, move |_, _, mut c| {
                let path = history_path.clone();
                async move {
                    let (status, body) = c.get(&path).await?;
                    Ok((status == 200 && body.len() > 100, c))
                }
            })
            .await?;
        println!(
            "read: history since={since} limit={k}, {conns} connections, {secs:.0} s: {:.0} reads/s ({:.0} msg/s), p50 {:.2} ms, p99 {:.2} ms, {errors} errors ({})",
            n as f64 / secs,
            (n * k as u64) as f64 / secs,
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            mark.since()
        );
        Ok(())
    }

    async fn metric(&self, name: &str) -> Result<f64> {
        admin_metric(&self.admin, name).await
    }

    /// Waits until at least `n` requests are inside components.
    async fn await_in_flight(&self, at_least: f64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.metric("comet_requests_in_flight").await?;
            if now >= at_least {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("only {now} of {at_least} requests in flight after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until at most `n` requests are inside components (best effort).
    async fn await_drained(&self, at_most: f64, timeout: Duration) -> Result<f64> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = self.metric("comet_requests_in_flight").await?;
            if now <= at_most || Instant::now() > deadline {
                return Ok(now);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wake_latency(&self) -> Result<()> {
        let channel = format!("{}-wake", self.prefix);
        let k = self.opts.subscribers;
        let wakes = self.opts.wakes as u64;
        let base = Instant::now();
        // Each subscriber first takes a "from now" cursor, then long-polls from it.
        let mut tasks = Vec::new();
        for _ in 0..k {
            let addr = self.addr;
            let channel = channel.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = Conn::open(addr).await?;
                let (status, body) = c
                    .get(&format!("/v1/poll?channel={channel}&timeout=0"))
                    .await?;
                ensure!(status == 200, "poll: {status}");
                let v: Value = serde_json::from_slice(&body)?;
                let mut cursor = v["cursor"].as_str().context("cursor")?.to_owned();
                let mut lat = Vec::new();
                let mut last = None;
                while last.is_none_or(|n| n + 1 < wakes) {
                    let (status, body) = c
                        .get(&format!(
                            "/v1/poll?channel={channel}&cursor={cursor}&timeout=30"
                        ))
                        .await?;
                    let received = base.elapsed();
                    ensure!(status == 200, "poll: {status} {body:?}");
                    let v: Value = serde_json::from_slice(&body)?;
                    for m in v["messages"].as_array().context("messages")? {
                        let sent = Duration::from_micros(m["data"]["t"].as_u64().context("t")?);
                        lat.push(received.saturating_sub(sent));
                        last = m["data"]["n"].as_u64();
                    }
                    if v["messages"].as_array().is_some_and(Vec::is_empty)
                        && base.elapsed() > Duration::from_secs(120)
                    {
                        bail!("no wake-up within 120 s");
                    }
                    cursor = v["cursor"].as_str().context("cursor")?.to_owned();
                }
                anyhow::Ok(lat)
            }));
        }
        self.await_in_flight(k as f64, Duration::from_secs(30))
            .await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mark = self.mark();
        let mut c = Conn::open(self.addr).await?;
        let mut acks = Vec::new();
        for n in 0..wakes {
            let t = Instant::now();
            let data = json!({"t": base.elapsed().as_micros() as u64, "n": n});
            publish_one(&mut c, &channel, &data).await?;
            acks.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(self.opts.wake_interval_ms)).await;
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await??);
        }
        lat.sort();
        acks.sort();
        println!(
            "publish→wake, {k} subscribers long-polling one channel, {wakes} publishes every {} ms: {} deliveries, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (publish ack p50 {:.1} ms) ({})",
            self.opts.wake_interval_ms,
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
            pct(&acks, 0.5),
            mark.since()
        );
        Ok(())
    }

    /// The store's operation counter: guest KV ops, or Redis commands processed.
    async fn store_ops(&self) -> Result<f64> {
        match self.backend {
            Backend::Kv => self.metric("comet_kv_ops_total").await,
            Backend::Redis => redis_commands(&self.redis_url),
        }
    }

    /// Store ops per second over `secs`.
    async fn ops_rate(&self, secs: u64) -> Result<f64> {
        let (t0, m0) = (Instant::now(), self.store_ops().await?);
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let (t1, m1) = (Instant::now(), self.store_ops().await?);
        Ok((m1 - m0) / (t1 - t0).as_secs_f64())
    }

    async fn idle_cost(&self) -> Result<()> {
        let what = match self.backend {
            Backend::Kv => "comet_kv_ops_total",
            Backend::Redis => "Redis total_commands_processed",
        };
        let left = self.await_drained(0.0, Duration::from_secs(40)).await?;
        ensure!(
            left == 0.0,
            "{left} requests still in flight before the idle run"
        );
        // Held requests that just ended may leave a leader finishing its last tick.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mark = self.mark();
        let baseline = self.ops_rate(self.opts.baseline_seconds).await?;
        println!(
            "idle baseline, no waiters, {} s: {baseline:.1} {what}/s ({})",
            self.opts.baseline_seconds,
            mark.since()
        );
        let w = self.opts.idle;
        let hold = (self.opts.idle_seconds + 25).min(60);
        for &channels in &self.opts.idle_channels {
            let channels = channels.clamp(1, w);
            let mut tasks = Vec::new();
            let created0 = self.metric("comet_instances_created_total").await?;
            let started = Instant::now();
            for i in 0..w {
                let addr = self.addr;
                let path = format!(
                    "/v1/poll?channel={}-idle{channels}-{}&timeout={hold}",
                    self.prefix,
                    i % channels
                );
                tasks.push(tokio::spawn(async move {
                    let mut c = Conn::open(addr).await?;
                    c.get(&path).await
                }));
            }
            self.await_in_flight(w as f64, Duration::from_secs(30))
                .await?;
            let setup = started.elapsed();
            tokio::time::sleep(Duration::from_secs(1)).await;
            let instances = self.metric("comet_instances").await?;
            let created = self.metric("comet_instances_created_total").await? - created0;
            let mark = self.mark();
            let rate = self.ops_rate(self.opts.idle_seconds).await?;
            let cpu = mark.since();
            let held = self.metric("comet_requests_in_flight").await?;
            for t in &tasks {
                t.abort();
            }
            let net = rate - baseline;
            println!(
                "idle: {w} long-polls on {channels} channel(s) (held {held}, set up in {:.1} s), {} s: {rate:.1} {what}/s, minus baseline {net:.1}/s = {:.4} per idle waiter per s, {:.1} per instance per s ({instances} live instances, {created} created while the waiters arrived) ({cpu})",
                setup.as_secs_f64(),
                self.opts.idle_seconds,
                net / w as f64,
                net / instances.max(1.0),
            );
            let left = self
                .await_drained(0.0, Duration::from_secs(hold + 5))
                .await?;
            if left > 0.0 {
                println!("  ({left} requests still in flight after closing the connections)");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(())
    }
}

/// Runs `redis-cli -u url args…`, returning stdout.
fn redis_cli(url: &str, args: &[&str]) -> Result<String> {
    let out = Command::new("redis-cli")
        .arg("-u")
        .arg(url)
        .args(args)
        .output()
        .context("running redis-cli (is it installed?)")?;
    ensure!(
        out.status.success(),
        "redis-cli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn info_field(text: &str, field: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

fn redis_pid(url: &str) -> Result<u32> {
    let info = redis_cli(url, &["INFO", "server"])?;
    info_field(&info, "process_id")
        .and_then(|v| v.parse().ok())
        .context("no process_id in INFO server: is Redis running?")
}

/// Redis's server-wide command counter (`INFO stats`), for store operations per figure.
///
/// # Errors
/// `redis-cli` fails or the field is missing.
pub fn redis_commands(url: &str) -> Result<f64> {
    let info = redis_cli(url, &["INFO", "stats"])?;
    info_field(&info, "total_commands_processed")
        .and_then(|v| v.parse().ok())
        .context("no total_commands_processed in INFO stats")
}

/// Deletes the benchmark's channel keys (`comet:{<prefix>…}:…`).
fn cleanup_redis(url: &str, prefix: &str) {
    let Ok(keys) = redis_cli(url, &["--scan", "--pattern", &format!("comet:{{{prefix}*")]) else {
        return;
    };
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    for chunk in keys.chunks(500) {
        let mut args = vec!["DEL"];
        args.extend(chunk);
        let _ = redis_cli(url, &args);
    }
}
