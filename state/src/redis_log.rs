//! The channel log on Redis (or Valkey), one Lua script per channel operation.
//!
//! # Key layout (hash-tagged: all keys of a channel live in one cluster slot)
//!
//! | key | type | value |
//! | --- | --- | --- |
//! | `comet:{<ch>}:meta` | string | the epoch |
//! | `comet:{<ch>}:seq` | string | the head counter (`INCR`) |
//! | `comet:{<ch>}:log` | sorted set | score = seq, member = `<seq>:<time>:<id len>:<id><data>` |
//! | `comet:{<ch>}:id:<id>` | string | `<seq>:<time>` of the message that carried the id (`PX` = max age) |
//!
//! A script runs atomically, so publishing (`INCR` + `ZADD`) can never leave a hole; there
//! are no tombstones here. A multi-channel batch is one script call per channel: no script
//! touches two slots. All keys of a channel expire after twice the max age of inactivity; a
//! channel recreated after that has a new epoch, so old cursors get an explicit `reset`.

use crate::channel::Channel;
use crate::config::{LogConfig, Retention};
use crate::cursor::Position;
use crate::envelope::{Envelope, Epoch, NewMessage, Published, Stored};
use crate::error::{StateError, StoreError};
use crate::log::{self, Batch, ChannelInfo, ChannelRead, Log, RawLog, Slot, Subscription};
use crate::script::{Script, as_bytes, as_int};
use crate::store::{Clock, RedisArg, RedisOps, RedisValue};

