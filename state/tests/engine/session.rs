//! Sessions on MemoryKv and on Redis (through `RedisKv`).

use std::collections::HashSet;
use std::time::Duration;

use comet_state::{
    Channel, Epoch, KvOps, MemoryKv, Opened, Position, RedisKv, SessionConfig, SessionId, Sessions,
};

use crate::support::{RealRedis, TestClock, unique_prefix};

async fn lifecycle<K: KvOps>(kv: K) {
    let clock = TestClock::default();
    let sessions = Sessions::new(kv, clock.clone(), SessionConfig::default());
    let id = sessions.create().await.expect("create");
    assert_eq!(id.as_str().len(), 22);
    assert_eq!(SessionId::parse(id.as_str()).expect("parse"), id);
    assert_eq!(id.queue_channel().as_str(), format!("$s:{}", id.as_str()));
    assert!(id.queue_channel().is_internal());

    let p = unique_prefix();
    let (a, b) = (
        Channel::new(&format!("{p}-a")).expect("valid"),
        Channel::new(&format!("{p}-b")).expect("valid"),
    );
    let pos = |seq| Position {
        epoch: Epoch("e".into()),
        seq,
    };
    assert!(
        sessions
            .subscribe(&id, &[(a.clone(), pos(1)), (b.clone(), pos(2))])
            .await
            .expect("subscribe")
    );
    assert!(
        sessions
            .advance(&id, &[(a.clone(), pos(5))])
            .await
            .expect("advance")
    );
    assert!(
        sessions
            .unsubscribe(&id, std::slice::from_ref(&b))
            .await
            .expect("unsubscribe")
    );
    let s = sessions.get(&id).await.expect("get").expect("exists");
    assert_eq!(s.positions(), vec![(a.clone(), pos(5))]);

    // One receiver at a time; the lease expires; the holder can renew and release.
    assert!(
        sessions
            .acquire_lease(&id, "r1", Duration::from_secs(10))
            .await
            .expect("lease")
    );
    assert!(
        !sessions
            .acquire_lease(&id, "r2", Duration::from_secs(10))
            .await
            .expect("lease")
    );
    assert!(
        sessions
            .acquire_lease(&id, "r1", Duration::from_secs(10))
            .await
            .expect("renew")
    );
    sessions.release_lease(&id, "r2").await.expect("release");
    assert!(
        !sessions
            .acquire_lease(&id, "r2", Duration::from_secs(10))
            .await
            .expect("lease")
    );
    sessions.release_lease(&id, "r1").await.expect("release");
    assert!(
        sessions
            .acquire_lease(&id, "r2", Duration::from_secs(1))
            .await
            .expect("lease")
    );
    clock.advance(Duration::from_secs(2));
    assert!(
        sessions
            .acquire_lease(&id, "r3", Duration::from_secs(1))
            .await
            .expect("expired")
    );
    sessions.release_lease(&id, "r3").await.expect("release");

    // Alive while polled within disconnect delay + grace (5 s + 5 s).
    assert!(sessions.is_alive(&id).await.expect("alive"));
    clock.advance(Duration::from_secs(11));
    assert!(!sessions.is_alive(&id).await.expect("alive"));
    assert!(sessions.touch(&id).await.expect("touch"));
    assert!(sessions.is_alive(&id).await.expect("alive"));
    // A held lease keeps it alive without touches.
    assert!(
        sessions
            .acquire_lease(&id, "held", Duration::from_secs(60))
            .await
            .expect("lease")
    );
    clock.advance(Duration::from_secs(30));
    assert!(sessions.is_alive(&id).await.expect("alive"));

    sessions.close(&id).await.expect("close");
    assert!(!sessions.is_alive(&id).await.expect("alive"));
    assert!(sessions.get(&id).await.expect("get").expect("kept").closed);

    let unknown = SessionId::parse("AAAAAAAAAAAAAAAAAAAAAA").expect("shape");
    assert!(!sessions.touch(&unknown).await.expect("touch"));
    assert!(!sessions.is_alive(&unknown).await.expect("alive"));
}

