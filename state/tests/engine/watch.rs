//! Waiting for news through the instance-shared watcher.

use std::time::{Duration, Instant};

use comet_state::{Clock, Log, LogConfig, MemoryKv, RedisLog, Start, WatchConfig, Watcher};

use crate::log_suite::{msg, sub, summary};
use crate::support::{Env, RealRedis, kv_env, kv_env_with, redis_env};

async fn wakes_after_publish<L: Log>(env: &Env<L>, config: WatchConfig, p50_budget: Duration) {
    let c = env.ch("w");
    let watcher = Watcher::new(config);
    let mut latencies = Vec::new();
    let mut subs = vec![sub(&c, Start::Now)];
    for round in 1..=5 {
        let publisher = async {
            // Long enough for the poll interval to back off to its idle maximum.
            env.clock.sleep(Duration::from_millis(150)).await;
            let t = Instant::now();
            env.log
                .publish(&[msg(&c, &round.to_string())])
                .await
                .expect("publish");
            t
        };
        let waiter = async {
            let b = watcher
                .wait(&env.log, &env.clock, &subs, 100, Duration::from_secs(5))
                .await
                .expect("wait");
            (b, Instant::now())
        };
        let (published_at, (batch, woke_at)) = futures::join!(publisher, waiter);
        assert_eq!(summary(&batch), [format!("w#{round}={round}")]);
        latencies.push(woke_at - published_at);
        subs = batch.next_subscriptions();
    }
    latencies.sort();
    eprintln!("wake latencies (sorted): {latencies:?}");
    let p50 = latencies[2];
    assert!(
        p50 <= p50_budget,
        "p50 wake {p50:?} > {p50_budget:?} ({latencies:?})"
    );
    assert!(latencies[4] <= Duration::from_millis(500), "{latencies:?}");
    assert_eq!(watcher.waiters(), 0, "deregistered");
}

