//! `comet-bench loadgen`: one load-generator process holding many subscribers.
//!
//! A process may open at most 20,000 files here, so `versus` spreads large crowds over several
//! of these workers and steers them over stdin/stdout, one JSON line per command and answer:
//!
//! - `report`: counters and the latencies seen since the last report;
//! - `drop`: close every connection, keeping each subscriber's position;
//! - `resume <n>`: reconnect all from their positions, timing until each has `n` messages;
//! - `quit`.
//!
//! Subscribers speak either server's dialect (Comet `/v1` or Nchan) over SSE or long-poll.
//! Latency is measured against the publish time the publisher wrote into each message as
//! `"bt":<unix µs>`, so it needs no clock shared between processes beyond the system's.

use std::cell::{Cell, RefCell};
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::{Args, ValueEnum};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpSocket;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, LocalSet};

/// Which server's URL and resume dialect to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Flavor {
    /// Comet: `/v1/sse?channel=`, `/v1/poll?channel=&cursor=`.
    Comet,
    /// Nchan: `/sub/sse?id=`, `/sub/poll?id=` with `If-Modified-Since`/`If-None-Match`.
    Nchan,
}

/// How subscribers wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// One long-lived Server-Sent Events response each.
    Sse,
    /// A held request each, re-issued after every answer.
    Poll,
}

/// One worker's crowd.
#[derive(Args, Clone, Debug)]
pub struct Options {
    /// Server base URLs (`http://ip:port`), comma-separated; subscribers are dealt round-robin.
    #[arg(long, value_delimiter = ',')]
    pub base: Vec<String>,
    #[arg(long, value_enum)]
    pub flavor: Flavor,
    #[arg(long, value_enum)]
    pub transport: Transport,
    /// The channel every subscriber listens on.
    #[arg(long)]
    pub channel: String,
    /// Subscribers in this process.
    #[arg(long)]
    pub count: usize,
    /// First source address; each next `per_source` subscribers use the next address. Every
    /// subscriber binds its own fixed source port (10000 + its index within the address),
    /// below the kernel's ephemeral range: letting the kernel search for a free port costs
    /// milliseconds per connection once tens of thousands are open, and runs out near 28k.
    #[arg(long, default_value = "127.0.0.2")]
    pub source: Ipv4Addr,
    #[arg(long, default_value_t = 10_000)]
    pub per_source: usize,
    /// Connection attempts in flight at once (keeps the server's accept backlog from
    /// overflowing, which would cost a 1 s SYN retry).
    #[arg(long, default_value_t = 200)]
    pub connect_parallelism: usize,
}

/// What one subscriber remembers across reconnects.
#[derive(Default)]
struct Sub {
    /// SSE `id:` / Comet cursor / Nchan `Last-Modified` + `Etag`.
    position: RefCell<Option<(String, String)>>,
    /// Response headers arrived (SSE) or request written (poll).
    ready: Cell<bool>,
    /// Messages since the last `resume`.
    since_resume: Cell<u64>,
}

/// Counters shared by a worker's subscribers.
#[derive(Default)]
struct Totals {
    received: Cell<u64>,
    errors: Cell<u64>,
    latencies_us: RefCell<Vec<u32>>,
    /// Time from `resume` until each subscriber had the messages it missed.
    resume_ms: RefCell<Vec<u32>>,
    resume_started: Cell<Option<Instant>>,
    resume_expect: Cell<u64>,
    last_error: RefCell<String>,
}

/// `comet-bench loadgen`: runs until `quit` or stdin closes.
///
/// # Errors
/// Bad options or stdout gone.
pub fn run(opts: Options) -> Result<()> {
    if opts.base.is_empty() {
        bail!("--base is required");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    LocalSet::new().block_on(&rt, drive(opts))
}

async fn drive(opts: Options) -> Result<()> {
    let addrs: Vec<SocketAddr> = opts
        .base
        .iter()
        .map(|b| crate::client::addr_of(b))
        .collect::<Result<_>>()?;
    let opts = Rc::new(opts);
    let totals = Rc::new(Totals::default());
    let subs: Vec<Rc<Sub>> = (0..opts.count).map(|_| Rc::new(Sub::default())).collect();
    let gate = Arc::new(Semaphore::new(opts.connect_parallelism.max(1)));
    let mut tasks = spawn_all(&opts, &addrs, &subs, &totals, &gate);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("report") => {
                let ready = subs.iter().filter(|s| s.ready.get()).count();
                let lat = std::mem::take(&mut *totals.latencies_us.borrow_mut());
                let resumed = std::mem::take(&mut *totals.resume_ms.borrow_mut());
                let answer = json!({
                    "ready": ready,
                    "received": totals.received.get(),
                    "errors": totals.errors.get(),
                    "last_error": totals.last_error.borrow().clone(),
                    "latencies_us": lat,
                    "resume_ms": resumed,
                });
                println!("{answer}");
            }
            Some("drop") => {
                for t in tasks.drain(..) {
                    t.abort();
                }
                for s in &subs {
                    s.ready.set(false);
                }
                tokio::task::yield_now().await;
                println!("{}", json!({"dropped": subs.len()}));
            }
            Some("resume") => {
                let expect = words.next().and_then(|w| w.parse().ok()).unwrap_or(1);
                for s in &subs {
                    s.since_resume.set(0);
                }
                totals.resume_expect.set(expect);
                totals.resume_started.set(Some(Instant::now()));
                tasks = spawn_all(&opts, &addrs, &subs, &totals, &gate);
                println!("{}", json!({"resuming": subs.len()}));
            }
            Some("quit") | None => break,
            Some(other) => println!("{}", json!({"error": format!("unknown command {other}")})),
        }
    }
    for t in tasks {
        t.abort();
    }
    Ok(())
}

