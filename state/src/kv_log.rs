//! The channel log on Spin's key-value store.
//!
//! # Key layout (channel names never contain `{` or `}`, so keys cannot collide)
//!
//! | key | value |
//! | --- | --- |
//! | `comet:{<ch>}:meta` | the epoch, written once with compare-and-swap "if absent" |
//! | `comet:{<ch>}:seq` | the head: a counter, only touched through `increment` |
//! | `comet:{<ch>}:m:<seq>` | a message ([`Stored`] encoding) or the tombstone `~` |
//! | `comet:{<ch>}:id:<id>` | publisher idempotency id → the decimal seq that holds it |
//!
//! # Why concurrent publishers neither lose, duplicate nor reorder
//!
//! * A publisher reserves `n` with an atomic `increment` of the head: no two publishers get
//!   the same `n`, and `n` orders publishes by reservation.
//! * It then writes `m:n` with compare-and-swap "if absent" and acknowledges only if that
//!   succeeded. A reader that finds the head at `n` but `m:n` missing stops before `n` (the
//!   publish is in flight) and reads again shortly, so it never skips a message that may
//!   still be acknowledged.
//! * If `m:n` stays missing beyond [`LogConfig::missing_grace`] (a publisher crashed between
//!   the two steps), a reader writes the tombstone `~` with CAS "if absent". Exactly one of
//!   the late publisher and the reader wins that CAS: if the reader wins, the publisher
//!   retries with a fresh `n` and acknowledges that; so a hole can only stand where no publish
//!   was ever acknowledged, and subscribers never see it (tombstones are skipped silently).
//! * Whoever settles `n` (the publisher's write or the reader's tombstone) deletes `m:(n-N)`,
//!   so storage stays at about `N` messages per channel and each publish does bounded work.
//! * Idempotency: the publisher claims `id:<id>` with CAS before writing; a second publisher
//!   of the same id finds the claim and answers "duplicate" only once the claimed message is
//!   committed; if that message was tombstoned (its publisher died), it takes the claim over
//!   with CAS. Id keys are deleted with the message they point to.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use crate::channel::Channel;
use crate::config::{LogConfig, Retention};
use crate::cursor::Position;
use crate::envelope::{Envelope, Epoch, NewMessage, Published, Stored};
use crate::error::StateError;
use crate::log::{self, Batch, ChannelInfo, ChannelRead, Log, RawLog, Slot, Subscription};
use crate::store::{Clock, KvOps};

/// The value of a tombstoned sequence number.
const TOMBSTONE: &[u8] = b"~";

/// How many message keys a read fetches together with the head in its first round trip: a
/// woken waiter usually needs one or two messages, so it costs a single `get_many`.
const SPECULATIVE: u64 = 8;

/// Attempts before a compare-and-swap loop gives up with [`StateError::Contention`].
const MAX_ATTEMPTS: usize = 64;

/// A channel log on a [`KvOps`] store.
#[derive(Debug)]
pub struct KvLog<K, C> {
    kv: K,
    clock: C,
    config: LogConfig,
    /// Missing-slot first sightings, per instance: `(channel, seq) -> unix ms`. Another
    /// instance keeps its own; that only delays tombstoning, never makes it wrong.
    missing: RefCell<HashMap<(String, u64), u64>>,
}

fn key(channel: &Channel, suffix: &str) -> String {
    format!("comet:{{{channel}}}:{suffix}")
}

fn msg_key(channel: &Channel, seq: u64) -> String {
    format!("comet:{{{channel}}}:m:{seq}")
}

fn id_key(channel: &Channel, id: &str) -> String {
    format!("comet:{{{channel}}}:id:{id}")
}

/// The state of a message slot, as a publisher checking an idempotency claim sees it.
enum Claimed {
    Committed(u64),
    Dead,
    InFlight,
}

impl<K: KvOps, C: Clock> KvLog<K, C> {
    /// A log over `kv`, using `clock` for time, sleeps and epochs.
    pub fn new(kv: K, clock: C, config: LogConfig) -> Self {
        Self {
            kv,
            clock,
            config,
            missing: RefCell::new(HashMap::new()),
        }
    }