#[tokio::test(flavor = "current_thread")]
async fn session_lifecycle_on_kv() {
    lifecycle(MemoryKv::new()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn session_lifecycle_on_redis() {
    lifecycle(RedisKv::new(RealRedis::connect().await)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn session_ids_are_unique_and_validated() {
    let sessions = Sessions::new(
        MemoryKv::new(),
        TestClock::default(),
        SessionConfig::default(),
    );
    let mut ids = HashSet::new();
    for _ in 0..200 {
        assert!(ids.insert(sessions.create().await.expect("create")));
    }
    for bad in ["", "short", "AAAAAAAAAAAAAAAAAAAAA!", &"A".repeat(23)] {
        assert!(SessionId::parse(bad).is_err(), "{bad:?}");
    }
}

/// SockJS's session life: a receive opens (creates) a client-named session, a live one is
/// found again, a closed one repeats its close frame until the disconnect delay passes, and a
/// timed-out one starts over empty.
async fn open_close_and_time_out<K: KvOps>(kv: K) {
    let clock = TestClock::default();
    let sessions = Sessions::new(kv, clock.clone(), SessionConfig::default());
    let id = SessionId::from_client(&format!("c{}", unique_prefix().replace(['.', ':'], "_")))
        .expect("client id");
    let queue = id.queue_channel();
    let start = Position {
        epoch: Epoch(String::new()),
        seq: 0,
    };
    let opened = sessions
        .open(&id, &[(queue.clone(), start.clone())])
        .await
        .expect("open");
    let Opened::Created(record) = opened else {
        panic!("expected a new session, got {opened:?}");
    };
    assert_eq!(record.positions(), vec![(queue.clone(), start.clone())]);

    let moved = Position {
        epoch: Epoch("e".into()),
        seq: 3,
    };
    assert!(
        sessions
            .advance(&id, &[(queue.clone(), moved.clone())])
            .await
            .expect("advance")
    );
    clock.advance(Duration::from_secs(4));
    match sessions.open(&id, &[]).await.expect("open") {
        Opened::Existing(s) => assert_eq!(s.positions(), vec![(queue.clone(), moved.clone())]),
        other => panic!("expected the live session, got {other:?}"),
    }

    // A receiver holding the lease keeps it alive past the window.
    assert!(
        sessions
            .acquire_lease(&id, "r1", Duration::from_secs(60))
            .await
            .expect("lease")
    );
    clock.advance(Duration::from_secs(30));
    assert!(matches!(
        sessions.open(&id, &[]).await.expect("open"),
        Opened::Existing(_)
    ));
    sessions.release_lease(&id, "r1").await.expect("release");

    let private = Channel::new("private-x").expect("name");
    assert!(
        sessions
            .subscribe(&id, &[(private.clone(), start.clone())])
            .await
            .expect("subscribe")
    );
    assert!(
        sessions
            .set_token_expiry(&id, &private, Some(42))
            .await
            .expect("expiry")
    );
    let record = sessions.get(&id).await.expect("get").expect("exists");
    assert_eq!(record.token_expiry.get("private-x"), Some(&42));
    assert!(
        sessions
            .unsubscribe(&id, std::slice::from_ref(&private))
            .await
            .expect("unsubscribe")
    );
    let record = sessions.get(&id).await.expect("get").expect("exists");
    assert!(record.token_expiry.is_empty());
    assert!(!record.positions().iter().any(|(c, _)| *c == private));

    sessions
        .close_with(&id, 3000, "Go away!")
        .await
        .expect("close");
    assert_eq!(
        sessions.open(&id, &[]).await.expect("open"),
        Opened::Closed(3000, "Go away!".into())
    );
    clock.advance(Duration::from_secs(11));
    match sessions
        .open(&id, &[(queue.clone(), start.clone())])
        .await
        .expect("open")
    {
        Opened::Created(s) => {
            assert!(!s.closed);
            assert_eq!(s.positions(), vec![(queue, start)]);
        }
        other => panic!("expected a fresh session after the delay, got {other:?}"),
    }

    // Not polled within disconnect delay + grace: starts over too.
    clock.advance(Duration::from_secs(11));
    assert!(matches!(
        sessions.open(&id, &[]).await.expect("open"),
        Opened::Created(_)
    ));
}

#[tokio::test(flavor = "current_thread")]
async fn sockjs_sessions_open_close_and_time_out_on_kv() {
    open_close_and_time_out(MemoryKv::new()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn sockjs_sessions_open_close_and_time_out_on_redis() {
    open_close_and_time_out(RedisKv::new(RealRedis::connect().await)).await;
}

#[test]
fn client_session_ids_are_validated() {
    for good in [
        "000",
        "a",
        "abcdefgh",
        "f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        &"x".repeat(64),
    ] {
        assert!(SessionId::from_client(good).is_ok(), "{good:?}");
    }
    for bad in ["", "a.b", "a/b", "a b", "{x}", &"x".repeat(65)] {
        assert!(SessionId::from_client(bad).is_err(), "{bad:?}");
    }
}