fn spawn_all(
    opts: &Rc<Options>,
    addrs: &[SocketAddr],
    subs: &[Rc<Sub>],
    totals: &Rc<Totals>,
    gate: &Arc<Semaphore>,
) -> Vec<JoinHandle<()>> {
    subs.iter()
        .enumerate()
        .map(|(i, sub)| {
            let per_source = opts.per_source.clamp(1, 20_000);
            let source_step = u32::try_from(i / per_source).unwrap_or(0);
            let ip = Ipv4Addr::from(u32::from(opts.source).wrapping_add(source_step));
            let port = 10_000 + u16::try_from(i % per_source).unwrap_or(0);
            let source = SocketAddr::from((ip, port));
            let target = addrs[i % addrs.len()];
            tokio::task::spawn_local(subscriber(
                opts.clone(),
                source,
                target,
                sub.clone(),
                totals.clone(),
                gate.clone(),
            ))
        })
        .collect()
}

/// One subscriber for as long as its task lives: connects, listens, reconnects from its
/// position when the server ends the response or the connection breaks.
async fn subscriber(
    opts: Rc<Options>,
    source: SocketAddr,
    target: SocketAddr,
    sub: Rc<Sub>,
    totals: Rc<Totals>,
    gate: Arc<Semaphore>,
) {
    loop {
        if let Err(e) = session(&opts, source, target, &sub, &totals, &gate).await {
            totals.errors.set(totals.errors.get() + 1);
            *totals.last_error.borrow_mut() = format!("{e:#}");
            sub.ready.set(false);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// One connection: as many requests as the transport makes on it.
async fn session(
    opts: &Options,
    source: SocketAddr,
    target: SocketAddr,
    sub: &Sub,
    totals: &Totals,
    gate: &Semaphore,
) -> Result<()> {
    let permit = gate.acquire().await?;
    let socket = TcpSocket::new_v4()?;
    // A port of an earlier run's connection may still be in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(source)?;
    let stream = socket.connect(target).await.context("connect")?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    let _conn = AbortOnDrop(tokio::task::spawn_local(async move {
        let _ = conn.await;
    }));
    let host = target.to_string();
    let mut permit = Some(permit);
    loop {
        let req = request(opts, &host, sub)?;
        sender.ready().await?;
        let pending = sender.send_request(req);
        if opts.transport == Transport::Poll {
            // A held poll has no answer to wait for; written is as far as readiness goes.
            sub.ready.set(true);
            permit.take();
        }
        let resp = pending.await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if status == 304 || status == 408 {
            // Nchan's answer to a poll that waited in vain: ask again from the same spot.
            let _ = resp.into_body().collect().await;
            continue;
        }
        if status != 200 {
            let body = resp.into_body().collect().await?.to_bytes();
            bail!("status {status}: {}", String::from_utf8_lossy(&body));
        }
        match opts.transport {
            Transport::Sse => {
                sub.ready.set(true);
                permit.take();
                read_sse(resp.into_body(), sub, totals).await?;
                // The server ended the stream (e.g. Comet's max_stream_seconds): go again.
                return Ok(());
            }
            Transport::Poll => {
                let body = resp.into_body().collect().await?.to_bytes();
                let text = String::from_utf8_lossy(&body);
                record_messages(&text, sub, totals);
                let next = match opts.flavor {
                    Flavor::Comet => comet_cursor(&text).map(|c| (c, String::new())),
                    Flavor::Nchan => {
                        let h = |n: &str| {
                            headers
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_string()
                        };
                        Some((h("last-modified"), h("etag")))
                    }
                };
                if next.is_some() {
                    *sub.position.borrow_mut() = next;
                }
            }
        }
    }
}

/// Aborts a task when its owner goes away (so a dropped subscriber closes its socket).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn request(opts: &Options, host: &str, sub: &Sub) -> Result<http::Request<Empty<Bytes>>> {
    let position = sub.position.borrow().clone();
    let ch = &opts.channel;
    let mut builder = http::Request::get(match (opts.flavor, opts.transport) {
        (Flavor::Comet, Transport::Sse) => format!("/v1/sse?channel={ch}"),
        (Flavor::Comet, Transport::Poll) => match &position {
            Some((cursor, _)) => format!("/v1/poll?channel={ch}&timeout=55&cursor={cursor}"),
            None => format!("/v1/poll?channel={ch}&timeout=55"),
        },
        (Flavor::Nchan, Transport::Sse) => format!("/sub/sse?id={ch}"),
        (Flavor::Nchan, Transport::Poll) => format!("/sub/poll?id={ch}"),
    })
    .header(http::header::HOST, host);
    if let Some((first, second)) = position {
        match (opts.flavor, opts.transport) {
            (_, Transport::Sse) => builder = builder.header("last-event-id", first),
            (Flavor::Nchan, Transport::Poll) => {
                builder = builder
                    .header("if-modified-since", first)
                    .header("if-none-match", second);
            }
            (Flavor::Comet, Transport::Poll) => {}
        }
    }
    if opts.transport == Transport::Sse {
        builder = builder.header(http::header::ACCEPT, "text/event-stream");
    }
    Ok(builder.body(Empty::new())?)
}

/// Reads an SSE body to its end, remembering the last `id:` and recording each message.
async fn read_sse(mut body: hyper::body::Incoming, sub: &Sub, totals: &Totals) -> Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buf.extend_from_slice(data);
        // Events end with a blank line; handle each complete one.
        while let Some(end) = find_blank_line(&buf) {
            let event: Vec<u8> = buf.drain(..end).collect();
            let text = String::from_utf8_lossy(&event);
            for line in text.lines() {
                if let Some(id) = line.strip_prefix("id:") {
                    *sub.position.borrow_mut() = Some((id.trim().to_string(), String::new()));
                }
            }
            record_messages(&text, sub, totals);
        }
        if buf.capacity() > 64 * 1024 && buf.is_empty() {
            buf.shrink_to(256);
        }
    }
    Ok(())
}