/// Publish some messages of one channel. Returns a flat array:
/// `epoch, (seq, duplicate 0/1, time) per message`.
const PUBLISH: &str = r#"
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[2], epoch)
end
local now = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
local maxage = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local out = {epoch}
for i = 1, n do
  local idk = tonumber(ARGV[4 + 2 * i])
  local body = ARGV[5 + 2 * i]
  local prev = false
  if idk > 0 then prev = redis.call('GET', KEYS[idk]) end
  if prev then
    local s, t = string.match(prev, '^(%d+):(%d+)$')
    out[#out + 1] = tonumber(s)
    out[#out + 1] = 1
    out[#out + 1] = tonumber(t)
  else
    local seq = redis.call('INCR', KEYS[1])
    redis.call('ZADD', KEYS[3], seq, seq .. ':' .. body)
    if idk > 0 then
      redis.call('SET', KEYS[idk], seq .. ':' .. ARGV[2], 'PX', maxage)
    end
    out[#out + 1] = seq
    out[#out + 1] = 0
    out[#out + 1] = now
  end
end
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
if head > count then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', head - count)
end
-- Age trim, bounded per publish: drop at most 16 of the oldest expired entries.
local cutoff = now - maxage
for _ = 1, 16 do
  local first = redis.call('ZRANGE', KEYS[3], 0, 0)
  if #first == 0 then break end
  local t = tonumber(string.match(first[1], '^%d+:(%d+):'))
  if t and t < cutoff then
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, 0)
  else
    break
  end
end
for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], maxage * 2) end
return out
"#;

/// Read after a seq. Returns a flat array: `epoch ('' if none), head, member*`.
const READ: &str = r#"
local epoch = redis.call('GET', KEYS[2]) or ''
local head = tonumber(redis.call('GET', KEYS[1]) or '0')
local out = {epoch, head}
local limit = tonumber(ARGV[2])
if limit > 0 then
  local items = redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[1], '+inf', 'LIMIT', 0, limit)
  for _, m in ipairs(items) do out[#out + 1] = m end
end
return out
"#;

/// A channel log on a [`RedisOps`] connection.
#[derive(Debug)]
pub struct RedisLog<R, C> {
    redis: R,
    clock: C,
    config: LogConfig,
    publish: Script,
    read: Script,
    cluster: bool,
}

fn key(channel: &Channel, suffix: &str) -> String {
    format!("comet:{{{channel}}}:{suffix}")
}

fn corrupt(channel: &Channel, reason: &str) -> StateError {
    StateError::Corrupt {
        key: key(channel, "log"),
        reason: reason.to_owned(),
    }
}

impl<R: RedisOps, C: Clock> RedisLog<R, C> {
    /// A log over `redis`, using `clock` for time and epochs.
    pub fn new(redis: R, clock: C, config: LogConfig) -> Self {
        Self {
            redis,
            clock,
            config,
            publish: Script::new(PUBLISH),
            read: Script::new(READ),
            cluster: false,
        }
    }

    /// Declares that Redis is a Cluster: watchers then read heads with one `GET` per channel
    /// (channels live in different slots). On a single node (the default) one `MGET` reads
    /// every watched head, so an idle watcher costs one command per tick, not one per channel.
    pub fn cluster(mut self, yes: bool) -> Self {
        self.cluster = yes;
        self
    }

    /// The underlying connection.
    pub fn connection(&self) -> &R {
        &self.redis
    }

    async fn publish_channel(
        &self,
        channel: &Channel,
        messages: &[&NewMessage],
    ) -> Result<Vec<Published>, StateError> {
        let retention = self.config.retention_for(channel);
        let now = self.clock.now_ms();
        let mut keys = vec![
            key(channel, "seq"),
            key(channel, "meta"),
            key(channel, "log"),
        ];
        let epoch = Epoch::from_random(&self.clock.random_bytes(6));
        let mut args = vec![
            RedisArg::from(epoch.as_str()),
            RedisArg::Int(i64::try_from(now).unwrap_or(i64::MAX)),
            RedisArg::Int(i64::try_from(retention.count).unwrap_or(i64::MAX)),
            RedisArg::Int(
                i64::try_from(retention.max_age_ms())
                    .unwrap_or(i64::MAX)
                    .max(1),
            ),
            RedisArg::Int(messages.len() as i64),
        ];
        for m in messages {
            let idk = match &m.id {
                Some(id) => {
                    keys.push(key(channel, &format!("id:{id}")));
                    keys.len() as i64
                }
                None => 0,
            };
            let stored = Stored {
                time: now,
                id: m.id.clone(),
                data: m.data.clone(),
            };
            args.push(RedisArg::Int(idk));
            args.push(RedisArg::Bytes(stored.encode()));
        }
        let reply = self.publish.run(&self.redis, keys, args).await?;
        let (epoch, rest) = reply
            .split_first()
            .ok_or_else(|| corrupt(channel, "empty publish reply"))?;
        let epoch = Epoch(
            as_bytes(epoch)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        );
        if rest.len() != messages.len() * 3 {
            return Err(corrupt(channel, "publish reply of unexpected length"));
        }
        rest.chunks(3)
            .map(|c| {
                let int = |v: &RedisValue| {
                    as_int(v)
                        .and_then(|n| u64::try_from(n).ok())
                        .ok_or_else(|| corrupt(channel, "non-integer in publish reply"))
                };
                Ok(Published {
                    channel: channel.clone(),
                    seq: int(&c[0])?,
                    epoch: epoch.clone(),
                    duplicate: int(&c[1])? == 1,
                    time: int(&c[2])?,
                })
            })
            .collect()
    }
}

/// Parses a log member `<seq>:<stored>`.
fn parse_member(bytes: &[u8]) -> Option<(u64, Slot)> {
    let colon = bytes.iter().position(|b| *b == b':')?;
    let seq = std::str::from_utf8(&bytes[..colon]).ok()?.parse().ok()?;
    let slot = Stored::decode(&bytes[colon + 1..]).map_or(Slot::Lost, Slot::Message);
    Some((seq, slot))
}

impl<R: RedisOps, C: Clock> RawLog for RedisLog<R, C> {
    async fn read_channel(
        &self,
        channel: &Channel,
        after: u64,
        limit: usize,
    ) -> Result<ChannelRead, StateError> {
        let keys = vec![
            key(channel, "seq"),
            key(channel, "meta"),
            key(channel, "log"),
        ];
        let args = vec![
            RedisArg::from(after.to_string()),
            RedisArg::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
        ];
        let reply = self.read.run(&self.redis, keys, args).await?;
        let [epoch, head, members @ ..] = reply.as_slice() else {
            return Err(corrupt(channel, "short read reply"));
        };
        let epoch = Epoch(
            as_bytes(epoch)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        );
        let head = as_int(head)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| corrupt(channel, "head is not a counter"))?;
        let mut slots = Vec::with_capacity(members.len());
        for m in members {
            let parsed = as_bytes(m).and_then(parse_member);
            slots.push(parsed.ok_or_else(|| corrupt(channel, "unparsable member"))?);
        }
        let complete = match slots.last() {
            Some((seq, _)) => *seq >= head || slots.len() < limit,
            None => limit > 0 || head <= after,
        };
        Ok(ChannelRead {
            epoch,
            head,
            slots,
            complete,
        })
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn retention(&self, channel: &Channel) -> Retention {
        self.config.retention_for(channel)
    }
}

impl<R: RedisOps, C: Clock> Log for RedisLog<R, C> {
    async fn publish(&self, messages: &[NewMessage]) -> Result<Vec<Published>, StateError> {
        // One script per channel (one slot each), preserving the caller's order per channel.
        let mut order: Vec<&Channel> = Vec::new();
        for m in messages {
            if !order.contains(&&m.channel) {
                order.push(&m.channel);
            }
        }
        let mut results: Vec<Option<Published>> = vec![None; messages.len()];
        for channel in order {
            let (idx, group): (Vec<usize>, Vec<&NewMessage>) = messages
                .iter()
                .enumerate()
                .filter(|(_, m)| &m.channel == channel)
                .unzip();
            for (i, p) in idx
                .into_iter()
                .zip(self.publish_channel(channel, &group).await?)
            {
                results[i] = Some(p);
            }
        }
        results
            .into_iter()
            .map(|p| p.ok_or_else(|| StoreError::new("publish reply missing a message").into()))
            .collect()
    }

    async fn read(
        &self,
        subscriptions: &[Subscription],
        limit: usize,
    ) -> Result<Batch, StateError> {
        log::read(self, subscriptions, limit).await
    }

    async fn history(
        &self,
        channel: &Channel,
        since: u64,
        limit: usize,
    ) -> Result<(Vec<Envelope>, Position), StateError> {
        log::history(self, channel, since, limit).await
    }

    async fn info(&self, channel: &Channel) -> Result<ChannelInfo, StateError> {
        log::info(self, channel).await
    }

    async fn heads(&self, channels: &[Channel]) -> Result<Vec<u64>, StateError> {
        if !self.cluster && channels.len() > 1 {
            let keys = channels
                .iter()
                .map(|c| RedisArg::from(key(c, "seq")))
                .collect();
            let reply = self.redis.execute("MGET", keys).await?;
            return Ok((0..channels.len())
                .map(|i| {
                    reply
                        .get(i)
                        .and_then(as_int)
                        .and_then(|n| u64::try_from(n).ok())
                        .unwrap_or(0)
                })
                .collect());
        }
        // Cluster: one GET per channel (no cross-slot MGET), issued concurrently.
        let gets = channels.iter().map(|c| {
            self.redis
                .execute("GET", vec![RedisArg::from(key(c, "seq"))])
        });
        let replies = futures::future::join_all(gets).await;
        replies
            .into_iter()
            .map(|r| {
                Ok(r?
                    .first()
                    .and_then(as_int)
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0))
            })
            .collect()
    }

    fn head_ops(&self, channels: usize) -> u64 {
        if self.cluster {
            channels as u64
        } else {
            channels.min(1) as u64
        }
    }
}
