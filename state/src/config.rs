//! Tunables: retention, waiting, sessions. Defaults are documented in docs/protocol.md §8 and the README.

use std::time::Duration;

use crate::channel::Channel;

/// How much of a channel's log is kept.
///
/// Storage per channel is bounded by `count` (each publish trims the message that falls out);
/// `max_age` is enforced when reading (older messages are never delivered) and, on Redis, by
/// key expiry and a bounded trim per publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep at most this many messages (default 1000).
    pub count: u64,
    /// Deliver no message older than this (default 1 h).
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            count: 1000,
            max_age: Duration::from_secs(3600),
        }
    }
}

impl Retention {
    /// `max_age` in milliseconds, saturating.
    pub fn max_age_ms(&self) -> u64 {
        u64::try_from(self.max_age.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Per-channel retention override, e.g. a shorter log for `$s:` session queues.
///
/// Returning `None` uses [`LogConfig::retention`]. Must be a pure function of the name: every
/// instance has to agree on a channel's retention.
pub type RetentionOverride = fn(&Channel) -> Option<Retention>;

/// Configuration of a log backend.
#[derive(Debug, Clone, Copy)]
pub struct LogConfig {
    /// Default retention.
    pub retention: Retention,
    /// Optional per-channel override.
    pub retention_override: Option<RetentionOverride>,
    /// KV only: how long a reserved-but-unwritten sequence number may stay missing before a
    /// reader tombstones it (a publisher that crashed between increment and write).
    ///
    /// Must comfortably exceed the time between a publisher's increment and its write.
    pub missing_grace: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            retention: Retention::default(),
            retention_override: None,
            missing_grace: Duration::from_secs(2),
        }
    }
}

impl LogConfig {
    /// The retention that applies to `channel`.
    pub fn retention_for(&self, channel: &Channel) -> Retention {
        self.retention_override
            .and_then(|f| f(channel))
            .unwrap_or(self.retention)
    }
}

/// Poll pacing of the instance-shared [`crate::Watcher`].
///
/// The interval drops to `min_interval` whenever a head moved and doubles on each quiet tick
/// up to `max_interval`, so an idle instance costs `1000 / max_interval_ms` head reads per
/// second (KV: one `get_many` for all channels; Redis: one `GET` per channel), whatever the
/// number of waiters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchConfig {
    /// Interval right after activity.
    pub min_interval: Duration,
    /// Interval when idle.
    pub max_interval: Duration,
}

impl WatchConfig {
    /// KV defaults: 5 ms → 40 ms; p50 wake ≈ 20 ms when idle, 25 ticks/s per idle instance.
    pub const KV: Self = Self {
        min_interval: Duration::from_millis(5),
        max_interval: Duration::from_millis(40),
    };
    /// Redis defaults: 2 ms → 8 ms; p50 wake ≈ 4 ms, 125 GETs/s per watched channel per idle
    /// instance (cheap for Redis, which serves ~100k GET/s per core).
    pub const REDIS: Self = Self {
        min_interval: Duration::from_millis(2),
        max_interval: Duration::from_millis(8),
    };
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self::KV
    }
}

/// Session timing (SockJS semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// A session not polled for this long is closed (SockJS `disconnect_delay`, default 5 s).
    pub disconnect_delay: Duration,
    /// Extra slack for clock skew between instances and slow networks (default 5 s).
    pub grace: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            disconnect_delay: Duration::from_secs(5),
            grace: Duration::from_secs(5),
        }
    }
}
