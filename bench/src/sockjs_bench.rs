//! SockJS figures through the real `sockjs` function, per backend: echo round trip over
//! xhr-streaming (`tests/sockjs/spin.toml`), and Jii fan-out — one `/v1/publish` reaching N
//! subscribed sessions (`spin.toml`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::client::{Conn, addr_of};
use crate::proc_stats::self_cpu_time;
use crate::server::{Runner, workspace_root};

/// Options for `comet-bench sockjs`.
#[derive(clap::Args)]
pub struct Options {
    /// Backends to measure (`kv`, `redis`).
    #[arg(long, value_delimiter = ',', default_value = "kv,redis")]
    backends: Vec<String>,
    /// Sessions echoing concurrently.
    #[arg(long, default_value_t = 50)]
    sessions: usize,
    /// Round trips per session.
    #[arg(long, default_value_t = 20)]
    round_trips: usize,
    /// Subscribed sessions for the fan-out run.
    #[arg(long, default_value_t = 500)]
    fanout: usize,
    /// Publishes in the fan-out run.
    #[arg(long, default_value_t = 10)]
    publishes: usize,
}

const KEY: &str = "bench-key";

/// A receiving xhr-streaming response and the bytes read so far.
struct Receiver {
    body: Incoming,
    buf: String,
}

impl Receiver {
    /// Opens `POST {base_path}/xhr_streaming` on its own connection; consumes the prelude.
    async fn open(addr: std::net::SocketAddr, base_path: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = http::Request::post(format!("{base_path}/xhr_streaming"))
            .header(http::header::HOST, addr.to_string())
            .body(Full::new(Bytes::new()))?;
        let resp = sender.send_request(req).await?;
        if resp.status() != 200 {
            bail!("xhr_streaming answered {}", resp.status());
        }
        let mut r = Self {
            body: resp.into_body(),
            buf: String::new(),
        };
        // Prelude (2048 h + \n) and the open frame.
        while r.next_frame().await? != "o" {}
        Ok(r)
    }

