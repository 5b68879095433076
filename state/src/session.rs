//! Sessions for SockJS and the Jii protocol: subscriptions, a direct queue, one receiver.
//!
//! A session lives in the store so consecutive requests may hit different instances.
//!
//! | key | value |
//! | --- | --- |
//! | `comet:s:{<id>}:session` | JSON [`Session`] record, updated by compare-and-swap |
//! | `comet:s:{<id>}:lease` | `<expires ms>:<holder>`: who may receive right now |
//!
//! The session's own queue is the internal channel `$s:<id>`, an ordinary log. On Redis the
//! keys get a TTL (via [`KvOps::expire_hint`]) so dead sessions vanish; Spin's key-value store
//! has no TTL, so there a closed session's keys are deleted by [`Sessions::close`] and an
//! abandoned one stays until a sweep removes it (not implemented yet).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::config::SessionConfig;
use crate::cursor::Position;
use crate::envelope::Epoch;
use crate::error::StateError;
use crate::store::{Clock, KvOps};

/// Random bytes in a session id (128 bits: unguessable).
const ID_BYTES: usize = 16;

/// Longest client-chosen session id.
const MAX_CLIENT_ID_LEN: usize = 64;

/// Attempts of a read-modify-write before giving up.
const MAX_ATTEMPTS: usize = 32;

/// TTL hint for session keys on stores that support it: far beyond any held request.
const KEY_TTL: Duration = Duration::from_secs(3600);

/// A session id: 22 base64url characters of 128 random bits, safe in URLs and channel names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    /// Checks a client-supplied id has the engine's shape.
    ///
    /// # Errors
    /// [`StateError::InvalidSession`] when it is not 22 base64url characters.
    pub fn parse(s: &str) -> Result<Self, StateError> {
        let ok = s.len() == 22
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(StateError::InvalidSession(s.to_owned()))
        }
    }

    /// Accepts an id chosen by a SockJS client (`/{server}/{session}/…`): 1–64 characters
    /// of `[A-Za-z0-9_-]`. SockJS lets clients pick ids, so these are only as unguessable as
    /// the client makes them.
    ///
    /// # Errors
    /// [`StateError::InvalidSession`] for any other shape (the transport answers 404).
    pub fn from_client(s: &str) -> Result<Self, StateError> {
        let ok = (1..=MAX_CLIENT_ID_LEN).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(StateError::InvalidSession(s.to_owned()))
        }
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The session's own queue, `$s:<id>`, for server-to-session sends.
    pub fn queue_channel(&self) -> Channel {
        // 22 base64url characters are valid channel characters: cannot fail.
        Channel::new_internal(&format!("$s:{}", self.0)).unwrap_or_else(|_| unreachable!())
    }

    fn key(&self, suffix: &str) -> String {
        format!("comet:s:{{{}}}:{suffix}", self.0)
    }
}

/// A session's stored state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Unix ms of creation.
    pub created: u64,
    /// Unix ms of the last [`Sessions::touch`].
    pub seen: u64,
    /// Closed sessions refuse further use.
    pub closed: bool,
    /// Subscribed channels with the position delivered so far: `[name, epoch, seq]`.
    pub subscriptions: Vec<(String, String, u64)>,
    /// Private subscriptions' token validity (channel → Unix seconds): the receiver drops a
    /// subscription once its token lapses.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub token_expiry: std::collections::BTreeMap<String, u64>,
    /// Why a closed session closed (`code`, `reason`), repeated to late receivers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<(u16, String)>,
}

/// What [`Sessions::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A new session (none existed, or the old one had timed out): send the open frame.
    Created(Session),
    /// A live session.
    Existing(Session),
    /// A session closed within the disconnect delay: repeat its close frame.
    Closed(u16, String),
}

