//! Concurrent publishers on one channel: nothing lost, duplicated or reordered.

use std::collections::HashMap;
use std::time::Duration;

use comet_state::{Event, KvOps, Log, LogConfig, MemoryKv, Position, Retention, Start};
use rand::Rng as _;

use crate::log_suite::{msg, msg_id, sub};
use crate::support::{Env, RealRedis, kv_env_with, redis_env};

const TASKS: usize = 8;
const PER_TASK: usize = 500;

fn roomy() -> LogConfig {
    LogConfig {
        retention: Retention {
            count: 10_000,
            max_age: Duration::from_secs(3600),
        },
        ..LogConfig::default()
    }
}

/// Each task publishes `task:i` in order; afterwards every message must appear exactly once,
/// with seqs 1..=N, and each task's messages in the order it published them.
async fn check_all_delivered<L: Log>(env: &Env<L>, published: Vec<Vec<u64>>) {
    let c = env.ch("shared");
    let total = TASKS * PER_TASK;
    let all: Vec<u64> = {
        let mut v: Vec<u64> = published.iter().flatten().copied().collect();
        v.sort_unstable();
        v
    };
    assert_eq!(
        all,
        (1..=total as u64).collect::<Vec<_>>(),
        "acknowledged seqs"
    );
    for seqs in &published {
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "per-publisher order");
    }
    let full = env
        .log
        .read(&[sub(&c, Start::Beginning)], total + 10)
        .await
        .expect("read");
    assert!(!full.more);
    let mut last_index: HashMap<usize, usize> = HashMap::new();
    let mut seen = 0;
    for (i, e) in full.events.iter().enumerate() {
        let Event::Message(m) = e else {
            panic!("unexpected reset {e:?}")
        };
        assert_eq!(m.seq, i as u64 + 1);
        let text: String = serde_json::from_str(&m.data).expect("string data");
        let (task, n) = text.split_once(':').expect("task:n");
        let (task, n): (usize, usize) = (task.parse().expect("task"), n.parse().expect("n"));
        assert_eq!(
            published[task][n], m.seq,
            "data matches its acknowledged seq"
        );
        if let Some(prev) = last_index.insert(task, n) {
            assert_eq!(n, prev + 1, "task {task} order");
        }
        seen += 1;
    }
    assert_eq!(seen, total);
    // Readers resuming from random cursors see exactly the rest, in order, once.
    let epoch = full.positions[0].1.epoch.clone();
    let mut rng = rand::rng();
    for _ in 0..20 {
        let from = rng.random_range(0..=total as u64);
        let mut subs = vec![sub(
            &c,
            Start::After(Position {
                epoch: epoch.clone(),
                seq: from,
            }),
        )];
        let mut got = Vec::new();
        loop {
            let b = env.log.read(&subs, 777).await.expect("read");
            for e in &b.events {
                match e {
                    Event::Message(m) => got.push(m.seq),
                    Event::Reset { .. } => panic!("unexpected reset"),
                }
            }
            subs = b.next_subscriptions();
            if !b.more {
                break;
            }
        }
        assert_eq!(got, (from + 1..=total as u64).collect::<Vec<_>>());
    }
}

/// Follows the channel while publishers run: must see every message once, in seq order.
async fn live_reader<L: Log>(env: &Env<L>) -> Vec<u64> {
    let c = env.ch("shared");
    let total = TASKS * PER_TASK;
    let mut subs = vec![sub(&c, Start::Beginning)];
    let mut got: Vec<u64> = Vec::with_capacity(total);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while got.len() < total {
        assert!(
            std::time::Instant::now() < deadline,
            "reader stalled at {}",
            got.len()
        );
        let b = env.log.read(&subs, 100).await.expect("read");
        for e in &b.events {
            match e {
                Event::Message(m) => {
                    assert!(got.last().is_none_or(|l| *l < m.seq), "order");
                    got.push(m.seq);
                }
                Event::Reset { .. } => panic!("unexpected reset {e:?}"),
            }
        }
        subs = b.next_subscriptions();
        tokio::task::yield_now().await;
    }
    got
}

