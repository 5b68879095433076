//! Concurrency stress over real HTTP: many publishers and long-polling subscribers on a few
//! shared channels, on both backends (docs/protocol.md §2: concurrent publishers on any number
//! of instances never produce gaps, duplicates or reordering).
//!
//! * 8 publishers × 5,000 messages onto 3 shared channels, mostly in batches of 50 spread over
//!   the channels, every fifth request a single publish with an idempotency `id` (every fifth of
//!   those re-sent, which must answer `duplicate` with the same seq).
//! * 4 live subscribers long-poll concurrently from the start (`from=start`), on different
//!   channel sets; every response's cursor is captured, and resume subscribers start from
//!   random captured cursors mid-run and once after the last publish.
//! * Redis: two runner processes share one Redis; publishers and subscribers alternate between
//!   them, and a resumed cursor is always used on the other runner than the one that issued it.
//!
//! Asserted: acknowledged seqs of each channel are exactly 1..=N (one epoch); every subscriber
//! receives every acknowledged message after its start position exactly once, in order, with
//! the published payload; no resets; each publisher's messages keep its order per channel.
//!
//! Sizes can be lowered for a quick run: `COMET_STRESS_PUBLISHERS`, `COMET_STRESS_MESSAGES`
//! (per publisher). Throughput is printed; see it with
//! `cargo test --release -p comet-e2e -- stress --nocapture`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Runner, RunnerOpts, redis_conn, redis_url, unique, workspace_root};

const PUBLISH_KEY: &str = "stress-publish-key";
/// Messages per publish batch.
const BATCH: usize = 50;
/// Every `SINGLE_EVERY`-th publish request carries one message (with an `id`).
const SINGLE_EVERY: usize = 5;
/// Every `DUP_EVERY`-th single publish is sent twice.
const DUP_EVERY: usize = 5;
/// Shared channels.
const CHANNELS: usize = 3;
/// Channel sets of the live subscribers (indexes into the channel list).
const LIVE_SETS: &[&[usize]] = &[&[0, 1, 2], &[0, 1, 2], &[0], &[1, 2]];
/// Fractions of acknowledged messages at which a resume subscriber starts.
const RESUME_AT: &[f64] = &[0.2, 0.4, 0.6, 0.8];
/// Long-poll timeout the subscribers ask for, in seconds.
const POLL_TIMEOUT: u64 = 3;
/// Everything (publishing and catching up) must end within this.
const DEADLINE: Duration = Duration::from_secs(150);

/// The two stress tests share the 2-core box: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn stress_kv() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let runner = Runner::start(&workspace_root().join("spin.toml"), base_opts());
    run_stress("kv", &[&runner]);
}

#[test]
fn stress_redis_two_runners() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let url = redis_url();
    let opts = base_opts()
        .env("SPIN_VARIABLE_BACKEND", "redis")
        .env("SPIN_VARIABLE_REDIS_URL", url);
    let a = Runner::start(&workspace_root().join("spin.toml"), opts.clone());
    let b = Runner::start(&workspace_root().join("spin.toml"), opts);
    let channels = run_stress("redis", &[&a, &b]);
    runtime().block_on(async {
        let mut conn = redis_conn().await;
        for ch in &channels {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("comet:{{{ch}}}:*"))
                .query_async(&mut conn)
                .await
                .expect("KEYS");
            if !keys.is_empty() {
                let _: i64 = redis::cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .expect("DEL");
            }
        }
    });
}

