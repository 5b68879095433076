//! `comet-bench versus`: Comet (runner, embedded store and Redis) against Nchan, one run,
//! same scenarios, same load generator, one table.
//!
//! Every scenario starts its servers fresh (in their own session, `setsid`), waits for an idle
//! machine, and reads memory as the sum of the server processes' proportional set size (PSS),
//! so Nginx's shared memory is not counted once per worker. Subscribers live in `loadgen`
//! worker processes of at most [`PER_WORKER`] connections each (one process may open at most
//! 20,000 files here); their CPU time and this process's is reported next to every figure.
//! A Comet runner is one process under the same limit, so above [`PER_RUNNER`] held
//! connections a second runner shares the store (the same SQLite file, or Redis), which is how
//! an edge platform scales a function out anyway.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::client::{Conn, addr_of, get_once};
use crate::loadgen::{Flavor, Transport, unix_micros};
use crate::nchan::Nginx;
use crate::proc_stats::{cpu_time, self_cpu_time};
use crate::server::{Runner, workspace_root};

/// Subscribers per load-generator process (each holds one socket per subscriber).
const PER_WORKER: usize = 15_000;
/// Held connections per Comet runner process before a second one is started.
const PER_RUNNER: usize = 16_000;
const KEY: &str = "bench-publish-key";

/// What to run.
#[derive(Args, Debug, Clone)]
pub struct Options {
    /// Servers to measure: comet-kv, comet-redis, nchan.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "comet-kv,comet-redis,nchan"
    )]
    targets: Vec<String>,
    /// Scenarios: held, fanout, publish, storm.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "held,fanout,publish,storm"
    )]
    scenarios: Vec<String>,
    /// Crowd sizes for the held-connection scenario.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,30000")]
    held: Vec<usize>,
    /// Crowd sizes for fan-out and latency.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    fanout: Vec<usize>,
    /// Subscribers resuming at once in the reconnect storm.
    #[arg(long, default_value_t = 10_000)]
    storm: usize,
    /// Messages each storm subscriber missed while away.
    #[arg(long, default_value_t = 5)]
    storm_missed: u64,
    /// Spaced publishes per fan-out crowd, for the latency percentiles.
    #[arg(long, default_value_t = 20)]
    samples: u64,
    /// Deliveries per second asked of the steady-rate fan-out (publish rate = this / crowd).
    #[arg(long, default_value_t = 50_000)]
    steady_deliveries: u64,
    /// Seconds of steady publishing and of each publish-throughput run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Where to write the Markdown table too.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The three servers compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Target {
    CometKv,
    CometRedis,
    Nchan,
}

impl Target {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "comet-kv" => Self::CometKv,
            "comet-redis" => Self::CometRedis,
            "nchan" => Self::Nchan,
            other => bail!("unknown target {other:?}: comet-kv, comet-redis or nchan"),
        })
    }
    fn name(self) -> &'static str {
        match self {
            Self::CometKv => "Comet KV",
            Self::CometRedis => "Comet Redis",
            Self::Nchan => "Nchan",
        }
    }
    fn flavor(self) -> Flavor {
        if self == Self::Nchan {
            Flavor::Nchan
        } else {
            Flavor::Comet
        }
    }
}

/// A figure: its value and the load generator's CPU seconds while it was measured.
#[derive(Clone, Copy, Debug)]
struct Figure {
    value: f64,
    loadgen_cpu: f64,
}

/// How a row's Comet/Nchan ratio is read.
#[derive(Clone, Debug)]
struct Row {
    label: String,
    unit: &'static str,
    lower_is_better: bool,
    /// The target for the ratio (≤ when lower is better, ≥ otherwise), if any.
    target: Option<f64>,
    /// Compare against this Nchan row instead of the same label (Nchan has no batch publish).
    nchan_row: Option<String>,
}

