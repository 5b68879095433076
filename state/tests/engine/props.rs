//! Property test: random publish/read interleavings against a model, on both backends.

use std::collections::HashMap;
use std::time::Duration;

use comet_state::{Event, Log, LogConfig, Retention, Start};
use proptest::prelude::*;

use crate::log_suite::{msg, msg_id, sub};
use crate::support::{Env, kv_env, redis_env};

#[derive(Debug, Clone)]
enum Op {
    /// Publish to channel index with an optional id (small id space forces duplicates).
    Publish(usize, Option<u8>),
    /// A reader reads with this limit.
    Read(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(
        prop_oneof![
            3 => (0..3usize, proptest::option::of(0..6u8)).prop_map(|(c, id)| Op::Publish(c, id)),
            1 => (1..6usize).prop_map(Op::Read),
        ],
        1..60,
    )
}

/// A reader that started at the beginning must see, across all its reads, every distinct
/// message of each channel exactly once and in publish order, with no reset (retention is
/// large enough).
async fn run<L: Log>(env: &Env<L>, ops: Vec<Op>) {
    let channels: Vec<_> = (0..3).map(|i| env.ch(&format!("p{i}"))).collect();
    let mut model: HashMap<usize, Vec<String>> = HashMap::new();
    let mut ids: HashMap<(usize, u8), u64> = HashMap::new();
    let mut subs: Vec<_> = channels.iter().map(|c| sub(c, Start::Beginning)).collect();
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    let mut counter = 0;
    for op in ops {
        match op {
            Op::Publish(ci, id) => {
                counter += 1;
                let data = counter.to_string();
                let m = match id {
                    Some(id) => msg_id(&channels[ci], &data, &format!("id{id}")),
                    None => msg(&channels[ci], &data),
                };
                let p = env.log.publish(&[m]).await.expect("publish");
                match id.and_then(|id| ids.get(&(ci, id))) {
                    Some(seq) => {
                        assert!(p[0].duplicate);
                        assert_eq!(p[0].seq, *seq);
                    }
                    None => {
                        assert!(!p[0].duplicate);
                        if let Some(id) = id {
                            ids.insert((ci, id), p[0].seq);
                        }
                        model.entry(ci).or_default().push(data);
                    }
                }
            }
            Op::Read(limit) => {
                let b = env.log.read(&subs, limit).await.expect("read");
                assert!(b.message_count() <= limit);
                for e in &b.events {
                    let Event::Message(m) = e else {
                        panic!("unexpected {e:?}")
                    };
                    seen.entry(m.channel.to_string())
                        .or_default()
                        .push(m.data.clone());
                }
                subs = b.next_subscriptions();
            }
        }
    }
    // Drain the rest.
    loop {
        let b = env.log.read(&subs, 1000).await.expect("read");
        for e in &b.events {
            if let Event::Message(m) = e {
                seen.entry(m.channel.to_string())
                    .or_default()
                    .push(m.data.clone());
            }
        }
        subs = b.next_subscriptions();
        if !b.more {
            break;
        }
    }
    for (ci, c) in channels.iter().enumerate() {
        let want = model.remove(&ci).unwrap_or_default();
        let got = seen.remove(c.as_str()).unwrap_or_default();
        assert_eq!(got, want, "channel {ci}");
    }
}

fn config() -> LogConfig {
    LogConfig {
        retention: Retention {
            count: 1000,
            max_age: Duration::from_secs(3600),
        },
        ..LogConfig::default()
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn kv_reader_sees_each_message_once_in_order(ops in ops()) {
        block_on(async { run(&kv_env(config()), ops).await });
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn redis_reader_sees_each_message_once_in_order(ops in ops()) {
        block_on(async { run(&redis_env(config()).await, ops).await });
    }
}
