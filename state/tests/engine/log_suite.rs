//! Log semantics, run on both backends by `both_backends!`.

use std::time::Duration;

use comet_state::{
    Batch, Channel, Cursor, Epoch, Event, Log, LogConfig, NewMessage, Position, Retention, Start,
    Subscription,
};

use crate::support::Env;

pub fn msg(channel: &Channel, data: &str) -> NewMessage {
    NewMessage::new(channel.clone(), data, None).expect("valid message")
}

pub fn msg_id(channel: &Channel, data: &str, id: &str) -> NewMessage {
    NewMessage::new(channel.clone(), data, Some(id)).expect("valid message")
}

pub fn sub(channel: &Channel, start: Start) -> Subscription {
    Subscription {
        channel: channel.clone(),
        start,
    }
}

/// `(channel, seq, data)` of each message event, and `R<seq>` markers for resets.
pub fn summary(batch: &Batch) -> Vec<String> {
    batch
        .events
        .iter()
        .map(|e| match e {
            Event::Message(m) => format!("{}#{}={}", short(&m.channel), m.seq, m.data),
            Event::Reset { channel, seq, .. } => format!("{}:R{seq}", short(channel)),
        })
        .collect()
}

fn short(c: &Channel) -> &str {
    c.as_str().rsplit('-').next().unwrap_or_default()
}

fn small(count: u64, max_age_s: u64) -> LogConfig {
    LogConfig {
        retention: Retention {
            count,
            max_age: Duration::from_secs(max_age_s),
        },
        ..LogConfig::default()
    }
}

macro_rules! both_backends {
    ($($name:ident($cfg:expr)),* $(,)?) => {
        mod kv {
            #[allow(unused_imports, reason = "used by some of the macro's config expressions")]
            use super::{small, LogConfig};
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $name() {
                    let env = crate::support::kv_env($cfg);
                    super::$name(&env).await;
                }
            )*
        }
        mod redis {
            #[allow(unused_imports, reason = "used by some of the macro's config expressions")]
            use super::{small, LogConfig};
            $(
                #[tokio::test(flavor = "current_thread")]
                async fn $name() {
                    let env = crate::support::redis_env($cfg).await;
                    super::$name(&env).await;
                }
            )*
        }
    };
}

both_backends! {
    assigns_consecutive_seqs_in_order(LogConfig::default()),
    batch_spans_channels(LogConfig::default()),
    republish_with_same_id_is_a_duplicate(LogConfig::default()),
    resumes_exactly_from_a_cursor(LogConfig::default()),
    missing_channel_in_cursor_means_from_now(LogConfig::default()),
    first_message_of_new_channel_needs_no_reset(LogConfig::default()),
    resets_when_count_retention_dropped_messages(small(5, 3600)),
    resets_when_messages_expired(small(100, 10)),
    resets_when_epoch_differs(LogConfig::default()),
    resets_when_cursor_is_ahead(LogConfig::default()),
    history_returns_retained_since(small(5, 3600)),
    info_reports_retained_range(small(5, 3600)),
    limit_spans_channels_in_request_order(LogConfig::default()),
    heads_track_last_seq(LogConfig::default()),
}