#[tokio::test(flavor = "current_thread")]
async fn kv_waiter_wakes_after_publish() {
    // Idle interval 40 ms: worst case one interval plus scheduling slack.
    wakes_after_publish(
        &kv_env(LogConfig::default()),
        WatchConfig::KV,
        Duration::from_millis(60),
    )
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn redis_waiter_wakes_after_publish() {
    let env = redis_env(LogConfig::default()).await;
    // Idle interval 8 ms: expected p50 ≈ 4 ms plus a round trip.
    wakes_after_publish(&env, WatchConfig::REDIS, Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn returns_at_once_when_something_is_newer() {
    let env = kv_env(LogConfig::default());
    let c = env.ch("now");
    env.log.publish(&[msg(&c, "1")]).await.expect("publish");
    let watcher = Watcher::new(WatchConfig::KV);
    let t = Instant::now();
    let b = watcher
        .wait(
            &env.log,
            &env.clock,
            &[sub(&c, Start::Beginning)],
            10,
            Duration::from_secs(5),
        )
        .await
        .expect("wait");
    assert_eq!(summary(&b), ["now#1=1"]);
    assert!(t.elapsed() < Duration::from_millis(50));
    assert_eq!(watcher.stats().ticks, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn timeout_returns_an_empty_batch_with_positions() {
    let env = kv_env(LogConfig::default());
    let c = env.ch("quiet");
    env.log.publish(&[msg(&c, "1")]).await.expect("publish");
    let watcher = Watcher::new(WatchConfig::KV);
    let t = Instant::now();
    let b = watcher
        .wait(
            &env.log,
            &env.clock,
            &[sub(&c, Start::Now)],
            10,
            Duration::from_millis(120),
        )
        .await
        .expect("wait");
    let waited = t.elapsed();
    assert!(b.events.is_empty());
    assert_eq!(b.positions[0].1.seq, 1);
    assert!(
        waited >= Duration::from_millis(115) && waited < Duration::from_millis(400),
        "{waited:?}"
    );
}

/// Runs `n` idle waiters on one watcher for `dur`; returns (ticks, store ops while waiting).
async fn idle_cost(n: usize, dur: Duration) -> (u64, u64, u64) {
    let env = kv_env_with(MemoryKv::new(), LogConfig::default());
    let watcher = Watcher::new(WatchConfig::KV);
    let channels: Vec<_> = (0..n).map(|i| env.ch(&format!("c{i}"))).collect();
    let before = env.log.store().ops();
    let waits = channels.iter().map(|c| {
        let subs = [sub(c, Start::Now)];
        let (watcher, env) = (&watcher, &env);
        async move {
            watcher
                .wait(&env.log, &env.clock, &subs, 10, dur)
                .await
                .expect("wait")
        }
    });
    let batches = futures::future::join_all(waits).await;
    assert!(batches.iter().all(|b| b.events.is_empty()));
    let stats = watcher.stats();
    assert_eq!(stats.store_ops, stats.ticks, "KV: one get_many per tick");
    // Each waiter does its own initial read (1 op); everything else is shared ticks.
    let ops = env.log.store().ops() - before;
    (stats.ticks, ops, ops - stats.ticks)
}

#[tokio::test(flavor = "current_thread")]
async fn many_waiters_share_one_poll_loop() {
    let dur = Duration::from_millis(400);
    let (ticks_1, _, own_1) = idle_cost(1, dur).await;
    let (ticks_50, ops_50, own_50) = idle_cost(50, dur).await;
    // Idle: 5,10,20,40,40… ms → about 12 ticks in 400 ms, whatever the number of waiters.
    assert!(
        (5..=25).contains(&ticks_1),
        "ticks with 1 waiter: {ticks_1}"
    );
    assert!(
        ticks_50 <= ticks_1 + 3,
        "ticks grew with waiters: {ticks_1} → {ticks_50}"
    );
    assert_eq!(own_1, 1);
    assert_eq!(
        own_50, 50,
        "one initial read per waiter, total ops {ops_50}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn leadership_passes_on_when_the_leader_leaves() {
    let env = kv_env(LogConfig::default());
    let (a, b) = (env.ch("a"), env.ch("b"));
    let watcher = Watcher::new(WatchConfig::KV);
    let (sub_a, sub_b) = ([sub(&a, Start::Now)], [sub(&b, Start::Now)]);
    let first = watcher.wait(&env.log, &env.clock, &sub_a, 10, Duration::from_millis(80));
    let second = watcher.wait(&env.log, &env.clock, &sub_b, 10, Duration::from_secs(3));
    let publisher = async {
        env.clock.sleep(Duration::from_millis(250)).await;
        env.log.publish(&[msg(&b, "1")]).await.expect("publish");
        Instant::now()
    };
    let t0 = Instant::now();
    let (r1, r2, published_at) = futures::join!(first, second, publisher);
    assert!(r1.expect("wait").events.is_empty());
    let r2 = r2.expect("wait");
    assert_eq!(summary(&r2), ["b#1=1"]);
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(published_at.elapsed() < Duration::from_millis(100));
}

#[tokio::test(flavor = "current_thread")]
async fn cancelled_leader_hands_over() {
    let env = kv_env(LogConfig::default());
    let c = env.ch("x");
    let watcher = Watcher::new(WatchConfig::KV);
    let subs = [sub(&c, Start::Now)];
    // The first waiter leads and is dropped (client went away) after 60 ms.
    let leader = watcher.wait(&env.log, &env.clock, &subs, 10, Duration::from_secs(3));
    let cancelled = tokio::time::timeout(Duration::from_millis(60), leader);
    let follower = watcher.wait(&env.log, &env.clock, &subs, 10, Duration::from_secs(3));
    let publisher = async {
        env.clock.sleep(Duration::from_millis(200)).await;
        env.log.publish(&[msg(&c, "1")]).await.expect("publish");
    };
    let (gone, woke, ()) = futures::join!(cancelled, follower, publisher);
    assert!(gone.is_err(), "leader was cancelled");
    assert_eq!(summary(&woke.expect("wait")), ["x#1=1"]);
    assert_eq!(watcher.waiters(), 0);
}

#[tokio::test]
async fn redis_heads_agree_in_single_node_and_cluster_modes() {
    let env = redis_env(LogConfig::default()).await;
    let (a, b, none) = (env.ch("a"), env.ch("b"), env.ch("none"));
    env.log
        .publish(&[msg(&a, "1"), msg(&a, "2"), msg(&b, "1")])
        .await
        .expect("publish");
    let channels = [a, b, none];
    let single = env.log.heads(&channels).await.expect("mget heads");
    assert_eq!(
        env.log.head_ops(channels.len()),
        1,
        "single node reads all heads with one MGET"
    );
    let cluster = RedisLog::new(
        RealRedis::connect().await,
        env.clock.clone(),
        LogConfig::default(),
    )
    .cluster(true);
    assert_eq!(cluster.heads(&channels).await.expect("get heads"), single);
    assert_eq!(
        cluster.head_ops(channels.len()),
        3,
        "cluster reads one key per channel"
    );
    assert_eq!(single, [2, 1, 0]);
}

#[tokio::test(flavor = "current_thread")]
async fn waiters_woken_together_share_one_read() {
    // Redis reads are real round trips, so the woken waiters' reads overlap in time.
    let env = redis_env(LogConfig::default()).await;
    let c = env.ch("joined");
    let watcher = Watcher::new(WatchConfig::REDIS);
    let subs = vec![sub(&c, Start::Now)];
    let first = watcher
        .wait(&env.log, &env.clock, &subs, 10, Duration::ZERO)
        .await
        .expect("position");
    let subs = first.next_subscriptions();
    let waiters =
        (0..50).map(|_| watcher.wait(&env.log, &env.clock, &subs, 10, Duration::from_secs(5)));
    let publisher = async {
        env.clock.sleep(Duration::from_millis(50)).await;
        env.log.publish(&[msg(&c, "7")]).await.expect("publish");
    };
    let (batches, ()) = futures::join!(futures::future::join_all(waiters), publisher);
    for b in batches {
        assert_eq!(summary(&b.expect("wait")), ["joined#1=7"]);
    }
    let joined = watcher.stats().joined_reads;
    assert!(
        joined >= 25,
        "50 waiters woken by one publish should mostly share reads, {joined} joined"
    );
    assert_eq!(watcher.waiters(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_new_read_never_takes_an_answer_kept_for_woken_waiters() {
    let env = kv_env(LogConfig::default());
    let c = env.ch("ryw");
    let watcher = Watcher::new(WatchConfig::KV);
    let first = watcher
        .wait(
            &env.log,
            &env.clock,
            &[sub(&c, Start::Now)],
            10,
            Duration::ZERO,
        )
        .await
        .expect("position");
    let subs = first.next_subscriptions();
    let waiter = watcher.wait(&env.log, &env.clock, &subs, 10, Duration::from_secs(5));
    let publisher = async {
        env.clock.sleep(Duration::from_millis(50)).await;
        env.log.publish(&[msg(&c, "1")]).await.expect("publish");
    };
    let (woken, ()) = futures::join!(waiter, publisher);
    assert_eq!(summary(&woken.expect("wait")), ["ryw#1=1"]);
    // The woken waiter's answer ([1]) is kept for its tick; a publish lands after it.
    env.log.publish(&[msg(&c, "2")]).await.expect("publish");
    let fresh = watcher
        .wait(&env.log, &env.clock, &subs, 10, Duration::ZERO)
        .await
        .expect("read");
    assert_eq!(summary(&fresh), ["ryw#1=1", "ryw#2=2"], "read-your-writes");
}
