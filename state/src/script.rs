//! Lua scripts run with `EVALSHA`, falling back to `EVAL` when Redis lost its script cache.

use crate::error::StoreError;
use crate::store::{RedisArg, RedisOps, RedisValue};

/// A Lua script and its SHA-1, computed once at construction (no `SCRIPT LOAD` round trip).
#[derive(Debug, Clone)]
pub(crate) struct Script {
    source: &'static str,
    sha: String,
}

impl Script {
    pub fn new(source: &'static str) -> Self {
        Self {
            source,
            sha: sha1_smol::Sha1::from(source).digest().to_string(),
        }
    }

    /// Runs the script with `EVALSHA`; on `NOSCRIPT` (restart, `SCRIPT FLUSH`, a new cluster
    /// node) sends the source with `EVAL`, which also caches it for the next call.
    pub async fn run<R: RedisOps>(
        &self,
        redis: &R,
        keys: Vec<String>,
        args: Vec<RedisArg>,
    ) -> Result<Vec<RedisValue>, StoreError> {
        let mut all = Vec::with_capacity(2 + keys.len() + args.len());
        all.push(RedisArg::from(self.sha.as_str()));
        all.push(RedisArg::Int(keys.len() as i64));
        all.extend(keys.into_iter().map(RedisArg::from));
        all.extend(args);
        match redis.execute("EVALSHA", all.clone()).await {
            Err(e) if e.is_noscript() => {
                all[0] = RedisArg::from(self.source);
                redis.execute("EVAL", all).await
            }
            other => other,
        }
    }
}

/// Reads an integer from a reply element (Lua numbers arrive as integers, `GET` as bytes).
pub(crate) fn as_int(v: &RedisValue) -> Option<i64> {
    match v {
        RedisValue::Int(n) => Some(*n),
        RedisValue::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        RedisValue::Status(s) => s.parse().ok(),
        RedisValue::Nil => None,
    }
}

/// Reads bytes from a reply element (`Nil` → `None`).
pub(crate) fn as_bytes(v: &RedisValue) -> Option<&[u8]> {
    match v {
        RedisValue::Bytes(b) => Some(b),
        RedisValue::Status(s) => Some(s.as_bytes()),
        RedisValue::Int(_) | RedisValue::Nil => None,
    }
}