async fn assigns_consecutive_seqs_in_order<L: Log>(env: &Env<L>) {
    let c = env.ch("chat");
    let batch: Vec<_> = (0..10).map(|i| msg(&c, &i.to_string())).collect();
    let published = env.log.publish(&batch).await.expect("publish");
    let seqs: Vec<u64> = published.iter().map(|p| p.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    assert!(published.iter().all(|p| !p.duplicate));
    assert!(published.iter().all(|p| p.epoch == published[0].epoch));
    assert_eq!(published[0].epoch.as_str().len(), 8);

    let read = env
        .log
        .read(&[sub(&c, Start::Beginning)], 100)
        .await
        .expect("read");
    let want: Vec<String> = (0..10).map(|i| format!("chat#{}={i}", i + 1)).collect();
    assert_eq!(summary(&read), want);
    assert_eq!(read.positions[0].1.seq, 10);
    assert!(!read.more);
    if let Event::Message(m) = &read.events[0] {
        assert_eq!(m.epoch, published[0].epoch);
        assert_eq!(m.time, published[0].time);
    }
}

async fn batch_spans_channels<L: Log>(env: &Env<L>) {
    let (a, b) = (env.ch("a"), env.ch("b"));
    let p = env
        .log
        .publish(&[msg(&a, "1"), msg(&b, "2"), msg(&a, "3")])
        .await
        .expect("publish");
    let got: Vec<(String, u64)> = p.iter().map(|p| (p.channel.to_string(), p.seq)).collect();
    assert_eq!(
        got,
        vec![(a.to_string(), 1), (b.to_string(), 1), (a.to_string(), 2)]
    );
    let read = env
        .log
        .read(&[sub(&a, Start::Beginning), sub(&b, Start::Beginning)], 10)
        .await
        .expect("read");
    assert_eq!(summary(&read), ["a#1=1", "a#2=3", "b#1=2"]);
}

async fn republish_with_same_id_is_a_duplicate<L: Log>(env: &Env<L>) {
    let (c, other) = (env.ch("c"), env.ch("other"));
    let first = env
        .log
        .publish(&[msg_id(&c, "\"x\"", "k1")])
        .await
        .expect("publish");
    let again = env
        .log
        .publish(&[
            msg(&c, "\"y\""),
            msg_id(&c, "\"x2\"", "k1"),
            msg_id(&other, "1", "k1"),
        ])
        .await
        .expect("publish");
    assert!(!first[0].duplicate);
    assert_eq!(again[0].seq, 2);
    assert!(again[1].duplicate);
    assert_eq!(again[1].seq, first[0].seq);
    assert_eq!(again[1].time, first[0].time);
    assert!(!again[2].duplicate, "ids are per channel");
    let read = env
        .log
        .read(&[sub(&c, Start::Beginning)], 10)
        .await
        .expect("read");
    assert_eq!(summary(&read), ["c#1=\"x\"", "c#2=\"y\""]);
    // The burned reservation of the duplicate is invisible and the next publish continues.
    let next = env.log.publish(&[msg(&c, "3")]).await.expect("publish");
    assert_eq!(next[0].seq, 3, "a duplicate burns no sequence number");
    let after = env
        .log
        .read(&[sub(&c, Start::After(read.positions[0].1.clone()))], 10)
        .await
        .expect("read");
    assert_eq!(summary(&after), [format!("c#{}=3", next[0].seq)]);
}

async fn resumes_exactly_from_a_cursor<L: Log>(env: &Env<L>) {
    let c = env.ch("r");
    let batch: Vec<_> = (1..=5).map(|i| msg(&c, &i.to_string())).collect();
    env.log.publish(&batch).await.expect("publish");
    let first = env
        .log
        .read(&[sub(&c, Start::Beginning)], 3)
        .await
        .expect("read");
    assert_eq!(summary(&first), ["r#1=1", "r#2=2", "r#3=3"]);
    assert!(first.more);
    let token = first.cursor().encode();
    let cursor = Cursor::decode(&token).expect("decode");
    let subs = Subscription::from_cursor(std::slice::from_ref(&c), Some(&cursor));
    let second = env.log.read(&subs, 10).await.expect("read");
    assert_eq!(summary(&second), ["r#4=4", "r#5=5"]);
    let third = env
        .log
        .read(&second.next_subscriptions(), 10)
        .await
        .expect("read");
    assert!(third.events.is_empty());
    assert_eq!(third.positions, second.positions);
    env.log.publish(&[msg(&c, "6")]).await.expect("publish");
    let fourth = env
        .log
        .read(&third.next_subscriptions(), 10)
        .await
        .expect("read");
    assert_eq!(summary(&fourth), ["r#6=6"]);
}

async fn missing_channel_in_cursor_means_from_now<L: Log>(env: &Env<L>) {
    let (a, b) = (env.ch("a"), env.ch("b"));
    env.log
        .publish(&[msg(&a, "1"), msg(&b, "1"), msg(&b, "2")])
        .await
        .expect("publish");
    let mut cursor = Cursor::new();
    cursor.set(&a, Position::default());
    cursor.set(&env.ch("not-requested"), Position::default());
    let subs = Subscription::from_cursor(&[a.clone(), b.clone()], Some(&cursor));
    let read = env.log.read(&subs, 10).await.expect("read");
    assert_eq!(summary(&read), ["a#1=1"]);
    assert_eq!(read.positions[1].1.seq, 2, "b starts at its head");
    assert_eq!(read.positions.len(), 2);
}

async fn first_message_of_new_channel_needs_no_reset<L: Log>(env: &Env<L>) {
    let c = env.ch("new");
    let now = env
        .log
        .read(&[sub(&c, Start::Now)], 10)
        .await
        .expect("read");
    assert_eq!(now.positions[0].1, Position::default());
    env.log.publish(&[msg(&c, "1")]).await.expect("publish");
    let read = env
        .log
        .read(&now.next_subscriptions(), 10)
        .await
        .expect("read");
    assert_eq!(summary(&read), ["new#1=1"]);
}

async fn resets_when_count_retention_dropped_messages<L: Log>(env: &Env<L>) {
    let c = env.ch("ret");
    let first = env.log.publish(&[msg(&c, "1")]).await.expect("publish");
    let batch: Vec<_> = (2..=12).map(|i| msg(&c, &i.to_string())).collect();
    env.log.publish(&batch).await.expect("publish");
    let from = Position {
        epoch: first[0].epoch.clone(),
        seq: 2,
    };
    let read = env
        .log
        .read(&[sub(&c, Start::After(from))], 100)
        .await
        .expect("read");
    assert_eq!(
        summary(&read),
        [
            "ret:R8",
            "ret#8=8",
            "ret#9=9",
            "ret#10=10",
            "ret#11=11",
            "ret#12=12"
        ]
    );
    let all = env
        .log
        .read(&[sub(&c, Start::Beginning)], 100)
        .await
        .expect("read");
    assert_eq!(all.message_count(), 5);
    assert!(matches!(&all.events[0], Event::Message(m) if m.seq == 8));
}

async fn resets_when_messages_expired<L: Log>(env: &Env<L>) {
    let c = env.ch("age");
    let first = env
        .log
        .publish(&[msg(&c, "1"), msg(&c, "2"), msg(&c, "3")])
        .await
        .expect("publish");
    env.clock.advance(Duration::from_secs(11));
    env.log
        .publish(&[msg(&c, "4"), msg(&c, "5")])
        .await
        .expect("publish");
    let from = Position {
        epoch: first[0].epoch.clone(),
        seq: 1,
    };
    let read = env
        .log
        .read(&[sub(&c, Start::After(from.clone()))], 100)
        .await
        .expect("read");
    assert_eq!(summary(&read), ["age:R4", "age#4=4", "age#5=5"]);
    // All expired: a reset to the next seq, position at the head.
    env.clock.advance(Duration::from_secs(11));
    let read = env
        .log
        .read(&[sub(&c, Start::After(from))], 100)
        .await
        .expect("read");
    assert_eq!(summary(&read), ["age:R6"]);
    assert_eq!(read.positions[0].1.seq, 5);
}

async fn resets_when_epoch_differs<L: Log>(env: &Env<L>) {
    let c = env.ch("ep");
    let p = env
        .log
        .publish(&[msg(&c, "1"), msg(&c, "2")])
        .await
        .expect("publish");
    let stale = Position {
        epoch: Epoch("zzzzzzzz".into()),
        seq: 1,
    };
    let read = env
        .log
        .read(&[sub(&c, Start::After(stale))], 100)
        .await
        .expect("read");
    assert_eq!(summary(&read), ["ep:R1", "ep#1=1", "ep#2=2"]);
    assert!(matches!(&read.events[0], Event::Reset { epoch, .. } if *epoch == p[0].epoch));
    assert_eq!(read.positions[0].1.epoch, p[0].epoch);
}

async fn resets_when_cursor_is_ahead<L: Log>(env: &Env<L>) {
    let c = env.ch("ahead");
    let p = env.log.publish(&[msg(&c, "1")]).await.expect("publish");
    let ahead = Position {
        epoch: p[0].epoch.clone(),
        seq: 100,
    };
    let read = env
        .log
        .read(&[sub(&c, Start::After(ahead))], 100)
        .await
        .expect("read");
    assert_eq!(summary(&read), ["ahead:R2"]);
    assert_eq!(read.positions[0].1.seq, 1);
}

async fn history_returns_retained_since<L: Log>(env: &Env<L>) {
    let c = env.ch("h");
    let batch: Vec<_> = (1..=8).map(|i| msg(&c, &i.to_string())).collect();
    env.log.publish(&batch).await.expect("publish");
    let (msgs, pos) = env.log.history(&c, 5, 2).await.expect("history");
    assert_eq!(msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), [6, 7]);
    assert_eq!(pos.seq, 7);
    // Since 0: only the retained window (4..8), without a reset.
    let (msgs, pos) = env.log.history(&c, 0, 100).await.expect("history");
    assert_eq!(
        msgs.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [4, 5, 6, 7, 8]
    );
    assert_eq!(pos.seq, 8);
    assert_eq!(
        msgs[0].to_json(),
        format!(
            r#"{{"channel":"{c}","seq":4,"epoch":"{}","data":4,"time":{}}}"#,
            msgs[0].epoch.as_str(),
            msgs[0].time
        )
    );
}

