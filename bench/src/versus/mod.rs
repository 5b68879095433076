//! `comet-bench versus`: Comet (runner, embedded store and Redis) against Nchan, one run,
//! same scenarios, same load generator, one table.
//!
//! Every scenario starts its servers fresh (in their own session, `setsid`), waits for an idle
//! machine, and reads memory as the sum of the server processes' proportional set size (PSS),
//! so Nginx's shared memory is not counted once per worker. Subscribers live in `loadgen`
//! worker processes of at most [`crowd::PER_WORKER`] connections each (one process may open at most
//! 20,000 files here); their CPU time and this process's is reported next to every figure.
//! A Comet runner is one process under the same limit, so above [`PER_RUNNER`] held
//! connections a second runner shares the store (the same SQLite file, or Redis), which is how
//! an edge platform scales a function out anyway.

mod crowd;
mod servers;
mod table;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use serde_json::{Value, json};

use crate::client::{Conn, addr_of};
use crate::loadgen::{Transport, unix_micros};
use crate::proc_stats::self_cpu_time;
use crowd::Crowd;
use servers::{Server, await_idle};
use table::{Figure, Row, Table, Target};

/// Held connections per Comet runner process before a second one is started.
pub(super) const PER_RUNNER: usize = 16_000;
pub(super) const KEY: &str = "bench-publish-key";

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
