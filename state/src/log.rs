//! The engine's contract: publish, read, history, info, heads; shared by both backends.
//!
//! Backends only fetch raw slots of one channel ([`ChannelRead`]); turning them into events
//! — ordering, reset rules, age filtering, positions — happens once, here, so the KV and
//! Redis logs cannot drift apart.

use crate::channel::Channel;
use crate::config::Retention;
use crate::cursor::{Cursor, Position};
use crate::envelope::{Envelope, Epoch, Event, NewMessage, Published, Stored};
use crate::error::StateError;

/// Where a subscription starts in a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Live only: from the current head (a channel missing from the cursor).
    Now,
    /// Everything still retained, without a `reset` for what retention already dropped.
    Beginning,
    /// After a position from a cursor.
    After(Position),
}

/// One channel of a read request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The channel.
    pub channel: Channel,
    /// Where to start.
    pub start: Start,
}

impl Subscription {
    /// Subscriptions for `channels`, starting where `cursor` says (absent = [`Start::Now`]).
    ///
    /// Cursor entries for channels not requested are ignored.
    pub fn from_cursor(channels: &[Channel], cursor: Option<&Cursor>) -> Vec<Self> {
        channels
            .iter()
            .map(|channel| Subscription {
                channel: channel.clone(),
                start: match cursor.and_then(|c| c.get(channel)) {
                    Some(pos) => Start::After(pos.clone()),
                    None => Start::Now,
                },
            })
            .collect()
    }
}

/// The answer to a read: events in per-channel order, and where each channel now stands.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// Messages and resets; each channel's events are contiguous and in `seq` order.
    pub events: Vec<Event>,
    /// The position after the last event of each requested channel, in request order.
    pub positions: Vec<(Channel, Position)>,
    /// The store holds more than was returned (the limit was hit, or a publish is in flight):
    /// read again at once instead of waiting.
    pub more: bool,
}

impl Batch {
    /// The cursor to hand back to the client.
    pub fn cursor(&self) -> Cursor {
        Cursor::from_positions(self.positions.iter().map(|(c, p)| (c, p)))
    }

    /// The subscriptions that continue from this batch.
    pub fn next_subscriptions(&self) -> Vec<Subscription> {
        self.positions
            .iter()
            .map(|(channel, pos)| Subscription {
                channel: channel.clone(),
                start: Start::After(pos.clone()),
            })
            .collect()
    }

    /// Number of message events (resets excluded).
    pub fn message_count(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Message(_)))
            .count()
    }
}

/// A channel's state, for `GET /v1/channels/{channel}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// The log's epoch (empty if the channel was never written).
    pub epoch: Epoch,
    /// The highest sequence number assigned (0 if none).
    pub last_seq: u64,
    /// How many messages are still deliverable.
    pub retained_count: u64,
    /// The first deliverable sequence number (`last_seq + 1` when none is retained).
    pub first_seq: u64,
}

/// A channel log: the API the functions use. Implemented by [`crate::KvLog`] and
/// [`crate::RedisLog`] with identical semantics.
///
/// Guarantees: per channel, `seq` is strictly increasing and every acknowledged publish is
/// delivered exactly once to a reader that resumes from its positions, unless retention
/// dropped it first, in which case a [`Event::Reset`] stands where the gap is.
#[expect(
    async_fn_in_trait,
    reason = "single-threaded executor; futures need not be Send"
)]
pub trait Log {
    /// Publishes messages (the batch may span channels), in order.
    ///
    /// A `(channel, id)` pair published before and still retained is not stored again: its
    /// original `seq` comes back with `duplicate: true`.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails; messages before the failing one are stored.
    async fn publish(&self, messages: &[NewMessage]) -> Result<Vec<Published>, StateError>;