    /// The next frame line (`o`, `h`, `a[...]`, `c[...]`; the prelude counts as `h…`).
    async fn next_frame(&mut self) -> Result<String> {
        loop {
            if let Some(i) = self.buf.find('\n') {
                let line: String = self.buf.drain(..=i).collect();
                return Ok(line.trim_end().to_owned());
            }
            let frame = self.body.frame().await.context("stream ended")??;
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// Waits for the next message frame and returns its messages.
    async fn next_messages(&mut self) -> Result<Vec<String>> {
        loop {
            let f = self.next_frame().await?;
            if let Some(json) = f.strip_prefix('a') {
                return Ok(serde_json::from_str(json)?);
            }
            if f.starts_with('c') {
                bail!("session closed: {f}");
            }
        }
    }
}

async fn xhr_send(conn: &mut Conn, base_path: &str, messages: &[String]) -> Result<()> {
    let body = serde_json::to_string(messages)?;
    let (status, text) = conn
        .post_json(&format!("{base_path}/xhr_send"), "", body)
        .await?;
    if status != 204 {
        bail!(
            "xhr_send answered {status}: {}",
            String::from_utf8_lossy(&text)
        );
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

fn env_for(backend: &str) -> Vec<(&'static str, &'static str)> {
    let mut env = vec![
        ("SPIN_VARIABLE_PUBLISH_KEY", KEY),
        ("SPIN_VARIABLE_SOCKJS_MIN_SESSION_ID", "1"),
        ("SPIN_VARIABLE_MAX_STREAM_SECONDS", "600"),
        ("SPIN_VARIABLE_SOCKJS_RESPONSE_LIMIT", "67108864"),
    ];
    if backend == "redis" {
        env.push(("SPIN_VARIABLE_BACKEND", "redis"));
    }
    env
}

/// Runs the SockJS benchmarks and prints a table.
///
/// # Errors
/// The runner cannot start or a request fails.
pub async fn run(opts: Options) -> Result<()> {
    println!(
        "# comet SockJS benchmark ({} cores; load generator in this process, 1 thread)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for backend in &opts.backends {
        let dir = tempfile::tempdir()?;
        let env = env_for(backend);
        let echo_app = workspace_root().join("tests/sockjs/spin.toml");
        let runner = Runner::start(&echo_app, dir.path(), &[], &env)?;
        echo(&runner, backend, &opts).await?;
        drop(runner);
        let app: PathBuf = workspace_root().join("spin.toml");
        let runner = Runner::start(&app, dir.path(), &[], &env)?;
        fanout(&runner, backend, &opts).await?;
    }
    Ok(())
}

/// Echo round trips: each session sends one message at a time and waits for it back on its
/// xhr-streaming receiver.
async fn echo(runner: &Runner, backend: &str, opts: &Options) -> Result<()> {
    let addr = addr_of(&runner.base)?;
    let cpu0 = self_cpu_time();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..opts.sessions {
        let round_trips = opts.round_trips;
        tasks.push(tokio::spawn(async move {
            let path = format!("/echo/000/bench{s:05}{}", std::process::id());
            let mut rx = Receiver::open(addr, &path).await?;
            let mut tx = Conn::open(addr).await?;
            let mut rtts = Vec::with_capacity(round_trips);
            for i in 0..round_trips {
                let msg = format!("{s}:{i}");
                let t0 = Instant::now();
                xhr_send(&mut tx, &path, std::slice::from_ref(&msg)).await?;
                let got = rx.next_messages().await?;
                if got != [msg.clone()] {
                    bail!("session {s}: sent {msg:?}, got {got:?}");
                }
                rtts.push(t0.elapsed());
            }
            Ok::<_, anyhow::Error>(rtts)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let wall = started.elapsed();
    let cpu = self_cpu_time().saturating_sub(cpu0);
    all.sort();
    println!(
        "[{backend}] echo over xhr-streaming: {} sessions × {} round trips: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {:.0} round trips/s (load generator CPU {:.0}%)",
        opts.sessions,
        opts.round_trips,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        percentile(&all, 1.0),
        all.len() as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
    );
    Ok(())
}

/// Fan-out: N sessions subscribe to one channel over xhr-streaming; each publish's time until
/// every session has it.
async fn fanout(runner: &Runner, backend: &str, opts: &Options) -> Result<()> {
    let addr = addr_of(&runner.base)?;
    let channel = format!("bench-fanout-{}", std::process::id());
    let mut receivers = Vec::new();
    let mut sender = Conn::open(addr).await?;
    for s in 0..opts.fanout {
        let path = format!("/comet/000/fan{s:05}{}", std::process::id());
        let rx = Receiver::open(addr, &path).await?;
        xhr_send(&mut sender, &path, &[format!("subscribe {channel}")]).await?;
        receivers.push(rx);
    }
    // Let every receiver pick up its subscription (the wake entry) before publishing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (tx, mut done) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    for mut rx in receivers {
        let tx = tx.clone();
        let want = opts.publishes;
        tokio::spawn(async move {
            let mut seen = 0;
            while seen < want {
                match rx.next_messages().await {
                    Ok(msgs) => {
                        for m in msgs {
                            if m.starts_with("channel ") {
                                seen += 1;
                                let _ = tx.send((seen, Instant::now()));
                            }
                        }
                    }
                    Err(_) => return,
                }
            }
        });
    }
    drop(tx);
    let mut publisher = Conn::open(addr).await?;
    let mut lat_all = Vec::new();
    let mut lat_last = Vec::new();
    let cpu0 = self_cpu_time();
    let started = Instant::now();
    for i in 1..=opts.publishes {
        let t0 = Instant::now();
        let (status, body) = publisher
            .post_json(
                "/v1/publish",
                KEY,
                serde_json::json!({ "channel": channel, "data": i }).to_string(),
            )
            .await?;
        if status != 200 {
            bail!(
                "publish answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let mut got = 0;
        let deadline = t0 + Duration::from_secs(30);
        while got < opts.fanout {
            let Ok(Some((n, at))) = tokio::time::timeout_at(deadline.into(), done.recv()).await
            else {
                bail!(
                    "publish {i}: only {got} of {} sessions got it in 30 s",
                    opts.fanout
                );
            };
            if n == i {
                got += 1;
                lat_all.push(at - t0);
                if got == opts.fanout {
                    lat_last.push(at - t0);
                }
            }
        }
    }
    let wall = started.elapsed();
    let cpu = self_cpu_time().saturating_sub(cpu0);
    lat_all.sort();
    lat_last.sort();
    println!(
        "[{backend}] Jii fan-out: 1 publish → {} SockJS sessions, {} publishes: delivery p50 {:.1} ms, p99 {:.1} ms; all sessions reached: median {:.1} ms, max {:.1} ms; {:.0} deliveries/s (load generator CPU {:.0}%)",
        opts.fanout,
        opts.publishes,
        percentile(&lat_all, 0.5),
        percentile(&lat_all, 0.99),
        percentile(&lat_last, 0.5),
        percentile(&lat_last, 1.0),
        lat_all.len() as f64 / wall.as_secs_f64(),
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0,
    );
    Ok(())
}