/// Index just past the first `\n\n` (or `\r\n\r\n`) in `buf`.
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Counts every `"bt":<µs>` in `text` as one delivered message and records its latency.
fn record_messages(text: &str, sub: &Sub, totals: &Totals) {
    let now = unix_micros();
    let mut rest = text;
    let mut found = 0u64;
    while let Some(at) = rest.find("\"bt\":") {
        rest = &rest[at + 5..];
        let digits: &str = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or_default();
        if let Ok(sent) = digits.parse::<u64>() {
            found += 1;
            let lat = u32::try_from(now.saturating_sub(sent)).unwrap_or(u32::MAX);
            totals.latencies_us.borrow_mut().push(lat);
        }
    }
    if found == 0 {
        return;
    }
    totals.received.set(totals.received.get() + found);
    let n = sub.since_resume.get() + found;
    sub.since_resume.set(n);
    if let Some(started) = totals.resume_started.get() {
        let expect = totals.resume_expect.get();
        if n >= expect && n - found < expect {
            let ms = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
            totals.resume_ms.borrow_mut().push(ms);
        }
    }
}

/// The `"cursor":"…"` of a Comet poll answer.
fn comet_cursor(text: &str) -> Option<String> {
    let at = text.rfind("\"cursor\":\"")? + 10;
    let rest = &text[at..];
    Some(rest[..rest.find('"')?].to_string())
}

/// Microseconds since the Unix epoch: the clock publishers stamp messages with.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_stamped_messages_and_their_latency() {
        let sub = Sub::default();
        let totals = Totals::default();
        let sent = unix_micros() - 1_000;
        record_messages(
            &format!(
                "{{\"events\":[{{\"data\":{{\"bt\":{sent}}}}},{{\"data\":{{\"bt\":{sent}}}}}]}}"
            ),
            &sub,
            &totals,
        );
        assert_eq!(totals.received.get(), 2);
        assert!(totals.latencies_us.borrow().iter().all(|l| *l >= 1_000));
        record_messages("event: ready\ndata: {}\n\n", &sub, &totals);
        assert_eq!(totals.received.get(), 2);
    }

    #[test]
    fn finds_cursor_and_event_ends() {
        assert_eq!(
            comet_cursor("{\"events\":[],\"cursor\":\"abc.1\"}").as_deref(),
            Some("abc.1")
        );
        assert_eq!(find_blank_line(b"id: 1\ndata: x\n\nid: 2"), Some(15));
        assert_eq!(find_blank_line(b"id: 1\r\n\r\n"), Some(9));
        assert_eq!(find_blank_line(b"id: 1\n"), None);
    }
}