impl Row {
    fn new(label: String, unit: &'static str, lower_is_better: bool) -> Self {
        Self {
            label,
            unit,
            lower_is_better,
            target: None,
            nchan_row: None,
        }
    }
    fn target(mut self, ratio: f64) -> Self {
        self.target = Some(ratio);
        self
    }
    fn against(mut self, nchan_row: &str) -> Self {
        self.nchan_row = Some(nchan_row.to_string());
        self
    }
}

/// Figures by row label, then target.
#[derive(Default)]
struct Table {
    rows: Vec<Row>,
    cells: BTreeMap<(String, Target), Figure>,
}

impl Table {
    /// Records a figure.
    fn put(&mut self, row: Row, t: Target, f: Figure) {
        println!(
            "  {:<12} {}: {} {} (load generator CPU {:.1} s)",
            t.name(),
            row.label,
            fmt_num(f.value),
            row.unit,
            f.loadgen_cpu
        );
        self.cells.insert((row.label.clone(), t), f);
        if !self.rows.iter().any(|r| r.label == row.label) {
            self.rows.push(row);
        }
    }

    fn markdown(&self, targets: &[Target]) -> String {
        let mut s = String::from("| figure |");
        for t in targets {
            s.push_str(&format!(" {} |", t.name()));
        }
        let ratios: Vec<Target> = targets
            .iter()
            .copied()
            .filter(|t| *t != Target::Nchan && targets.contains(&Target::Nchan))
            .collect();
        for t in &ratios {
            s.push_str(&format!(" {}/Nchan |", t.name()));
        }
        s.push_str(" target |\n|---|");
        for _ in 0..targets.len() + ratios.len() {
            s.push_str("---:|");
        }
        s.push_str("---|\n");
        for row in &self.rows {
            s.push_str(&format!("| {} ({}) |", row.label, row.unit));
            for t in targets {
                match self.cells.get(&(row.label.clone(), *t)) {
                    Some(f) => s.push_str(&format!(
                        " {} <sub>lg {:.1}s</sub> |",
                        fmt_num(f.value),
                        f.loadgen_cpu
                    )),
                    None => s.push_str(" — |"),
                }
            }
            let nchan_label = row.nchan_row.as_ref().unwrap_or(&row.label);
            for t in &ratios {
                let c = self.cells.get(&(row.label.clone(), *t));
                let n = self.cells.get(&(nchan_label.clone(), Target::Nchan));
                match (c, n) {
                    (Some(c), Some(n)) if n.value > 0.0 => {
                        let r = c.value / n.value;
                        let mark = match row.target {
                            Some(goal) if row.lower_is_better == (r <= goal) => " ✓",
                            Some(_) => " ✗",
                            None => "",
                        };
                        s.push_str(&format!(" {r:.2}{mark} |"));
                    }
                    _ => s.push_str(" — |"),
                }
            }
            match row.target {
                Some(goal) => s.push_str(&format!(
                    " {} {goal}{} |",
                    if row.lower_is_better { "≤" } else { "≥" },
                    row.nchan_row
                        .as_ref()
                        .map_or(String::new(), |r| format!(" × Nchan \"{r}\"")),
                )),
                None => s.push_str(" |"),
            }
            s.push('\n');
        }
        s
    }
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Runs every scenario against every target and prints the table.
///
/// # Errors
/// A server cannot start or a scenario breaks down.
pub async fn run(opts: Options) -> Result<()> {
    let targets: Vec<Target> = opts
        .targets
        .iter()
        .map(|t| Target::parse(t))
        .collect::<Result<_>>()?;
    let date = std::process::Command::new("date")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!(
        "# Comet vs Nchan, {} cores, {date}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut table = Table::default();
    for &t in &targets {
        println!("## {}", t.name());
        for scenario in &opts.scenarios {
            match scenario.as_str() {
                "held" => {
                    for transport in [Transport::Sse, Transport::Poll] {
                        for &n in &opts.held {
                            held(&opts, t, transport, n, &mut table).await?;
                        }
                    }
                }
                "fanout" => {
                    for &n in &opts.fanout {
                        fanout(&opts, t, n, &mut table).await?;
                    }
                }
                "publish" => publish(&opts, t, &mut table).await?,
                "storm" => storm(&opts, t, &mut table).await?,
                other => bail!("unknown scenario {other:?}: held, fanout, publish, storm"),
            }
        }
    }
    let md = table.markdown(&targets);
    println!("\n{md}");
    println!(
        "lg = load-generator CPU seconds while the figure was measured (the server shares the same 2 cores). ✓/✗ = Comet meets/misses the issue's target for that ratio."
    );
    if let Some(path) = &opts.out {
        std::fs::write(path, &md).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A server under test, started fresh for one scenario.
enum Server {
    Comet {
        runners: Vec<Runner>,
        state: tempfile::TempDir,
        env: Vec<(&'static str, String)>,
    },
    Nchan(Nginx),
}

impl Server {
    async fn start(opts: &Options, t: Target) -> Result<Self> {
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
    fn add_runner(&mut self) -> Result<()> {
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

    fn bases(&self) -> Vec<String> {
        match self {
            Self::Comet { runners, .. } => runners.iter().map(|r| r.base.clone()).collect(),
            Self::Nchan(n) => vec![n.base.clone()],
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Self::Comet { runners, .. } => runners.iter().map(Runner::pid).collect(),
            Self::Nchan(n) => n.pids(),
        }
    }

    /// Sum of the server processes' PSS, bytes.
    fn memory(&self) -> u64 {
        self.pids().into_iter().map(pss_bytes).sum()
    }

    fn server_cpu(&self) -> f64 {
        self.pids()
            .into_iter()
            .map(|p| cpu_time(p).as_secs_f64())
            .sum()
    }

    /// Store operations so far: Comet's own KV counter, or Redis's command count; Nchan keeps
    /// messages in its own shared memory, so it has none.
    async fn store_ops(&self, opts: &Options) -> Result<Option<f64>> {
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
                    sum += metric(&r.admin, "comet_kv_ops_total").await?;
                }
                Ok(Some(sum))
            }
            Self::Nchan(_) => Ok(None),
        }
    }

    /// One publish and one read, so lazily built pools and caches exist before the baseline.
    async fn warm_up(&self) -> Result<()> {
        for base in self.bases() {
            let mut c = Conn::open(addr_of(&base)?).await?;
            self.publish(&mut c, "warm-up", 0).await?;
        }
        Ok(())
    }

    /// Publishes one stamped message (`"bt"` = now in µs since the epoch).
    async fn publish(&self, c: &mut Conn, channel: &str, n: u64) -> Result<()> {
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

    fn stop(self) {
        drop(self);
    }
}

/// `PSS` of a process from `/proc/<pid>/smaps_rollup`, bytes (0 if unreadable).
fn pss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

async fn metric(admin: &str, name: &str) -> Result<f64> {
    let (status, body) = get_once(admin, "/metrics").await?;
    ensure!(status == 200, "admin /metrics: {status}");
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("{name} not in /metrics"))
}

fn redis_commands(url: &str) -> Result<f64> {
    let hostport = url.trim_start_matches("redis://");
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "6379"));
    let out = std::process::Command::new("redis-cli")
        .args([
            "-h",
            host,
            "-p",
            port.trim_end_matches('/'),
            "info",
            "stats",
        ])
        .output()
        .context("redis-cli")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .and_then(|v| v.trim().parse().ok())
        .context("total_commands_processed not in INFO")
}

/// Waits (up to 30 s) until the machine's CPUs are at least 90 % idle over half a second.
async fn await_idle() {
    fn sample() -> (u64, u64) {
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

/// One `loadgen` process.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    async fn ask(&mut self, line: &str) -> Result<Value> {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let answer = self
            .stdout
            .next_line()
            .await?
            .context("load generator exited")?;
        Ok(serde_json::from_str(&answer)?)
    }
    fn cpu(&self) -> f64 {
        self.child.id().map_or(0.0, |p| cpu_time(p).as_secs_f64())
    }
}

/// Aggregated answer of a crowd's `report`.
#[derive(Default, Debug)]
struct Report {
    ready: u64,
    received: u64,
    errors: u64,
    last_error: String,
    latencies_us: Vec<u32>,
    resume_ms: Vec<u32>,
}

/// Subscribers spread over workers.
struct Crowd {
    workers: Vec<Worker>,
    size: usize,
    started_cpu: f64,
}

impl Crowd {
    async fn spawn(
        bases: &[String],
        flavor: Flavor,
        transport: Transport,
        channel: &str,
        size: usize,
    ) -> Result<Self> {
        let exe = std::env::current_exe()?;
        let mut workers = Vec::new();
        let mut left = size;
        let mut w = 0u8;
        while left > 0 {
            let n = left.min(PER_WORKER);
            left -= n;
            let mut child = tokio::process::Command::new(&exe)
                .arg("loadgen")
                .arg("--base")
                .arg(bases.join(","))
                .arg("--flavor")
                .arg(if flavor == Flavor::Comet {
                    "comet"
                } else {
                    "nchan"
                })
                .arg("--transport")
                .arg(if transport == Transport::Sse {
                    "sse"
                } else {
                    "poll"
                })
                .arg("--channel")
                .arg(channel)
                .arg("--count")
                .arg(n.to_string())
                .arg("--source")
                .arg(format!(
                    "127.{}.{}.1",
                    next_source_block(),
                    10 + u16::from(w)
                ))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .context("spawning loadgen")?;
            let stdin = child.stdin.take().context("stdin")?;
            let stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
            workers.push(Worker {
                child,
                stdin,
                stdout,
            });
            w += 1;
        }
        Ok(Self {
            workers,
            size,
            started_cpu: self_cpu_time().as_secs_f64(),
        })
    }

    async fn report(&mut self) -> Result<Report> {
        let mut r = Report::default();
        for w in &mut self.workers {
            let v = w.ask("report").await?;
            r.ready += v["ready"].as_u64().unwrap_or(0);
            r.received += v["received"].as_u64().unwrap_or(0);
            r.errors += v["errors"].as_u64().unwrap_or(0);
            if let Some(e) = v["last_error"].as_str().filter(|e| !e.is_empty()) {
                r.last_error = e.to_string();
            }
            for (field, into) in [
                ("latencies_us", &mut r.latencies_us),
                ("resume_ms", &mut r.resume_ms),
            ] {
                if let Some(a) = v[field].as_array() {
                    into.extend(
                        a.iter()
                            .filter_map(Value::as_u64)
                            .map(|x| u32::try_from(x).unwrap_or(u32::MAX)),
                    );
                }
            }
        }
        Ok(r)
    }

    async fn tell(&mut self, line: &str) -> Result<()> {
        for w in &mut self.workers {
            w.ask(line).await?;
        }
        Ok(())
    }

    /// Waits until every subscriber is connected (SSE: headers in; poll: request written).
    async fn await_ready(&mut self, timeout: Duration) -> Result<Report> {
        let deadline = Instant::now() + timeout;
        let mut all = Report::default();
        loop {
            let r = self.report().await?;
            all.latencies_us.extend(r.latencies_us);
            all.ready = r.ready;
            all.errors = r.errors;
            all.last_error = r.last_error;
            if r.ready as usize >= self.size {
                return Ok(all);
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {} subscribers connected after {timeout:?} ({} errors, last: {})",
                    r.ready,
                    self.size,
                    r.errors,
                    all.last_error
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Collects reports until `received` reaches `total` or nothing new arrives for `stall`.
    async fn await_received(&mut self, total: u64, stall: Duration) -> Result<(Report, Duration)> {
        let started = Instant::now();
        let mut all = Report::default();
        let mut last_progress = Instant::now();
        let mut reached = started.elapsed();
        loop {
            let r = self.report().await?;
            if r.received > all.received {
                last_progress = Instant::now();
                reached = started.elapsed();
            }
            all.received = r.received;
            all.errors = r.errors;
            all.ready = r.ready;
            all.latencies_us.extend(r.latencies_us);
            all.resume_ms.extend(r.resume_ms);
            if all.received >= total || last_progress.elapsed() > stall {
                return Ok((all, reached));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Load-generator CPU seconds (workers + this process) since the crowd started.
    fn cpu(&self) -> f64 {
        self.workers.iter().map(Worker::cpu).sum::<f64>() + self_cpu_time().as_secs_f64()
            - self.started_cpu
    }

    async fn quit(mut self) {
        for w in &mut self.workers {
            let _ = w.stdin.write_all(b"quit\n").await;
        }
        for w in &mut self.workers {
            let _ = tokio::time::timeout(Duration::from_secs(5), w.child.wait()).await;
        }
    }
}

/// A fresh second octet for each crowd's source addresses, so no connection of a later
/// scenario reuses a 4-tuple that an earlier one left in TIME_WAIT.
fn next_source_block() -> u8 {
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    1 + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 250
}

fn pct(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)])
}

fn channel_name(tag: &str) -> String {
    format!("bench-{}-{tag}-{}", std::process::id(), unix_micros())
}

/// Held idle subscribers: how many the server holds and its memory per held connection.
async fn held(
    opts: &Options,
    t: Target,
    transport: Transport,
    n: usize,
    table: &mut Table,
) -> Result<()> {
    let label = if transport == Transport::Sse {
        "SSE"
    } else {
        "long-poll"
    };
    let mut server = Server::start(opts, t).await?;
    if t != Target::Nchan {
        while n > PER_RUNNER * server.bases().len() {
            server.add_runner()?;
            server.warm_up().await?;
        }
    }
    await_idle().await;
    let base_mem = server.memory();
    let channel = channel_name("held");
    let mut crowd = Crowd::spawn(&server.bases(), t.flavor(), transport, &channel, n).await?;
    let connect_started = Instant::now();
    crowd.await_ready(Duration::from_secs(180)).await?;
    let connect_time = connect_started.elapsed();
    // Let the server finish setting up what it accepted before reading its memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    await_idle().await;
    let mem = server.memory();
    // How many are really held: every one of them gets this message.
    let mut c = Conn::open(addr_of(&server.bases()[0])?).await?;
    server.publish(&mut c, &channel, 1).await?;
    let (r, _) = crowd
        .await_received(n as u64, Duration::from_secs(10))
        .await?;
    let cpu = crowd.cpu();
    let per_conn = mem.saturating_sub(base_mem) as f64 / n as f64 / 1024.0;
    println!(
        "  {} held {label} {n}: connected in {:.1} s, server {:.1} → {:.1} MiB over {} process(es), {} of {n} got the check message, {} errors",
        t.name(),
        connect_time.as_secs_f64(),
        base_mem as f64 / 1048576.0,
        mem as f64 / 1048576.0,
        server.pids().len(),
        r.received,
        r.errors
    );
    table.put(
        Row::new(
            format!("held {label} {}k: memory per connection", n / 1000),
            "KiB",
            true,
        )
        .target(1.0),
        t,
        Figure {
            value: per_conn,
            loadgen_cpu: cpu,
        },
    );
    table.put(
        Row::new(
            format!("held {label} {}k: subscribers holding", n / 1000),
            "of n",
            false,
        ),
        t,
        Figure {
            value: r.received as f64,
            loadgen_cpu: cpu,
        },
    );
    crowd.quit().await;
    server.stop();
    Ok(())
}

/// Fan-out of publishes to one channel with `n` SSE subscribers.
async fn fanout(opts: &Options, t: Target, n: usize, table: &mut Table) -> Result<()> {
    let server = Server::start(opts, t).await?;
    let channel = channel_name("fanout");
    let mut crowd = Crowd::spawn(&server.bases(), t.flavor(), Transport::Sse, &channel, n).await?;
    crowd.await_ready(Duration::from_secs(120)).await?;
    await_idle().await;
    let mut c = Conn::open(addr_of(&server.bases()[0])?).await?;
    let k = format!("{}k", n / 1000);

    // One publish: time until every subscriber has it.
    let cpu0 = crowd.cpu();
    server.publish(&mut c, &channel, 0).await?;
    let (r, _) = crowd
        .await_received(n as u64, Duration::from_secs(10))
        .await?;
    let all_in = r.latencies_us.iter().max().copied().unwrap_or(0);
    ensure!(
        r.received >= n as u64,
        "{}: only {} of {n} got the publish",
        t.name(),
        r.received
    );
    table.put(
        Row::new(format!("fan-out 1 publish → {k}: all received"), "ms", true),
        t,
        Figure {
            value: f64::from(all_in) / 1000.0,
            loadgen_cpu: crowd.cpu() - cpu0,
        },
    );

    // Spaced publishes: publish→receive latency percentiles.
    let cpu0 = crowd.cpu();
    let mut expected = n as u64;
    for i in 0..opts.samples {
        server.publish(&mut c, &channel, 1 + i).await?;
        expected += n as u64;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (mut r, _) = crowd
        .await_received(expected, Duration::from_secs(10))
        .await?;
    r.latencies_us.sort_unstable();
    let cpu = crowd.cpu() - cpu0;
    let lost = expected.saturating_sub(r.received);
    println!(
        "  {} latency {k}: {} deliveries, {lost} missing, server CPU {:.1} s",
        t.name(),
        r.latencies_us.len(),
        server.server_cpu()
    );
    for (q, name) in [(0.5, "p50"), (0.99, "p99"), (1.0, "max")] {
        let row = Row::new(format!("latency {k} subscribers {name}"), "ms", true);
        table.put(
            if name == "max" { row } else { row.target(1.0) },
            t,
            Figure {
                value: pct(&r.latencies_us, q) / 1000.0,
                loadgen_cpu: cpu,
            },
        );
    }

    // Steady rate: deliveries per second the server sustains.
    let rate = (opts.steady_deliveries / n as u64).max(1);
    let cpu0 = crowd.cpu();
    let count = rate * opts.seconds;
    let started = Instant::now();
    for i in 0..count {
        let due = started + Duration::from_secs_f64(i as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
        server.publish(&mut c, &channel, 1000 + i).await?;
    }
    let target = expected + count * n as u64;
    let (r, _) = crowd.await_received(target, Duration::from_secs(5)).await?;
    let took = started.elapsed().saturating_sub(if r.received >= target {
        Duration::ZERO
    } else {
        Duration::from_secs(5)
    });
    let delivered = r.received.saturating_sub(expected);
    println!(
        "  {} steady {k}: {rate} publishes/s for {} s, {delivered} of {} delivered in {:.2} s",
        t.name(),
        opts.seconds,
        count * n as u64,
        took.as_secs_f64()
    );
    table.put(
        Row::new(
            format!("fan-out {k} steady ({rate} pub/s): delivered"),
            "msg/s",
            false,
        ),
        t,
        Figure {
            value: delivered as f64 / took.as_secs_f64().max(0.001),
            loadgen_cpu: crowd.cpu() - cpu0,
        },
    );
    crowd.quit().await;
    server.stop();
    Ok(())
}

/// Publish throughput over HTTP: one message per request, and batches where the server has
/// them (Nchan does not).
async fn publish(opts: &Options, t: Target, table: &mut Table) -> Result<()> {
    let server = Server::start(opts, t).await?;
    await_idle().await;
    let base = server.bases()[0].clone();
    for (label, conns, batch) in [("single", 16usize, 1usize), ("batch ×100", 4, 100)] {
        if batch > 1 && t == Target::Nchan {
            continue;
        }
        let cpu0 = self_cpu_time().as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(opts.seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for k in 0..conns {
            let channel = channel_name(&format!("pub{k}"));
            let mut c = Conn::open(addr_of(&base)?).await?;
            let nchan = t == Target::Nchan;
            tasks.push(tokio::spawn(async move {
                let mut sent = 0u64;
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let (path, bearer, body) = if nchan {
                        (
                            format!("/pub?id={channel}"),
                            "",
                            json!({"bt": unix_micros(), "n": sent}).to_string(),
                        )
                    } else {
                        let items: Vec<Value> = (0..batch)
                            .map(|j| json!({"channel": channel, "data": {"bt": unix_micros(), "n": sent + j as u64}}))
                            .collect();
                        let body = if batch == 1 {
                            items.into_iter().next().unwrap_or_default()
                        } else {
                            Value::Array(items)
                        };
                        ("/v1/publish".to_string(), KEY, body.to_string())
                    };
                    match c.post_json(&path, bearer, body).await {
                        Ok((s, _)) if (200..300).contains(&s) => sent += batch as u64,
                        _ => errors += 1,
                    }
                }
                (sent, errors)
            }));
        }
        let mut sent = 0;
        let mut errors = 0;
        for task in tasks {
            let (s, e) = task.await?;
            sent += s;
            errors += e;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "  {} publish {label}: {sent} messages in {secs:.1} s over {conns} connections, {errors} errors",
            t.name()
        );
        let row = Row::new(format!("publish over HTTP, {label}"), "msg/s", false);
        table.put(
            if batch > 1 {
                row.target(1.0).against("publish over HTTP, single")
            } else {
                row.target(0.5)
            },
            t,
            Figure {
                value: sent as f64 / secs,
                loadgen_cpu: self_cpu_time().as_secs_f64() - cpu0,
            },
        );
    }
    server.stop();
    Ok(())
}

/// Reconnect storm: `storm` SSE subscribers drop, miss messages, and all resume at once from
/// their last event ids.
async fn storm(opts: &Options, t: Target, table: &mut Table) -> Result<()> {
    let server = Server::start(opts, t).await?;
    let n = opts.storm;
    let channel = channel_name("storm");
    let mut crowd = Crowd::spawn(&server.bases(), t.flavor(), Transport::Sse, &channel, n).await?;
    crowd.await_ready(Duration::from_secs(120)).await?;
    let mut c = Conn::open(addr_of(&server.bases()[0])?).await?;
    // Everyone has a position.
    server.publish(&mut c, &channel, 0).await?;
    crowd
        .await_received(n as u64, Duration::from_secs(10))
        .await?;
    crowd.tell("drop").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..opts.storm_missed {
        server.publish(&mut c, &channel, 1 + i).await?;
    }
    await_idle().await;
    let ops0 = server.store_ops(opts).await?;
    let cpu0 = crowd.cpu();
    crowd.tell(&format!("resume {}", opts.storm_missed)).await?;
    let mut resumed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while resumed.len() < n && Instant::now() < deadline {
        let r = crowd.report().await?;
        resumed.extend(r.resume_ms);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ops1 = server.store_ops(opts).await?;
    let cpu = crowd.cpu() - cpu0;
    resumed.sort_unstable();
    println!(
        "  {} storm: {} of {n} resumed with all {} missed messages; p50 {:.0} ms, max {:.0} ms",
        t.name(),
        resumed.len(),
        opts.storm_missed,
        pct(&resumed, 0.5),
        pct(&resumed, 1.0)
    );
    ensure!(
        resumed.len() == n,
        "{}: only {} of {n} resumed",
        t.name(),
        resumed.len()
    );
    table.put(
        Row::new(
            format!("reconnect storm {}k: all resumed", n / 1000),
            "ms",
            true,
        ),
        t,
        Figure {
            value: pct(&resumed, 1.0),
            loadgen_cpu: cpu,
        },
    );
    if let (Some(a), Some(b)) = (ops0, ops1) {
        table.put(
            Row::new(
                format!("reconnect storm {}k: store ops per resume", n / 1000),
                "ops",
                true,
            ),
            t,
            Figure {
                value: (b - a) / n as f64,
                loadgen_cpu: cpu,
            },
        );
    }
    crowd.quit().await;
    server.stop();
    Ok(())
}
