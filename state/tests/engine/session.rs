//! Sessions on MemoryKv and on Redis (through `RedisKv`).

use std::collections::HashSet;
use std::time::Duration;

use comet_state::{
    Channel, Epoch, KvOps, MemoryKv, Position, RedisKv, SessionConfig, SessionId, Sessions,
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
