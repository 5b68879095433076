//! A crowd of subscribers: `loadgen` worker processes of at most [`PER_WORKER`] connections
//! each, steered over stdin/stdout.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::loadgen::{Flavor, Transport};
use crate::proc_stats::{cpu_time, self_cpu_time};

/// Subscribers per load-generator process (each holds one socket per subscriber; one process
/// may open at most 20,000 files here).
pub(super) const PER_WORKER: usize = 15_000;

/// One `loadgen` process.
pub(super) struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    pub(super) async fn ask(&mut self, line: &str) -> Result<Value> {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        self.stdin.flush().await?;
        let answer = self
            .stdout
            .next_line()
            .await?
            .context("load generator exited")?;
        Ok(serde_json::from_str(&answer)?)
    }
    pub(super) fn cpu(&self) -> f64 {
        self.child.id().map_or(0.0, |p| cpu_time(p).as_secs_f64())
    }
}

/// Aggregated answer of a crowd's `report`.
#[derive(Default, Debug)]
pub(super) struct Report {
    pub(super) ready: u64,
    pub(super) received: u64,
    pub(super) errors: u64,
    pub(super) last_error: String,
    pub(super) latencies_us: Vec<u32>,
    pub(super) resume_ms: Vec<u32>,
}

/// Subscribers spread over workers.
pub(super) struct Crowd {
    workers: Vec<Worker>,
    size: usize,
    started_cpu: f64,
}

impl Crowd {
    pub(super) async fn spawn(
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

    pub(super) async fn report(&mut self) -> Result<Report> {
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

    pub(super) async fn tell(&mut self, line: &str) -> Result<()> {
        for w in &mut self.workers {
            w.ask(line).await?;
        }
        Ok(())
    }

    /// Waits until every subscriber is connected (SSE: headers in; poll: request written).
    pub(super) async fn await_ready(&mut self, timeout: Duration) -> Result<Report> {
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
    pub(super) async fn await_received(
        &mut self,
        total: u64,
        stall: Duration,
    ) -> Result<(Report, Duration)> {
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
    pub(super) fn cpu(&self) -> f64 {
        self.workers.iter().map(Worker::cpu).sum::<f64>() + self_cpu_time().as_secs_f64()
            - self.started_cpu
    }

    pub(super) async fn quit(mut self) {
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
pub(super) fn next_source_block() -> u8 {
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    1 + NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 250
}