    /// The underlying store (tests inspect it).
    pub fn store(&self) -> &K {
        &self.kv
    }

    /// Reads the epoch, creating it (CAS "if absent") when the channel is first written.
    async fn ensure_epoch(&self, channel: &Channel) -> Result<Epoch, StateError> {
        let meta = key(channel, "meta");
        for _ in 0..MAX_ATTEMPTS {
            if let Some(v) = self.kv.get(&meta).await? {
                return Ok(Epoch(String::from_utf8_lossy(&v).into_owned()));
            }
            let epoch = Epoch::from_random(&self.clock.random_bytes(6));
            if self
                .kv
                .compare_and_swap(&meta, None, epoch.as_str().as_bytes())
                .await?
            {
                return Ok(epoch);
            }
        }
        Err(StateError::Contention(meta))
    }

    async fn reserve(&self, channel: &Channel) -> Result<u64, StateError> {
        let n = self.kv.increment(&key(channel, "seq"), 1).await?;
        u64::try_from(n).map_err(|_| StateError::Corrupt {
            key: key(channel, "seq"),
            reason: format!("negative counter {n}"),
        })
    }

    /// Deletes the message that falls out of count retention once `n` is settled.
    async fn trim(&self, channel: &Channel, n: u64) -> Result<(), StateError> {
        let count = self.config.retention_for(channel).count;
        if n <= count {
            return Ok(());
        }
        let old = msg_key(channel, n - count);
        if let Some(v) = self.kv.get(&old).await? {
            self.kv.delete(&old).await?;
            if let Some(id) = Stored::decode(&v).and_then(|s| s.id) {
                self.kv.delete(&id_key(channel, &id)).await?;
            }
        }
        Ok(())
    }

    /// Tombstones slot `n` if still absent; returns whether this call did it.
    async fn tombstone(&self, channel: &Channel, n: u64) -> Result<bool, StateError> {
        let done = self
            .kv
            .compare_and_swap(&msg_key(channel, n), None, TOMBSTONE)
            .await?;
        if done {
            self.trim(channel, n).await?;
        }
        Ok(done)
    }

    /// Inspects the slot an idempotency claim points at.
    async fn claimed_state(&self, channel: &Channel, m: u64) -> Result<Claimed, StateError> {
        match self.kv.get(&msg_key(channel, m)).await? {
            Some(v) if v == TOMBSTONE => Ok(Claimed::Dead),
            Some(v) => match Stored::decode(&v) {
                Some(s) => Ok(Claimed::Committed(s.time)),
                None => Ok(Claimed::Dead),
            },
            None => {
                let head =
                    u64::try_from(self.kv.get_counter(&key(channel, "seq")).await?).unwrap_or(0);
                let count = self.config.retention_for(channel).count;
                if m + count <= head {
                    Ok(Claimed::Dead) // trimmed: the claim is stale
                } else {
                    Ok(Claimed::InFlight)
                }
            }
        }
    }