impl Session {
    /// The subscriptions as channels and positions (invalid stored names are skipped).
    pub fn positions(&self) -> Vec<(Channel, Position)> {
        self.subscriptions
            .iter()
            .filter_map(|(name, epoch, seq)| {
                let channel = Channel::new_internal(name).ok()?;
                Some((
                    channel,
                    Position {
                        epoch: Epoch(epoch.clone()),
                        seq: *seq,
                    },
                ))
            })
            .collect()
    }
}

/// Session operations over a key-value store (use [`crate::RedisKv`] for Redis).
#[derive(Debug)]
pub struct Sessions<K, C> {
    kv: K,
    clock: C,
    config: SessionConfig,
}

impl<K: KvOps, C: Clock> Sessions<K, C> {
    /// Sessions over `kv`.
    pub fn new(kv: K, clock: C, config: SessionConfig) -> Self {
        Self { kv, clock, config }
    }

    /// Creates a session with a fresh unguessable id.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn create(&self) -> Result<SessionId, StateError> {
        for _ in 0..MAX_ATTEMPTS {
            let id = SessionId(URL_SAFE_NO_PAD.encode(self.clock.random_bytes(ID_BYTES)));
            let record = self.fresh(Vec::new());
            let key = id.key("session");
            if self
                .kv
                .compare_and_swap(&key, None, &encode(&record)?)
                .await?
            {
                self.kv.expire_hint(&key, KEY_TTL).await?;
                return Ok(id);
            }
        }
        Err(StateError::Contention("session id".into()))
    }

    fn fresh(&self, subscriptions: Vec<(String, String, u64)>) -> Session {
        let now = self.clock.now_ms();
        Session {
            created: now,
            seen: now,
            closed: false,
            subscriptions,
            token_expiry: std::collections::BTreeMap::new(),
            close: None,
        }
    }

    fn window_ms(&self) -> u64 {
        let window = self.config.disconnect_delay + self.config.grace;
        u64::try_from(window.as_millis()).unwrap_or(u64::MAX)
    }

    /// Opens a client-named session for a receiving request: creates it when missing or timed
    /// out (a timed-out session starts over, as in SockJS), reports a recent close, or returns
    /// the live record. `initial` are the subscriptions a new session starts with (its own
    /// queue, typically).
    ///
    /// # Errors
    /// [`StateError::Store`] / [`StateError::Corrupt`] when the store fails or holds garbage.
    pub async fn open(
        &self,
        id: &SessionId,
        initial: &[(Channel, Position)],
    ) -> Result<Opened, StateError> {
        let keys = [id.key("session"), id.key("lease")];
        for _ in 0..MAX_ATTEMPTS {
            let mut values = self.kv.get_many(&keys).await?.into_iter();
            let current = values.next().flatten();
            let lease = values.next().flatten();
            if let Some(raw) = &current {
                let record = decode(&keys[0], raw)?;
                let (recent, leased) = self.recent_or_leased(&record, lease.as_deref());
                if record.closed && recent {
                    let (code, reason) = record
                        .close
                        .unwrap_or_else(|| (3000, "Go away!".to_owned()));
                    return Ok(Opened::Closed(code, reason));
                }
                if !record.closed && (recent || leased) {
                    return Ok(Opened::Existing(record));
                }
            }
            let subscriptions = initial
                .iter()
                .map(|(c, p)| (c.to_string(), p.epoch.0.clone(), p.seq))
                .collect();
            let record = self.fresh(subscriptions);
            if self
                .kv
                .compare_and_swap(&keys[0], current.as_deref(), &encode(&record)?)
                .await?
            {
                self.kv.expire_hint(&keys[0], KEY_TTL).await?;
                return Ok(Opened::Created(record));
            }
        }
        Err(StateError::Contention(keys[0].clone()))
    }

    /// The session's record, if it exists.
    ///
    /// # Errors
    /// [`StateError::Store`] / [`StateError::Corrupt`] when the store fails or holds garbage.
    pub async fn get(&self, id: &SessionId) -> Result<Option<Session>, StateError> {
        let key = id.key("session");
        match self.kv.get(&key).await? {
            Some(v) => Ok(Some(decode(&key, &v)?)),
            None => Ok(None),
        }
    }

    /// Applies `f` to the record with compare-and-swap; `false` if the session is gone.
    async fn update(
        &self,
        id: &SessionId,
        mut f: impl FnMut(&mut Session),
    ) -> Result<bool, StateError> {
        let key = id.key("session");
        for _ in 0..MAX_ATTEMPTS {
            let Some(old) = self.kv.get(&key).await? else {
                return Ok(false);
            };
            let mut record = decode(&key, &old)?;
            f(&mut record);
            if self
                .kv
                .compare_and_swap(&key, Some(&old), &encode(&record)?)
                .await?
            {
                self.kv.expire_hint(&key, KEY_TTL).await?;
                return Ok(true);
            }
        }
        Err(StateError::Contention(key))
    }

    /// Adds channels (with the position to deliver after, e.g. the head from a
    /// [`crate::Start::Now`] read) or moves existing ones; `false` if the session is gone.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn subscribe(
        &self,
        id: &SessionId,
        channels: &[(Channel, Position)],
    ) -> Result<bool, StateError> {
        self.set_positions(id, channels, true).await
    }

    /// Records delivered positions of subscribed channels (others are ignored).
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn advance(
        &self,
        id: &SessionId,
        positions: &[(Channel, Position)],
    ) -> Result<bool, StateError> {
        self.set_positions(id, positions, false).await
    }

    async fn set_positions(
        &self,
        id: &SessionId,
        positions: &[(Channel, Position)],
        add: bool,
    ) -> Result<bool, StateError> {
        self.update(id, |s| {
            for (channel, pos) in positions {
                let entry = (channel.to_string(), pos.epoch.0.clone(), pos.seq);
                match s
                    .subscriptions
                    .iter_mut()
                    .find(|(n, _, _)| n == channel.as_str())
                {
                    Some(existing) => *existing = entry,
                    None if add => s.subscriptions.push(entry),
                    None => {}
                }
            }
        })
        .await
    }

    /// Removes channels; `false` if the session is gone.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn unsubscribe(
        &self,
        id: &SessionId,
        channels: &[Channel],
    ) -> Result<bool, StateError> {
        self.update(id, |s| {
            s.subscriptions
                .retain(|(n, _, _)| !channels.iter().any(|c| c.as_str() == n));
            for c in channels {
                s.token_expiry.remove(c.as_str());
            }
        })
        .await
    }

    /// Records (or, with `None`, clears) until when a subscription's token is valid.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn set_token_expiry(
        &self,
        id: &SessionId,
        channel: &Channel,
        valid_until: Option<u64>,
    ) -> Result<bool, StateError> {
        self.update(id, |s| match valid_until {
            Some(t) => {
                s.token_expiry.insert(channel.to_string(), t);
            }
            None => {
                s.token_expiry.remove(channel.as_str());
            }
        })
        .await
    }

    /// Marks the session as polled now (keeps it alive).
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn touch(&self, id: &SessionId) -> Result<bool, StateError> {
        let now = self.clock.now_ms();
        self.update(id, |s| s.seen = s.seen.max(now)).await
    }

    /// Whether the session is open and was polled within disconnect delay + grace, or a
    /// receiver holds it right now (SockJS: a session with a receiving request is alive).
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn is_alive(&self, id: &SessionId) -> Result<bool, StateError> {
        Ok(self.status(id).await?.is_some_and(|(_, alive)| alive))
    }

    /// The session's record and whether it is alive (see [`Sessions::is_alive`]), in one
    /// store round trip; `None` if there is no record.
    ///
    /// # Errors
    /// [`StateError::Store`] / [`StateError::Corrupt`] when the store fails or holds garbage.
    pub async fn status(&self, id: &SessionId) -> Result<Option<(Session, bool)>, StateError> {
        let keys = [id.key("session"), id.key("lease")];
        let mut values = self.kv.get_many(&keys).await?.into_iter();
        let Some(Some(raw)) = values.next() else {
            return Ok(None);
        };
        let session = decode(&keys[0], &raw)?;
        let (recent, leased) = self.recent_or_leased(&session, values.next().flatten().as_deref());
        let alive = !session.closed && (recent || leased);
        Ok(Some((session, alive)))
    }

    /// Whether `session` was seen within disconnect delay + grace, and whether `lease` is an
    /// unexpired lease of some receiver.
    fn recent_or_leased(&self, session: &Session, lease: Option<&[u8]>) -> (bool, bool) {
        let now = self.clock.now_ms();
        let recent = now.saturating_sub(session.seen) <= self.window_ms();
        let leased = lease
            .and_then(parse_lease)
            .is_some_and(|(expires, holder)| expires > now && !holder.is_empty());
        (recent, leased)
    }

    /// Takes the receive lease for `holder` (a request id) for `ttl`; `false` if another
    /// holder has an unexpired lease. Re-acquiring one's own lease renews it.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn acquire_lease(
        &self,
        id: &SessionId,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let key = id.key("lease");
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now_ms();
            let expires = now.saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
            let new = format!("{expires}:{holder}").into_bytes();
            let current = self.kv.get(&key).await?;
            if let Some(v) = &current
                && let Some((until, who)) = parse_lease(v)
                && until > now
                && who != holder
            {
                return Ok(false);
            }
            if self
                .kv
                .compare_and_swap(&key, current.as_deref(), &new)
                .await?
            {
                self.kv.expire_hint(&key, KEY_TTL).await?;
                return Ok(true);
            }
        }
        Err(StateError::Contention(key))
    }

    /// Gives the lease up if `holder` has it (no-op otherwise).
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn release_lease(&self, id: &SessionId, holder: &str) -> Result<(), StateError> {
        let key = id.key("lease");
        let Some(current) = self.kv.get(&key).await? else {
            return Ok(());
        };
        if parse_lease(&current).is_some_and(|(_, who)| who == holder) {
            // A CAS, so a lease taken over meanwhile (ours expired) is left alone.
            self.kv
                .compare_and_swap(&key, Some(&current), b"0:")
                .await?;
        }
        Ok(())
    }

    /// Closes the session with SockJS's default `3000 "Go away!"`.
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn close(&self, id: &SessionId) -> Result<(), StateError> {
        self.close_with(id, 3000, "Go away!").await
    }

    /// Closes the session, remembering `code` and `reason` for late receivers, and deletes
    /// its lease (the queue log expires by retention).
    ///
    /// # Errors
    /// [`StateError::Store`] when the store fails.
    pub async fn close_with(
        &self,
        id: &SessionId,
        code: u16,
        reason: &str,
    ) -> Result<(), StateError> {
        let now = self.clock.now_ms();
        self.update(id, |s| {
            s.closed = true;
            s.seen = s.seen.max(now);
            s.close = Some((code, reason.to_owned()));
        })
        .await?;
        self.kv.delete(&id.key("lease")).await?;
        // Keep the closed record briefly on TTL stores so late requests see "closed" (SockJS
        // answers them with `c[3000,"Go away!"]`); on KV it stays until deleted by a sweep.
        self.kv
            .expire_hint(
                &id.key("session"),
                self.config.disconnect_delay + self.config.grace,
            )
            .await?;
        Ok(())
    }
}

fn parse_lease(v: &[u8]) -> Option<(u64, String)> {
    let s = std::str::from_utf8(v).ok()?;
    let (expires, holder) = s.split_once(':')?;
    Some((expires.parse().ok()?, holder.to_owned()))
}

fn encode(s: &Session) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(s).map_err(|e| StateError::Corrupt {
        key: "session".into(),
        reason: e.to_string(),
    })
}

fn decode(key: &str, v: &[u8]) -> Result<Session, StateError> {
    serde_json::from_slice(v).map_err(|e| StateError::Corrupt {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}