    /// Reads what is newer than each subscription's start, at most `limit` messages in all
    /// (channels filled in request order; callers may rotate the order for fairness).
    ///
    /// A `reset` is emitted when the position's epoch differs from the log's, when retention
    /// dropped messages after the position, or when the position is ahead of the log.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    async fn read(&self, subscriptions: &[Subscription], limit: usize)
    -> Result<Batch, StateError>;

    /// Retained messages with `seq > since`, at most `limit`, and the position after them.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    async fn history(
        &self,
        channel: &Channel,
        since: u64,
        limit: usize,
    ) -> Result<(Vec<Envelope>, Position), StateError>;

    /// Epoch, head and retained range of a channel.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    async fn info(&self, channel: &Channel) -> Result<ChannelInfo, StateError>;

    /// The cheap per-channel head (last assigned seq, 0 if none) for watchers.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    async fn heads(&self, channels: &[Channel]) -> Result<Vec<u64>, StateError>;

    /// Store operations one [`Log::heads`] call over `channels` costs (for watcher counters).
    fn head_ops(&self, channels: usize) -> u64;
}

/// One stored slot of a channel as a backend found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A message.
    Message(Stored),
    /// A sequence number reserved but never acknowledged (KV only): invisible, not a gap.
    Tombstone,
    /// An unreadable value: treated like a message lost to retention (a gap).
    Lost,
}

/// Raw slots of one channel after some position.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ChannelRead {
    pub epoch: Epoch,
    pub head: u64,
    /// Ascending; a missing seq between two slots (or before the first) was trimmed.
    pub slots: Vec<(u64, Slot)>,
    /// Whether `slots` reaches `head` (false: limit hit, or stopped at an in-flight publish).
    pub complete: bool,
}

/// What a backend provides to the shared read logic.
pub(crate) trait RawLog {
    /// Slots with `seq > after`, at most `limit` (0: only epoch and head).
    async fn read_channel(
        &self,
        channel: &Channel,
        after: u64,
        limit: usize,
    ) -> Result<ChannelRead, StateError>;
    fn now_ms(&self) -> u64;
    fn retention(&self, channel: &Channel) -> Retention;
}

/// The result of reading one channel.
struct Part {
    events: Vec<Event>,
    position: Position,
    more: bool,
}

/// Shared implementation of [`Log::read`].
pub(crate) async fn read<R: RawLog>(
    raw: &R,
    subscriptions: &[Subscription],
    limit: usize,
) -> Result<Batch, StateError> {
    let mut batch = Batch::default();
    let mut remaining = limit;
    for sub in subscriptions {
        let part = read_one(raw, &sub.channel, &sub.start, remaining, false).await?;
        let delivered = part
            .events
            .iter()
            .filter(|e| matches!(e, Event::Message(_)))
            .count();
        remaining = remaining.saturating_sub(delivered);
        batch.more |= part.more;
        batch.events.extend(part.events);
        batch.positions.push((sub.channel.clone(), part.position));
    }
    Ok(batch)
}

/// Shared implementation of [`Log::history`].
pub(crate) async fn history<R: RawLog>(
    raw: &R,
    channel: &Channel,
    since: u64,
    limit: usize,
) -> Result<(Vec<Envelope>, Position), StateError> {
    let start = Start::After(Position {
        epoch: Epoch::default(),
        seq: since,
    });
    let part = read_one(raw, channel, &start, limit, true).await?;
    let messages = part
        .events
        .into_iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m),
            Event::Reset { .. } => None,
        })
        .collect();
    Ok((messages, part.position))
}

/// Shared implementation of [`Log::info`]: scans the retained window once.
pub(crate) async fn info<R: RawLog>(raw: &R, channel: &Channel) -> Result<ChannelInfo, StateError> {
    let retention = raw.retention(channel);
    let limit = usize::try_from(retention.count).unwrap_or(usize::MAX);
    let r = raw.read_channel(channel, 0, limit).await?;
    let min_time = raw.now_ms().saturating_sub(retention.max_age_ms());
    let live: Vec<u64> = r
        .slots
        .iter()
        .filter(|(_, s)| matches!(s, Slot::Message(m) if m.time >= min_time))
        .map(|(seq, _)| *seq)
        .collect();
    Ok(ChannelInfo {
        epoch: r.epoch,
        last_seq: r.head,
        retained_count: live.len() as u64,
        first_seq: live.first().copied().unwrap_or(r.head + 1),
    })
}

