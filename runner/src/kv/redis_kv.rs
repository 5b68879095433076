//! A key-value store kept in Redis, so many runners (and real Spin) can share it.
//!
//! One multiplexed connection per store serves every guest; atomic operations are single
//! commands (`INCRBY`) or Lua scripts (compare-and-swap), so they stay atomic across runners.

use std::sync::{Arc, LazyLock};

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

use super::{KvError, parse_counter};

/// Compare-and-swap in one atomic step. ARGV[1] = "1" when a current value is expected.
static CAS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"local cur = redis.call('GET', KEYS[1])
          if ARGV[1] == '1' then
            if cur ~= ARGV[2] then return 0 end
          elseif cur then
            return 0
          end
          redis.call('SET', KEYS[1], ARGV[3])
          return 1",
    )
});

/// A handle on a Redis-backed store.
#[derive(Clone)]
pub struct RedisKv {
    conn: MultiplexedConnection,
    url: Arc<str>,
}

impl RedisKv {
    /// Connects to `url` (`redis://host:port/db`).
    ///
    /// # Errors
    /// The URL is invalid or Redis is unreachable.
    pub async fn connect(url: &str) -> Result<Self, KvError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_multiplexed_async_connection().await?;
        Ok(Self {
            conn,
            url: url.into(),
        })
    }

    /// The server URL, for logs.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// See [`super::KvStore::get`].
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.conn.clone().get(key).await?)
    }

    /// See [`super::KvStore::set`].
    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let () = self.conn.clone().set(key, value).await?;
        Ok(())
    }

    /// See [`super::KvStore::delete`].
    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        let _: i64 = self.conn.clone().del(key).await?;
        Ok(())
    }

    /// See [`super::KvStore::exists`].
    pub async fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.conn.clone().exists(key).await?)
    }

    /// See [`super::KvStore::keys`]. Uses `SCAN`, never `KEYS`, so a big database is not blocked.
    pub async fn keys(&self) -> Result<Vec<String>, KvError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        Ok(keys)
    }

    /// See [`super::KvStore::increment`].
    pub async fn increment(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        let mut conn = self.conn.clone();
        match conn.incr::<_, _, i64>(key, delta).await {
            Ok(v) => Ok(v),
            Err(e)
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError) =>
            {
                // Redis says "value is not an integer": report it like the embedded store does.
                let current: Option<Vec<u8>> = conn.get(key).await?;
                parse_counter(key, current.as_deref())?;
                Err(e.into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// See [`super::KvStore::compare_and_swap`].
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, KvError> {
        let mut conn = self.conn.clone();
        let (flag, old): (&str, &[u8]) = match expected {
            Some(old) => ("1", old),
            None => ("0", b""),
        };
        let swapped: i64 = CAS
            .key(key)
            .arg(flag)
            .arg(old)
            .arg(new)
            .invoke_async(&mut conn)
            .await?;
        Ok(swapped == 1)
    }

    /// See [`super::KvStore::get_many`].
    pub async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, KvError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // One pipelined round trip of GETs rather than MGET, so keys in different Redis Cluster
        // slots never meet in one command.
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.get(k);
        }
        Ok(pipe.query_async(&mut self.conn.clone()).await?)
    }

    /// See [`super::KvStore::set_many`].
    pub async fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), KvError> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (k, v) in pairs {
            pipe.set(k, v).ignore();
        }
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }

    /// See [`super::KvStore::delete_many`].
    pub async fn delete_many(&self, keys: &[String]) -> Result<(), KvError> {
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.del(k).ignore();
        }
        let () = pipe.query_async(&mut self.conn.clone()).await?;
        Ok(())
    }
}
