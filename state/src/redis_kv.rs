//! [`KvOps`] over [`RedisOps`], so sessions (written against `KvOps`) also run on Redis.

use std::time::Duration;

use crate::error::StoreError;
use crate::script::{Script, as_bytes, as_int};
use crate::store::{KvOps, RedisArg, RedisOps, RedisValue};

/// Compare-and-swap; keeps the key's TTL (`KEEPTTL`, Redis ≥ 6.0).
const CAS: &str = r#"
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur ~= ARGV[2] then return 0 end
elseif cur then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
return 1
"#;

/// Key-value operations on Redis: plain commands, CAS by script, TTLs for `expire_hint`.
///
/// `get_many` issues one `GET` per key (concurrently) rather than `MGET`, because the keys
/// may live in different cluster slots.
#[derive(Debug)]
pub struct RedisKv<R> {
    redis: R,
    cas: Script,
}

impl<R: RedisOps> RedisKv<R> {
    /// Wraps a connection.
    pub fn new(redis: R) -> Self {
        Self {
            redis,
            cas: Script::new(CAS),
        }
    }
}

fn first_bytes(reply: Vec<RedisValue>) -> Option<Vec<u8>> {
    reply.first().and_then(as_bytes).map(<[u8]>::to_vec)
}

impl<R: RedisOps> KvOps for RedisKv<R> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(first_bytes(
            self.redis.execute("GET", vec![key.into()]).await?,
        ))
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.redis
            .execute("SET", vec![key.into(), RedisArg::Bytes(value.to_vec())])
            .await
            .map(drop)
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.redis.execute("DEL", vec![key.into()]).await.map(drop)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let gets = keys.iter().map(|k| self.get(k));
        futures::future::join_all(gets).await.into_iter().collect()
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        let reply = self
            .redis
            .execute("INCRBY", vec![key.into(), RedisArg::Int(delta)])
            .await?;
        reply
            .first()
            .and_then(as_int)
            .ok_or_else(|| StoreError::new(format!("INCRBY {key:?} returned no integer")))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        let args = vec![
            RedisArg::from(if expected.is_some() { "1" } else { "0" }),
            RedisArg::Bytes(expected.unwrap_or_default().to_vec()),
            RedisArg::Bytes(new.to_vec()),
        ];
        let reply = self
            .cas
            .run(&self.redis, vec![key.to_owned()], args)
            .await?;
        Ok(reply.first().and_then(as_int) == Some(1))
    }

    async fn expire_hint(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        self.redis
            .execute("PEXPIRE", vec![key.into(), RedisArg::Int(ms)])
            .await
            .map(drop)
    }
}