    /// Makes `id` point at `n`. Returns `Some((seq, time))` of a committed original instead
    /// when the id is taken. `mine` is the claim value this publisher already owns, if any.
    async fn claim(
        &self,
        channel: &Channel,
        id: &str,
        n: u64,
        mine: &mut Option<Vec<u8>>,
    ) -> Result<Option<(u64, u64)>, StateError> {
        let idk = id_key(channel, id);
        let value = n.to_string().into_bytes();
        let mut expected = mine.clone();
        let mut try_cas = true;
        let mut attempts = 0;
        let started = self.clock.now_ms();
        let grace = duration_ms(self.config.missing_grace);
        loop {
            if try_cas {
                attempts += 1;
                if attempts > MAX_ATTEMPTS {
                    return Err(StateError::Contention(idk));
                }
                if self
                    .kv
                    .compare_and_swap(&idk, expected.as_deref(), &value)
                    .await?
                {
                    *mine = Some(value);
                    return Ok(None);
                }
            }
            try_cas = true;
            let Some(current) = self.kv.get(&idk).await? else {
                expected = None;
                continue;
            };
            let m: u64 = std::str::from_utf8(&current)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| StateError::Corrupt {
                    key: idk.clone(),
                    reason: "not a sequence number".into(),
                })?;
            match self.claimed_state(channel, m).await? {
                Claimed::Committed(time) => return Ok(Some((m, time))),
                // Take the claim over, but only from exactly this value (CAS).
                Claimed::Dead => expected = Some(current),
                Claimed::InFlight => {
                    // Another publisher of the same id is between its claim and its write:
                    // wait for it, and after the grace period settle its slot like a reader
                    // would. Terminates: after the grace the slot is committed or dead.
                    if self.clock.now_ms().saturating_sub(started) >= grace {
                        self.tombstone(channel, m).await?;
                    } else {
                        self.clock.sleep(Duration::from_millis(10)).await;
                    }
                    try_cas = false;
                }
            }
        }
    }

    async fn publish_one(
        &self,
        message: &NewMessage,
        epoch: &Epoch,
    ) -> Result<Published, StateError> {
        let channel = &message.channel;
        // Fast path for a publisher's retry: answer "duplicate" without reserving (and then
        // burning) a sequence number. The claim below stays the authority under races.
        if let Some(id) = &message.id
            && let Some(v) = self.kv.get(&id_key(channel, id)).await?
            && let Some(m) = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok())
            && let Claimed::Committed(time) = self.claimed_state(channel, m).await?
        {
            return Ok(Published {
                channel: channel.clone(),
                seq: m,
                epoch: epoch.clone(),
                time,
                duplicate: true,
            });
        }
        let mut mine: Option<Vec<u8>> = None;
        for _ in 0..MAX_ATTEMPTS {
            let n = self.reserve(channel).await?;
            if let Some(id) = &message.id
                && let Some((seq, time)) = self.claim(channel, id, n, &mut mine).await?
            {
                // Our reserved slot will never be written: settle it now so readers
                // need not wait out the grace period.
                self.tombstone(channel, n).await?;
                return Ok(Published {
                    channel: channel.clone(),
                    seq,
                    epoch: epoch.clone(),
                    time,
                    duplicate: true,
                });
            }
            let time = self.clock.now_ms();
            let stored = Stored {
                time,
                id: message.id.clone(),
                data: message.data.clone(),
            };
            if self
                .kv
                .compare_and_swap(&msg_key(channel, n), None, &stored.encode())
                .await?
            {
                self.trim(channel, n).await?;
                return Ok(Published {
                    channel: channel.clone(),
                    seq: n,
                    epoch: epoch.clone(),
                    time,
                    duplicate: false,
                });
            }
            // A reader tombstoned `n` (we were slower than the grace period): nothing was
            // acknowledged, so retry under a fresh sequence number.
        }
        Err(StateError::Contention(key(channel, "seq")))
    }

    /// Decides what a missing slot at or above the retention floor means.
    async fn settle_missing(
        &self,
        channel: &Channel,
        seq: u64,
    ) -> Result<Option<Slot>, StateError> {
        let now = self.clock.now_ms();
        let first_seen = {
            let mut missing = self.missing.borrow_mut();
            if missing.len() > 10_000 {
                missing.clear(); // bound memory; only delays tombstoning
            }
            *missing
                .entry((channel.as_str().to_owned(), seq))
                .or_insert(now)
        };
        if now.saturating_sub(first_seen) < duration_ms(self.config.missing_grace) {
            return Ok(None); // in flight: stop here and read again soon
        }
        self.missing
            .borrow_mut()
            .remove(&(channel.as_str().to_owned(), seq));
        if self.tombstone(channel, seq).await? {
            return Ok(Some(Slot::Tombstone));
        }
        // The publisher won the race after all: read what it wrote.
        Ok(self
            .kv
            .get(&msg_key(channel, seq))
            .await?
            .map(|v| decode_slot(&v)))
    }
}