fn base_opts() -> RunnerOpts {
    RunnerOpts::default()
        .env("SPIN_VARIABLE_PUBLISH_KEY", PUBLISH_KEY)
        .env("SPIN_VARIABLE_RETENTION_COUNT", "100000")
        .env("RUST_LOG", "warn")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: reproducible from the printed seed, no extra dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The payload of message `i` of publisher `p`: what every subscriber must get back verbatim.
fn payload(p: usize, i: usize) -> Value {
    json!({"p": p, "i": i, "s": format!("p{p}/i{i} \"q\" é")})
}

/// One acknowledged message.
#[derive(Clone, Debug)]
struct Ack {
    channel: usize,
    seq: u64,
    epoch: String,
    p: usize,
    i: usize,
}

/// A cursor a subscriber was given, with the last seq it had seen per channel at that point.
#[derive(Clone)]
struct Capture {
    runner: usize,
    channels: Vec<usize>,
    cursor: String,
    last: [u64; CHANNELS],
}

/// What a subscriber received.
struct Received {
    name: String,
    channels: Vec<usize>,
    start: [u64; CHANNELS],
    /// Per channel: (seq, epoch, data) in arrival order.
    messages: Vec<Vec<(u64, String, Value)>>,
    resets: Vec<Value>,
    polls: u64,
    error: Option<String>,
}

/// State shared by all tasks of one run.
struct Shared {
    client: reqwest::Client,
    bases: Vec<String>,
    channels: Vec<String>,
    acked: AtomicU64,
    /// Set once every publisher is done: the last acknowledged seq per channel.
    targets: Mutex<Option<[u64; CHANNELS]>>,
    captures: Mutex<Vec<Capture>>,
    /// Set on the first failure, so every task winds down quickly.
    stop: AtomicBool,
    deadline: Instant,
}

/// Runs the whole scenario against `runners` and asserts; returns the channel names used.
fn run_stress(backend: &str, runners: &[&Runner]) -> Vec<String> {
    let publishers = env_usize("COMET_STRESS_PUBLISHERS", 8);
    let per_publisher = env_usize("COMET_STRESS_MESSAGES", 5000);
    let total = (publishers * per_publisher) as u64;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let prefix = unique("stress");
    let channels: Vec<String> = (0..CHANNELS).map(|c| format!("{prefix}-c{c}")).collect();
    println!(
        "[stress {backend}] {} runner(s), {publishers} publishers × {per_publisher} messages \
         (batches of {BATCH}, every {SINGLE_EVERY}th request single) on {CHANNELS} channels, \
         {} live subscribers, seed {seed}",
        runners.len(),
        LIVE_SETS.len(),
    );
    let shared = Arc::new(Shared {
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client"),
        bases: runners.iter().map(|r| r.base_url().to_owned()).collect(),
        channels: channels.clone(),
        acked: AtomicU64::new(0),
        targets: Mutex::new(None),
        captures: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
        deadline: Instant::now() + DEADLINE,
    });

    let rt = runtime();
    let (acks, duplicates, received, publish_time, total_time) = rt.block_on(async {
        let started = Instant::now();
        let mut live = Vec::new();
        for (s, set) in LIVE_SETS.iter().enumerate() {
            let runner = s % shared.bases.len();
            live.push(tokio::spawn(subscriber(
                shared.clone(),
                format!("live{s}@runner{runner}"),
                runner,
                set.to_vec(),
                None,
                true,
            )));
        }
        // Let the live subscribers park before anything is published.
        tokio::time::sleep(Duration::from_millis(300)).await;

        let publish_started = Instant::now();
        let mut pubs = Vec::new();
        for p in 0..publishers {
            pubs.push(tokio::spawn(publisher(
                shared.clone(),
                p,
                per_publisher,
                seed.wrapping_add(p as u64 * 0x9E37_79B9),
            )));
        }

        // Resume subscribers from random captured cursors while publishing goes on.
        let mut rng = Rng(seed ^ 0xDEAD_BEEF);
        let mut resumed = Vec::new();
        let mut next = 0;
        while next < RESUME_AT.len() && !pubs.iter().all(|p| p.is_finished()) {
            let done = shared.acked.load(Ordering::Relaxed) as f64 / total as f64;
            if done >= RESUME_AT[next]
                && let Some(handle) = spawn_resume(&shared, &mut rng, format!("resume{next}"))
            {
                resumed.push(handle);
                next += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut acks = Vec::new();
        let mut duplicates = Vec::new();
        let mut publish_errors = Vec::new();
        for p in pubs {
            match p.await.expect("publisher task") {
                Ok((a, d)) => {
                    acks.extend(a);
                    duplicates.extend(d);
                }
                Err(e) => publish_errors.push(e),
            }
        }
        let publish_time = publish_started.elapsed();
        let mut targets = [0u64; CHANNELS];
        for a in &acks {
            targets[a.channel] = targets[a.channel].max(a.seq);
        }
        *shared.targets.lock().expect("targets") = Some(targets);
        // One more from a random cursor of the whole run: a long catch-up read.
        if let Some(handle) = spawn_resume(&shared, &mut rng, "resume-final".into()) {
            resumed.push(handle);
        }
        let mut received = Vec::new();
        for h in live.into_iter().chain(resumed) {
            received.push(h.await.expect("subscriber task"));
        }
        assert!(
            publish_errors.is_empty(),
            "publish failed: {publish_errors:#?}"
        );
        (acks, duplicates, received, publish_time, started.elapsed())
    });

    let delivered: usize = received
        .iter()
        .map(|r| r.messages.iter().map(Vec::len).sum::<usize>())
        .sum();
    let polls: u64 = received.iter().map(|r| r.polls).sum();
    let resumes: Vec<String> = received
        .iter()
        .filter(|r| r.name.starts_with("resume"))
        .map(|r| format!("{} after {:?}", r.name, r.start))
        .collect();
    println!(
        "[stress {backend}] resumed subscribers: {}",
        resumes.join(", ")
    );
    println!(
        "[stress {backend}] published {} messages in {:.1} s = {:.0} msg/s (acknowledged); \
         {delivered} deliveries to {} subscribers in {polls} polls, run {:.1} s = {:.0} deliveries/s",
        acks.len(),
        publish_time.as_secs_f64(),
        acks.len() as f64 / publish_time.as_secs_f64(),
        received.len(),
        total_time.as_secs_f64(),
        delivered as f64 / total_time.as_secs_f64(),
    );

    // Acknowledgements: per channel exactly 1..=N, one epoch, each publisher's order kept.
    let mut by_channel: Vec<BTreeMap<u64, Ack>> = vec![BTreeMap::new(); CHANNELS];
    for a in &acks {
        if let Some(prev) = by_channel[a.channel].insert(a.seq, a.clone()) {
            panic!(
                "seq {} of channel {} acknowledged twice: {prev:?} and {a:?}",
                a.seq, a.channel
            );
        }
    }
    assert_eq!(acks.len() as u64, total, "every message acknowledged");
    let mut epochs = Vec::new();
    for (c, map) in by_channel.iter().enumerate() {
        let n = map.len() as u64;
        assert_eq!(
            map.keys().next_back().copied().unwrap_or(0),
            n,
            "channel {c}: acknowledged seqs are not 1..={n} (holes or gaps)"
        );
        let epoch = map
            .values()
            .next()
            .map(|a| a.epoch.clone())
            .unwrap_or_default();
        assert!(
            map.values().all(|a| a.epoch == epoch),
            "channel {c}: more than one epoch acknowledged"
        );
        epochs.push(epoch);
        let mut last_i = vec![None::<usize>; publishers];
        for a in map.values() {
            if let Some(prev) = last_i[a.p] {
                assert!(
                    a.i > prev,
                    "channel {c}: publisher {} message {} got seq {} below its earlier message {prev}",
                    a.p,
                    a.i,
                    a.seq
                );
            }
            last_i[a.p] = Some(a.i);
        }
    }
    for (first, again) in &duplicates {
        assert!(
            again.get("duplicate") == Some(&Value::Bool(true))
                && again.get("seq") == first.get("seq")
                && again.get("epoch") == first.get("epoch"),
            "re-sent id: first {first}, again {again}"
        );
    }

    // Every subscriber: exactly what was acknowledged after its start, in order, verbatim.
    let mut failures = String::new();
    for r in &received {
        let mut problems = Vec::new();
        if let Some(e) = &r.error {
            problems.push(format!("error: {e}"));
        }
        if !r.resets.is_empty() {
            problems.push(format!("{} resets, first {}", r.resets.len(), r.resets[0]));
        }
        for &c in &r.channels {
            let got = &r.messages[c];
            let want: Vec<&Ack> = by_channel[c]
                .range(r.start[c] + 1..)
                .map(|(_, a)| a)
                .collect();
            if got.len() != want.len() {
                problems.push(format!(
                    "channel {c}: {} messages after seq {}, {} acknowledged",
                    got.len(),
                    r.start[c],
                    want.len()
                ));
            }
            let mut prev = r.start[c];
            for (seq, epoch, data) in got {
                if *seq <= prev {
                    problems.push(format!(
                        "channel {c}: seq {seq} after {prev} (duplicate or reorder)"
                    ));
                } else if *seq != prev + 1 && by_channel[c].range(prev + 1..*seq).next().is_some() {
                    problems.push(format!("channel {c}: hole: seq {seq} after {prev}"));
                }
                prev = prev.max(*seq);
                if *epoch != epochs[c] {
                    problems.push(format!(
                        "channel {c} seq {seq}: epoch {epoch}, acknowledged {}",
                        epochs[c]
                    ));
                }
                match by_channel[c].get(seq) {
                    None => problems.push(format!("channel {c}: seq {seq} never acknowledged")),
                    Some(a) if *data != payload(a.p, a.i) => problems.push(format!(
                        "channel {c} seq {seq}: data {data}, published {}",
                        payload(a.p, a.i)
                    )),
                    Some(_) => {}
                }
                if problems.len() >= 20 {
                    break;
                }
            }
        }
        if !problems.is_empty() {
            let _ = writeln!(
                failures,
                "{} (channels {:?}, from {:?}, {} polls):\n  {}",
                r.name,
                r.channels,
                r.start,
                r.polls,
                problems.join("\n  ")
            );
        }
    }
    assert!(
        failures.is_empty(),
        "[stress {backend}] seed {seed}\n{failures}"
    );

    // Each runner agrees on every channel's head and retained count.
    rt.block_on(async {
        for base in &shared.bases {
            for (c, name) in channels.iter().enumerate() {
                let v = get_json(&shared.client, &format!("{base}/v1/channels/{name}"))
                    .await
                    .expect("channel info");
                let n = by_channel[c].len() as u64;
                assert_eq!(v["last_seq"], json!(n), "{base} channel {c}: {v}");
                assert_eq!(v["retained_count"], json!(n), "{base} channel {c}: {v}");
                assert_eq!(v["epoch"], json!(epochs[c]), "{base} channel {c}: {v}");
            }
        }
    });
    assert!(
        total_time < DEADLINE,
        "run took {total_time:?}, over {DEADLINE:?}"
    );
    channels
}

/// Publishes `n` messages as publisher `p`: batches of [`BATCH`] over random channels, every
/// [`SINGLE_EVERY`]-th request a single message with an id (some re-sent).
async fn publisher(
    shared: Arc<Shared>,
    p: usize,
    n: usize,
    seed: u64,
) -> Result<(Vec<Ack>, Vec<(Value, Value)>), String> {
    let base = &shared.bases[p % shared.bases.len()];
    let url = format!("{base}/v1/publish");
    let mut rng = Rng(seed | 1);
    let mut acks = Vec::with_capacity(n);
    let mut duplicates = Vec::new();
    let (mut i, mut request, mut singles) = (0, 0usize, 0usize);
    while i < n {
        if shared.stop.load(Ordering::Relaxed) {
            return Err(format!("publisher {p}: stopped after {i} messages"));
        }
        request += 1;
        let before = acks.len();
        if request % SINGLE_EVERY == 0 {
            singles += 1;
            let c = rng.below(CHANNELS);
            let body = json!({"channel": shared.channels[c], "data": payload(p, i), "id": format!("p{p}-i{i}")});
            let v = post_json(&shared, &url, &body).await?;
            acks.push(ack(&v, c, p, i)?);
            if singles % DUP_EVERY == 0 {
                let again = post_json(&shared, &url, &body).await?;
                duplicates.push((v, again));
            }
            i += 1;
        } else {
            let size = BATCH.min(n - i);
            let chans: Vec<usize> = (0..size).map(|_| rng.below(CHANNELS)).collect();
            let body: Vec<Value> = chans
                .iter()
                .enumerate()
                .map(|(k, &c)| json!({"channel": shared.channels[c], "data": payload(p, i + k)}))
                .collect();
            let v = post_json(&shared, &url, &Value::Array(body)).await?;
            let results = v["results"]
                .as_array()
                .filter(|r| r.len() == size)
                .ok_or_else(|| format!("publisher {p}: batch answer {v}"))?;
            for (k, r) in results.iter().enumerate() {
                acks.push(ack(r, chans[k], p, i + k)?);
            }
            i += size;
        }
        shared
            .acked
            .fetch_add((acks.len() - before) as u64, Ordering::Relaxed);
    }
    Ok((acks, duplicates))
}

fn ack(v: &Value, channel: usize, p: usize, i: usize) -> Result<Ack, String> {
    let seq = v["seq"].as_u64();
    let epoch = v["epoch"].as_str();
    match (seq, epoch, v["duplicate"].as_bool()) {
        (Some(seq), Some(epoch), Some(false)) => Ok(Ack {
            channel,
            seq,
            epoch: epoch.to_owned(),
            p,
            i,
        }),
        _ => Err(format!("publisher {p} message {i}: unexpected result {v}")),
    }
}

async fn post_json(shared: &Shared, url: &str, body: &Value) -> Result<Value, String> {
    let resp = shared
        .client
        .post(url)
        .bearer_auth(PUBLISH_KEY)
        .json(body)
        .send()
        .await
        .map_err(|e| stop(shared, format!("POST {url}: {e}")))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| stop(shared, format!("POST {url}: body: {e}")))?;
    if !status.is_success() {
        return Err(stop(shared, format!("POST {url}: {status} {text}")));
    }
    serde_json::from_str(&text).map_err(|e| stop(shared, format!("POST {url}: {e}: {text}")))
}

async fn get_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("GET {url}: body: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: {status} {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}: {text}"))
}