/// Reads one channel and applies the reset rules.
///
/// `quiet` (history, [`Start::Beginning`]) suppresses the reset for messages dropped before
/// the first one delivered: the caller asked for "whatever is retained".
async fn read_one<R: RawLog>(
    raw: &R,
    channel: &Channel,
    start: &Start,
    limit: usize,
    quiet: bool,
) -> Result<Part, StateError> {
    let (after, known_epoch, quiet) = match start {
        Start::Now => {
            let r = raw.read_channel(channel, u64::MAX, 0).await?;
            return Ok(Part {
                events: Vec::new(),
                position: Position {
                    epoch: r.epoch,
                    seq: r.head,
                },
                more: false,
            });
        }
        Start::Beginning => (0, None, true),
        // An empty epoch means the channel had no log when the position was taken: any log
        // now present is new to the subscriber, so there is nothing to compare.
        Start::After(p) if p.epoch.is_empty() => (p.seq, None, quiet),
        Start::After(p) => (p.seq, Some(&p.epoch), quiet),
    };
    let mut r = raw.read_channel(channel, after, limit).await?;
    let mut after = after;
    let mut gap = false;
    if known_epoch.is_some_and(|e| *e != r.epoch) {
        // The log was flushed or recreated: everything in it is new to this subscriber, and
        // the subscriber must be told its old position means nothing here.
        gap = true;
        after = 0;
        r = raw.read_channel(channel, 0, limit).await?;
    } else if after > r.head {
        // A position ahead of the log (lost writes without an epoch change, or a forged
        // cursor): restart at the head, explicitly.
        let mut events = Vec::new();
        if !quiet {
            events.push(Event::Reset {
                channel: channel.clone(),
                epoch: r.epoch.clone(),
                seq: r.head + 1,
            });
        }
        return Ok(Part {
            events,
            position: Position {
                epoch: r.epoch,
                seq: r.head,
            },
            more: false,
        });
    }

    let min_time = raw
        .now_ms()
        .saturating_sub(raw.retention(channel).max_age_ms());
    let mut events = Vec::new();
    let mut expected = after + 1;
    let mut pos = after;
    let mut delivered_any = false;
    for (seq, slot) in r.slots {
        if seq > expected {
            gap = true; // trimmed by count
        }
        match slot {
            Slot::Tombstone => {}
            Slot::Lost => gap = true,
            Slot::Message(m) if m.time < min_time => gap = true,
            Slot::Message(m) => {
                if gap && (delivered_any || !quiet) {
                    events.push(Event::Reset {
                        channel: channel.clone(),
                        epoch: r.epoch.clone(),
                        seq,
                    });
                }
                gap = false;
                delivered_any = true;
                events.push(Event::Message(Envelope {
                    channel: channel.clone(),
                    seq,
                    epoch: r.epoch.clone(),
                    data: m.data,
                    time: m.time,
                }));
            }
        }
        expected = seq + 1;
        pos = seq;
    }
    if r.complete && r.head > pos {
        // Everything after the last slot up to the head is gone (trimmed or expired).
        gap = true;
        pos = r.head;
    }
    if gap && (delivered_any || !quiet) {
        // The gap runs to the end of what was scanned: delivery continues at pos + 1.
        events.push(Event::Reset {
            channel: channel.clone(),
            epoch: r.epoch.clone(),
            seq: pos + 1,
        });
    }
    Ok(Part {
        events,
        position: Position {
            epoch: r.epoch,
            seq: pos,
        },
        more: !r.complete,
    })
}