fn decode_slot(v: &[u8]) -> Slot {
    if v == TOMBSTONE {
        Slot::Tombstone
    } else {
        Stored::decode(v).map_or(Slot::Lost, Slot::Message)
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl<K: KvOps, C: Clock> RawLog for KvLog<K, C> {
    async fn read_channel(
        &self,
        channel: &Channel,
        after: u64,
        limit: usize,
    ) -> Result<ChannelRead, StateError> {
        let limit = u64::try_from(limit).unwrap_or(u64::MAX);
        let speculative = limit.min(SPECULATIVE);
        let mut keys = vec![key(channel, "meta"), key(channel, "seq")];
        keys.extend((1..=speculative).map(|i| msg_key(channel, after.saturating_add(i))));
        let mut values = self.kv.get_many(&keys).await?.into_iter();
        let epoch = values
            .next()
            .flatten()
            .map(|v| Epoch(String::from_utf8_lossy(&v).into_owned()))
            .unwrap_or_default();
        let head = match values.next().flatten() {
            Some(v) => self
                .kv
                .decode_counter(&v)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(|| StateError::Corrupt {
                    key: key(channel, "seq"),
                    reason: "not a counter".into(),
                })?,
            None => 0,
        };
        let mut out = ChannelRead {
            epoch,
            head,
            slots: Vec::new(),
            complete: head <= after,
        };
        if limit == 0 || head <= after {
            return Ok(out);
        }
        // Everything below the floor was trimmed by count (or is about to be).
        let floor = head.saturating_sub(self.config.retention_for(channel).count) + 1;
        let start = (after + 1).max(floor);
        let end = head.min(start.saturating_add(limit - 1));
        let prefetched: Vec<Option<Vec<u8>>> = values.collect();
        let mut fetched: HashMap<u64, Option<Vec<u8>>> = HashMap::new();
        for (i, v) in prefetched.into_iter().enumerate() {
            fetched.insert(after + 1 + i as u64, v);
        }
        let rest: Vec<u64> = (start..=end).filter(|s| !fetched.contains_key(s)).collect();
        if !rest.is_empty() {
            let keys: Vec<String> = rest.iter().map(|s| msg_key(channel, *s)).collect();
            for (seq, v) in rest.iter().zip(self.kv.get_many(&keys).await?) {
                fetched.insert(*seq, v);
            }
        }
        for seq in start..=end {
            let slot = match fetched.remove(&seq).flatten() {
                Some(v) => decode_slot(&v),
                None => match self.settle_missing(channel, seq).await? {
                    Some(slot) => slot,
                    None => return Ok(out), // in flight: incomplete
                },
            };
            out.slots.push((seq, slot));
        }
        out.complete = end == head;
        Ok(out)
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn retention(&self, channel: &Channel) -> Retention {
        self.config.retention_for(channel)
    }
}

impl<K: KvOps, C: Clock> Log for KvLog<K, C> {
    async fn publish(&self, messages: &[NewMessage]) -> Result<Vec<Published>, StateError> {
        let mut epochs: HashMap<&Channel, Epoch> = HashMap::new();
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            let epoch = match epochs.get(&m.channel) {
                Some(e) => e.clone(),
                None => {
                    let e = self.ensure_epoch(&m.channel).await?;
                    epochs.insert(&m.channel, e.clone());
                    e
                }
            };
            out.push(self.publish_one(m, &epoch).await?);
        }
        Ok(out)
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
        let keys: Vec<String> = channels.iter().map(|c| key(c, "seq")).collect();
        Ok(self
            .kv
            .get_many(&keys)
            .await?
            .into_iter()
            .map(|v| {
                v.and_then(|v| self.kv.decode_counter(&v))
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0)
            })
            .collect())
    }

    fn head_ops(&self, _channels: usize) -> u64 {
        1 // one get_many for all channels
    }
}
