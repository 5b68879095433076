//! Test doubles: a controllable clock, a `RedisOps` over the `redis` crate, environments.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use comet_state::{
    Channel, Clock, KvLog, LogConfig, MemoryKv, RedisArg, RedisLog, RedisOps, RedisValue,
    StoreError,
};
use rand::RngCore as _;

/// Real time plus an adjustable offset (to age messages without waiting), real sleeps.
#[derive(Debug, Clone, Default)]
pub struct TestClock {
    offset_ms: Rc<Cell<u64>>,
}

impl TestClock {
    pub fn advance(&self, d: Duration) {
        self.offset_ms
            .set(self.offset_ms.get() + d.as_millis() as u64);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as u64;
        real + self.offset_ms.get()
    }

    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    fn random_bytes(&self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        rand::rng().fill_bytes(&mut v);
        v
    }
}

/// `RedisOps` over one multiplexed connection, flattening nested replies like Spin does.
pub struct RealRedis {
    conn: redis::aio::MultiplexedConnection,
}

/// A throw-away Redis of this test process (or `COMET_TEST_REDIS_URL`).
pub fn redis_url() -> String {
    comet_test_services::redis_url().to_string()
}

impl RealRedis {
    pub async fn connect() -> Self {
        let url = redis_url();
        let client = redis::Client::open(url.as_str()).expect("valid redis url");
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to the test Redis at {url}: {e}"));
        Self { conn }
    }
}

fn flatten(v: redis::Value, out: &mut Vec<RedisValue>) {
    use redis::Value as V;
    match v {
        V::Nil => out.push(RedisValue::Nil),
        V::Int(n) => out.push(RedisValue::Int(n)),
        V::BulkString(b) => out.push(RedisValue::Bytes(b)),
        V::SimpleString(s) => out.push(RedisValue::Status(s)),
        V::Okay => out.push(RedisValue::Status("OK".into())),
        V::Array(items) | V::Set(items) => items.into_iter().for_each(|i| flatten(i, out)),
        other => out.push(RedisValue::Status(format!("{other:?}"))),
    }
}

impl RedisOps for RealRedis {
    async fn execute(
        &self,
        command: &str,
        args: Vec<RedisArg>,
    ) -> Result<Vec<RedisValue>, StoreError> {
        let mut cmd = redis::cmd(command);
        for a in args {
            match a {
                RedisArg::Int(n) => cmd.arg(n),
                RedisArg::Bytes(b) => cmd.arg(b),
            };
        }
        let mut conn = self.conn.clone();
        let value: redis::Value = cmd
            .query_async(&mut conn)
            .await
            .map_err(|e| StoreError::new(e.to_string()))?;
        let mut out = Vec::new();
        flatten(value, &mut out);
        Ok(out)
    }
}

/// A unique channel prefix per test so tests (and runs) never share Redis keys.
pub fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!(
        "t{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A log under test with its clock and channel namespace.
pub struct Env<L> {
    pub log: L,
    pub clock: TestClock,
    pub prefix: String,
}

impl<L> Env<L> {
    pub fn ch(&self, name: &str) -> Channel {
        Channel::new(&format!("{}-{name}", self.prefix)).expect("valid test channel")
    }
}

pub type KvEnv = Env<KvLog<MemoryKv, TestClock>>;
pub type RedisEnv = Env<RedisLog<RealRedis, TestClock>>;

pub fn kv_env(config: LogConfig) -> KvEnv {
    kv_env_with(MemoryKv::new(), config)
}

pub fn kv_env_with(kv: MemoryKv, config: LogConfig) -> KvEnv {
    let clock = TestClock::default();
    Env {
        log: KvLog::new(kv, clock.clone(), config),
        clock,
        prefix: unique_prefix(),
    }
}

pub async fn redis_env(config: LogConfig) -> RedisEnv {
    let clock = TestClock::default();
    Env {
        log: RedisLog::new(RealRedis::connect().await, clock.clone(), config),
        clock,
        prefix: unique_prefix(),
    }
}