async fn publish_task<L: Log>(env: &Env<L>, task: usize) -> Vec<u64> {
    let c = env.ch("shared");
    let mut seqs = Vec::with_capacity(PER_TASK);
    for n in 0..PER_TASK {
        let data = format!("\"{task}:{n}\"");
        let m = if n % 3 == 0 {
            msg_id(&c, &data, &format!("id-{task}-{n}"))
        } else {
            msg(&c, &data)
        };
        let p = env.log.publish(&[m]).await.expect("publish");
        assert!(!p[0].duplicate);
        seqs.push(p[0].seq);
    }
    seqs
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_publishers_on_kv_lose_nothing() {
    // The store yields before every operation, so the 8 publishers interleave at every step,
    // as publishers in separate instances would.
    let env = kv_env_with(MemoryKv::interleaving(), roomy());
    let tasks = (0..TASKS).map(|t| publish_task(&env, t));
    let (published, live) = futures::join!(futures::future::join_all(tasks), live_reader(&env));
    let mut acknowledged: Vec<u64> = published.iter().flatten().copied().collect();
    acknowledged.sort_unstable();
    assert_eq!(
        live, acknowledged,
        "the live reader saw exactly the acknowledged seqs"
    );
    check_all_delivered(&env, published).await;
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_publishers_on_redis_lose_nothing() {
    // One connection per publisher, like separate instances.
    let first = redis_env(roomy()).await;
    let mut envs = Vec::new();
    for _ in 0..TASKS {
        let mut e = redis_env(roomy()).await;
        e.prefix = first.prefix.clone();
        envs.push(e);
    }
    let tasks = envs.iter().enumerate().map(|(t, e)| publish_task(e, t));
    let (published, live) = futures::join!(futures::future::join_all(tasks), live_reader(&first));
    let mut acknowledged: Vec<u64> = published.iter().flatten().copied().collect();
    acknowledged.sort_unstable();
    assert_eq!(
        live, acknowledged,
        "the live reader saw exactly the acknowledged seqs"
    );
    check_all_delivered(&first, published).await;
}

#[tokio::test(flavor = "current_thread")]
async fn crashed_publisher_hole_is_tombstoned_after_grace() {
    let config = LogConfig {
        missing_grace: Duration::from_millis(200),
        ..LogConfig::default()
    };
    let env = kv_env_with(MemoryKv::new(), config);
    let c = env.ch("hole");
    env.log.publish(&[msg(&c, "1")]).await.expect("publish");
    // A publisher reserves seq 2 and dies before writing it.
    let seq_key = format!("comet:{{{c}}}:seq");
    assert_eq!(
        env.log.store().increment(&seq_key, 1).await.expect("incr"),
        2
    );
    env.log.publish(&[msg(&c, "3")]).await.expect("publish");

    let start = [sub(&c, Start::Beginning)];
    let blocked = env.log.read(&start, 10).await.expect("read");
    assert_eq!(
        blocked.message_count(),
        1,
        "stops before the in-flight seq 2"
    );
    assert!(blocked.more);
    assert_eq!(blocked.positions[0].1.seq, 1);

    env.clock.advance(Duration::from_millis(300));
    let read = env
        .log
        .read(&blocked.next_subscriptions(), 10)
        .await
        .expect("read");
    let seqs: Vec<u64> = read
        .events
        .iter()
        .map(|e| match e {
            Event::Message(m) => m.seq,
            Event::Reset { .. } => panic!("a hole is not a reset"),
        })
        .collect();
    assert_eq!(seqs, [3]);
    assert!(!read.more);
    // The late publisher's write now fails, so it can never acknowledge seq 2.
    let late = env
        .log
        .store()
        .compare_and_swap(&format!("comet:{{{c}}}:m:2"), None, b"1:0:5")
        .await
        .expect("cas");
    assert!(!late);
}

#[tokio::test(flavor = "current_thread")]
async fn kv_storage_stays_bounded_by_retention() {
    let config = LogConfig {
        retention: Retention {
            count: 10,
            max_age: Duration::from_secs(3600),
        },
        ..LogConfig::default()
    };
    let env = kv_env_with(MemoryKv::new(), config);
    let c = env.ch("bounded");
    for i in 0..100 {
        let m = if i % 2 == 0 {
            msg_id(&c, "1", &format!("k{i}"))
        } else {
            msg(&c, "1")
        };
        env.log.publish(&[m]).await.expect("publish");
    }
    let prefix = format!("comet:{{{c}}}:");
    let keys = env.log.store().keys_with_prefix(&prefix);
    let messages = keys.iter().filter(|k| k.contains(":m:")).count();
    let ids = keys.iter().filter(|k| k.contains(":id:")).count();
    assert_eq!(messages, 10, "{keys:?}");
    assert_eq!(ids, 5, "{keys:?}");
}

/// Redis that has forgotten every script once (as after a restart or failover), without
/// flushing the real script cache other tests rely on.
struct ForgetfulRedis {
    inner: RealRedis,
    forgot: std::cell::Cell<u32>,
}

impl comet_state::RedisOps for ForgetfulRedis {
    async fn execute(
        &self,
        command: &str,
        args: Vec<comet_state::RedisArg>,
    ) -> Result<Vec<comet_state::RedisValue>, comet_state::StoreError> {
        if command == "EVALSHA" && self.forgot.get() == 0 {
            self.forgot.set(1);
            return Err(comet_state::StoreError::new(
                "NOSCRIPT No matching script. Please use EVAL.",
            ));
        }
        if command == "EVAL" {
            self.forgot.set(self.forgot.get() + 1);
        }
        self.inner.execute(command, args).await
    }
}

#[tokio::test(flavor = "current_thread")]
async fn redis_falls_back_to_eval_on_noscript() {
    let redis = ForgetfulRedis {
        inner: RealRedis::connect().await,
        forgot: std::cell::Cell::new(0),
    };
    let clock = crate::support::TestClock::default();
    let env = Env {
        log: comet_state::RedisLog::new(redis, clock.clone(), LogConfig::default()),
        clock,
        prefix: crate::support::unique_prefix(),
    };
    let c = env.ch("noscript");
    let p = env
        .log
        .publish(&[msg(&c, "1"), msg(&c, "2")])
        .await
        .expect("publish after NOSCRIPT");
    assert_eq!(p.iter().map(|p| p.seq).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(
        env.log.connection().forgot.get(),
        2,
        "one EVAL, then EVALSHA again"
    );
    let again = env.log.publish(&[msg(&c, "3")]).await.expect("publish");
    assert_eq!(again[0].seq, 3);
    assert_eq!(env.log.connection().forgot.get(), 2, "no further EVAL");
}

/// Publishers racing with the same id: exactly one message stored, everyone gets its seq.
async fn same_id_race<L: Log>(envs: &[Env<L>]) {
    let c = envs[0].ch("race");
    let tasks = envs.iter().enumerate().map(|(i, e)| {
        let m = msg_id(&c, &i.to_string(), "the-id");
        async move { e.log.publish(&[m]).await.expect("publish")[0].clone() }
    });
    let results = futures::future::join_all(tasks).await;
    let originals: Vec<_> = results.iter().filter(|p| !p.duplicate).collect();
    assert_eq!(originals.len(), 1, "{results:?}");
    assert!(results.iter().all(|p| p.seq == originals[0].seq));
    let all = envs[0]
        .log
        .read(&[sub(&c, Start::Beginning)], 100)
        .await
        .expect("read");
    assert_eq!(all.message_count(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn racing_same_id_publishers_store_once_on_kv() {
    // Separate logs (separate "instances") over one interleaving store.
    let kv = std::rc::Rc::new(MemoryKv::interleaving());
    let prefix = crate::support::unique_prefix();
    let envs: Vec<_> = (0..TASKS)
        .map(|_| {
            let clock = crate::support::TestClock::default();
            Env {
                log: comet_state::KvLog::new(SharedKv(kv.clone()), clock.clone(), roomy()),
                clock,
                prefix: prefix.clone(),
            }
        })
        .collect();
    same_id_race(&envs).await;
}

#[tokio::test(flavor = "current_thread")]
async fn racing_same_id_publishers_store_once_on_redis() {
    let first = redis_env(roomy()).await;
    let mut envs = vec![];
    for _ in 0..TASKS {
        let mut e = redis_env(roomy()).await;
        e.prefix = first.prefix.clone();
        envs.push(e);
    }
    same_id_race(&envs).await;
}

/// A shared handle to one store, as several instances would see it.
struct SharedKv(std::rc::Rc<MemoryKv>);

impl KvOps for SharedKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, comet_state::StoreError> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), comet_state::StoreError> {
        self.0.set(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), comet_state::StoreError> {
        self.0.delete(key).await
    }
    async fn get_many(
        &self,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, comet_state::StoreError> {
        self.0.get_many(keys).await
    }
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, comet_state::StoreError> {
        self.0.increment(key, delta).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, comet_state::StoreError> {
        self.0.compare_and_swap(key, expected, new).await
    }
}