fn stop(shared: &Shared, message: String) -> String {
    shared.stop.store(true, Ordering::Relaxed);
    message
}

/// Starts a subscriber from a random captured cursor, on another runner than the one that
/// issued it (when there are two).
fn spawn_resume(
    shared: &Arc<Shared>,
    rng: &mut Rng,
    name: String,
) -> Option<tokio::task::JoinHandle<Received>> {
    let capture = {
        let captures = shared.captures.lock().expect("captures");
        if captures.is_empty() {
            return None;
        }
        captures[rng.below(captures.len())].clone()
    };
    let runner = (capture.runner + 1) % shared.bases.len();
    Some(tokio::spawn(subscriber(
        shared.clone(),
        format!("{name}@runner{runner}"),
        runner,
        capture.channels.clone(),
        Some((capture.cursor, capture.last)),
        false,
    )))
}

/// Long-polls `channels` until it has every acknowledged message (or the deadline), from
/// `from` (cursor + last seqs) or from the start.
async fn subscriber(
    shared: Arc<Shared>,
    name: String,
    runner: usize,
    channels: Vec<usize>,
    from: Option<(String, [u64; CHANNELS])>,
    capture: bool,
) -> Received {
    let (mut cursor, start) = match from {
        Some((c, last)) => (Some(c), last),
        None => (None, [0; CHANNELS]),
    };
    let mut r = Received {
        name,
        channels: channels.clone(),
        start,
        messages: vec![Vec::new(); CHANNELS],
        resets: Vec::new(),
        polls: 0,
        error: None,
    };
    let index: BTreeMap<&str, usize> = shared
        .channels
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let mut last = start;
    let base = &shared.bases[runner];
    let query: String = channels
        .iter()
        .map(|&c| format!("channel={}&", shared.channels[c]))
        .collect();
    loop {
        let done = shared
            .targets
            .lock()
            .expect("targets")
            .is_some_and(|t| channels.iter().all(|&c| last[c] >= t[c]));
        if done {
            break;
        }
        if shared.stop.load(Ordering::Relaxed) {
            r.error = Some("stopped: another task failed".into());
            break;
        }
        if Instant::now() > shared.deadline {
            r.error = Some(format!("deadline passed with last seqs {last:?}"));
            break;
        }
        let url = match &cursor {
            Some(c) => format!("{base}/v1/poll?{query}timeout={POLL_TIMEOUT}&cursor={c}"),
            None => format!("{base}/v1/poll?{query}timeout={POLL_TIMEOUT}&from=start"),
        };
        r.polls += 1;
        let v = match get_json(&shared.client, &url).await {
            Ok(v) => v,
            Err(e) => {
                r.error = Some(stop(&shared, e));
                break;
            }
        };
        let Some(messages) = v["messages"].as_array() else {
            r.error = Some(format!("no messages in {v}"));
            break;
        };
        for m in messages {
            if m.get("type").is_some() {
                r.resets.push(m.clone());
                continue;
            }
            let c = m["channel"].as_str().and_then(|n| index.get(n).copied());
            match (c, m["seq"].as_u64(), m["epoch"].as_str()) {
                (Some(c), Some(seq), Some(epoch)) => {
                    last[c] = last[c].max(seq);
                    r.messages[c].push((seq, epoch.to_owned(), m["data"].clone()));
                }
                _ => r.resets.push(m.clone()),
            }
        }
        let Some(next) = v["cursor"].as_str() else {
            r.error = Some(format!("no cursor in {v}"));
            break;
        };
        cursor = Some(next.to_owned());
        if capture {
            shared.captures.lock().expect("captures").push(Capture {
                runner,
                channels: channels.clone(),
                cursor: next.to_owned(),
                last,
            });
        }
    }
    r
}
