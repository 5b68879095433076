//! The session store and a session's own queue.
//!
//! Sessions live in the same backend as the channel logs (Spin KV or Redis), so any instance
//! can serve any request of a session. Everything the server says to one session (echoes,
//! action answers, raw sends) goes through its own queue `$s:<id>`, an ordinary log: a
//! receiver on another instance sees it, and nothing is lost between two polls.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use comet_edge::Config;
use comet_edge::config::Backend;
use comet_edge::store::{SpinClock, SpinKv, SpinRedis};
use comet_state::{
    Envelope, KvOps, Log, NewMessage, RedisKv, SessionConfig, SessionId, Sessions, StateError,
    StoreError,
};
use serde::{Deserialize, Serialize};

/// Either backend as the sessions' key-value store.
pub enum SessionKv {
    /// Spin's key-value store.
    Spin(SpinKv),
    /// Redis (keys get TTLs there).
    Redis(RedisKv<SpinRedis>),
}

macro_rules! each {
    ($self:ident, $kv:ident => $e:expr) => {
        match $self {
            SessionKv::Spin($kv) => $e,
            SessionKv::Redis($kv) => $e,
        }
    };
}

impl KvOps for SessionKv {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        each!(self, kv => kv.get(key).await)
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        each!(self, kv => kv.set(key, value).await)
    }
    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        each!(self, kv => kv.delete(key).await)
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        each!(self, kv => kv.get_many(keys).await)
    }
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        each!(self, kv => kv.increment(key, delta).await)
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        each!(self, kv => kv.compare_and_swap(key, expected, new).await)
    }
    async fn expire_hint(&self, key: &str, ttl: Duration) -> Result<(), StoreError> {
        each!(self, kv => kv.expire_hint(key, ttl).await)
    }
}

/// The instance's sessions.
pub type SessionStore = Sessions<SessionKv, SpinClock>;

thread_local! {
    static SESSIONS: RefCell<Option<Rc<SessionStore>>> = const { RefCell::new(None) };
}

/// The instance's session store, opened on first use.
///
/// # Errors
/// The store cannot be opened.
pub async fn sessions(
    config: &Config,
    disconnect_delay: Duration,
) -> Result<Rc<SessionStore>, StoreError> {
    if let Some(s) = SESSIONS.with(|s| s.borrow().clone()) {
        return Ok(s);
    }
    let kv = match &config.backend {
        Backend::Kv => SessionKv::Spin(SpinKv::open().await?),
        Backend::Redis { url, .. } => SessionKv::Redis(RedisKv::new(SpinRedis::open(url).await?)),
    };
    let created = Rc::new(Sessions::new(
        kv,
        SpinClock,
        SessionConfig {
            disconnect_delay,
            ..SessionConfig::default()
        },
    ));
    Ok(SESSIONS.with(|s| s.borrow_mut().get_or_insert(created).clone()))
}

/// Forgets the store after a failure, so the next request reconnects.
pub fn reset_sessions() {
    SESSIONS.with(|s| s.borrow_mut().take());
}

/// One entry of a session's own queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Queued {
    /// A SockJS message for the client.
    Message(String),
    /// Only wakes the receiver (its subscriptions changed); delivers nothing.
    Wake,
}

impl Queued {
    /// Reads a queue entry; anything unreadable is skipped by the receiver.
    pub fn parse(envelope: &Envelope) -> Option<Self> {
        serde_json::from_str(&envelope.data).ok()
    }
}

/// Appends entries to the session's own queue, in order.
///
/// # Errors
/// The store fails.
pub async fn enqueue<L: Log>(
    log: &L,
    id: &SessionId,
    entries: &[Queued],
) -> Result<(), StateError> {
    if entries.is_empty() {
        return Ok(());
    }
    let channel = id.queue_channel();
    let mut messages = Vec::with_capacity(entries.len());
    for entry in entries {
        let data = serde_json::to_string(entry).map_err(|e| StateError::Corrupt {
            key: channel.to_string(),
            reason: e.to_string(),
        })?;
        messages.push(NewMessage::new(channel.clone(), &data, None)?);
    }
    log.publish(&messages).await?;
    Ok(())
}