async fn info_reports_retained_range<L: Log>(env: &Env<L>) {
    let c = env.ch("info");
    let empty = env.log.info(&c).await.expect("info");
    assert_eq!(
        (empty.last_seq, empty.retained_count, empty.first_seq),
        (0, 0, 1)
    );
    assert!(empty.epoch.is_empty());
    let batch: Vec<_> = (1..=7).map(|i| msg(&c, &i.to_string())).collect();
    let p = env.log.publish(&batch).await.expect("publish");
    let info = env.log.info(&c).await.expect("info");
    assert_eq!(info.epoch, p[0].epoch);
    assert_eq!(
        (info.last_seq, info.retained_count, info.first_seq),
        (7, 5, 3)
    );
}

async fn limit_spans_channels_in_request_order<L: Log>(env: &Env<L>) {
    let (a, b) = (env.ch("a"), env.ch("b"));
    env.log
        .publish(&[msg(&a, "1"), msg(&a, "2"), msg(&b, "1"), msg(&b, "2")])
        .await
        .expect("publish");
    let subs = [sub(&a, Start::Beginning), sub(&b, Start::Beginning)];
    let read = env.log.read(&subs, 3).await.expect("read");
    assert_eq!(summary(&read), ["a#1=1", "a#2=2", "b#1=1"]);
    assert!(read.more);
    let rest = env
        .log
        .read(&read.next_subscriptions(), 3)
        .await
        .expect("read");
    assert_eq!(summary(&rest), ["b#2=2"]);
}

async fn heads_track_last_seq<L: Log>(env: &Env<L>) {
    let (a, b) = (env.ch("a"), env.ch("b"));
    env.log
        .publish(&[msg(&a, "1"), msg(&a, "2"), msg(&b, "1")])
        .await
        .expect("publish");
    let heads = env
        .log
        .heads(&[a.clone(), b.clone(), env.ch("none")])
        .await
        .expect("heads");
    assert_eq!(heads, [2, 1, 0]);
}
