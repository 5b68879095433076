//! Messages on the wire: what publishers send, what subscribers receive, byte-exact JSON.
//!
//! Data is kept as raw JSON text from publish to delivery so the hot path never re-serialises
//! a payload; it is validated once, when a [`NewMessage`] is built.

use std::fmt::Write as _;

use serde::de::IgnoredAny;

use crate::channel::Channel;
use crate::error::MessageError;

/// Longest publisher idempotency id in bytes; it becomes part of a store key.
pub const MAX_ID_LEN: usize = 200;

/// A channel log's epoch: a short random id created with the log.
///
/// A cursor from another epoch refers to a log that was flushed or recreated, so the
/// subscriber gets a `reset` instead of a silent gap. The empty epoch means "no log yet".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Epoch(pub String);

impl Epoch {
    /// Builds an epoch from random bytes: base64url of the first 6 bytes, 8 characters.
    ///
    /// 48 bits make a collision between a flushed log and its successor (the only case that
    /// matters) negligible while keeping envelopes and cursors short.
    pub fn from_random(bytes: &[u8]) -> Self {
        use base64::Engine as _;
        let take = bytes.len().min(6);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..take]))
    }

    /// The epoch text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the "no log yet" epoch.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Target channel.
    pub channel: Channel,
    /// The payload as raw JSON text (validated by [`NewMessage::new`]).
    pub data: String,
    /// Optional publisher idempotency id: a retry with the same id is not stored twice.
    pub id: Option<String>,
}

impl NewMessage {
    /// Validates the payload JSON and the id.
    ///
    /// # Errors
    /// [`MessageError::InvalidJson`] if `data` is not exactly one JSON value;
    /// [`MessageError::InvalidId`] if `id` is empty, longer than 200 bytes or not printable ASCII.
    pub fn new(channel: Channel, data: &str, id: Option<&str>) -> Result<Self, MessageError> {
        serde_json::from_str::<IgnoredAny>(data)
            .map_err(|e| MessageError::InvalidJson(e.to_string()))?;
        if let Some(id) = id {
            let printable = id.bytes().all(|b| (0x21..0x7f).contains(&b));
            if id.is_empty() || id.len() > MAX_ID_LEN || !printable {
                return Err(MessageError::InvalidId(id.to_owned()));
            }
        }
        Ok(Self {
            channel,
            data: data.trim().to_owned(),
            id: id.map(str::to_owned),
        })
    }
}

/// The outcome of publishing one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The channel it went to.
    pub channel: Channel,
    /// Its sequence number (for a duplicate: the original's).
    pub seq: u64,
    /// The epoch of the log it is in.
    pub epoch: Epoch,
    /// Unix milliseconds when it was (originally) stored.
    pub time: u64,
    /// True when the `(channel, id)` was already published and nothing new was stored.
    pub duplicate: bool,
}

/// A message as delivered: `{"channel":…,"seq":…,"epoch":…,"data":…,"time":…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The channel.
    pub channel: Channel,
    /// Per-channel sequence number.
    pub seq: u64,
    /// The log's epoch.
    pub epoch: Epoch,
    /// Raw JSON payload.
    pub data: String,
    /// Unix milliseconds when stored.
    pub time: u64,
}

impl Envelope {
    /// The byte-exact JSON form of docs/protocol.md §2, so every transport writes the same bytes.
    ///
    /// ```
    /// # use comet_state::{Channel, Envelope, Epoch};
    /// let e = Envelope {
    ///     channel: Channel::new("chat").unwrap(),
    ///     seq: 17,
    ///     epoch: Epoch("k3f9".into()),
    ///     data: r#"{"text":"hi"}"#.into(),
    ///     time: 1700000000000,
    /// };
    /// assert_eq!(
    ///     e.to_json(),
    ///     r#"{"channel":"chat","seq":17,"epoch":"k3f9","data":{"text":"hi"},"time":1700000000000}"#
    /// );
    /// ```
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(self.data.len() + self.channel.as_str().len() + 64);
        self.write_json(&mut out);
        out
    }

    /// Appends the JSON form to `out` (no allocation beyond growing `out`).
    pub fn write_json(&self, out: &mut String) {
        // Channel names and epochs hold only characters that JSON strings need not escape
        // (see `Channel`, `Epoch::from_random`), so they are written verbatim.
        let _ = write!(
            out,
            r#"{{"channel":"{}","seq":{},"epoch":"{}","data":{},"time":{}}}"#,
            self.channel,
            self.seq,
            json_safe(self.epoch.as_str()),
            self.data,
            self.time
        );
    }
}

/// One item of a [`crate::Batch`]: a message, or an explicit notice of a gap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A retained message.
    Message(Envelope),
    /// Messages were lost to retention or the log's epoch changed; delivery continues at `seq`.
    Reset {
        /// The channel concerned.
        channel: Channel,
        /// The log's current epoch.
        epoch: Epoch,
        /// The first sequence number that will be delivered after the gap.
        seq: u64,
    },
}

impl Event {
    /// The channel the event belongs to.
    pub fn channel(&self) -> &Channel {
        match self {
            Event::Message(e) => &e.channel,
            Event::Reset { channel, .. } => channel,
        }
    }

    /// The byte-exact JSON form; a reset is
    /// `{"type":"reset","channel":"chat","epoch":"k3f9","seq":5}`.
    pub fn to_json(&self) -> String {
        match self {
            Event::Message(e) => e.to_json(),
            Event::Reset {
                channel,
                epoch,
                seq,
            } => format!(
                r#"{{"type":"reset","channel":"{}","epoch":"{}","seq":{}}}"#,
                channel,
                json_safe(epoch.as_str()),
                seq
            ),
        }
    }
}

/// Keeps an epoch read back from the store from breaking JSON if a foreign writer put quotes
/// or control characters in it (the engine's own epochs never need this).
fn json_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(
            s.chars()
                .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
                .collect(),
        )
    }
}

/// A message as kept in the store: `<time>:<id length>:<id><data>` (ASCII header, raw JSON).
///
/// A compact hand-rolled header avoids parsing the payload when reading; the id is kept so
/// trimming can delete the idempotency key of the message it drops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub time: u64,
    pub id: Option<String>,
    pub data: String,
}

impl Stored {
    pub fn encode(&self) -> Vec<u8> {
        let id = self.id.as_deref().unwrap_or("");
        format!("{}:{}:{}{}", self.time, id.len(), id, self.data).into_bytes()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (time, rest) = text.split_once(':')?;
        let (id_len, rest) = rest.split_once(':')?;
        let id_len: usize = id_len.parse().ok()?;
        let id = rest.get(..id_len)?;
        let data = rest.get(id_len..)?;
        Some(Self {
            time: time.parse().ok()?,
            id: (!id.is_empty()).then(|| id.to_owned()),
            data: data.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat() -> Channel {
        Channel::new("chat").expect("valid")
    }

    #[test]
    fn reset_json_is_exact() {
        let e = Event::Reset {
            channel: chat(),
            epoch: Epoch("k3f9".into()),
            seq: 5,
        };
        assert_eq!(
            e.to_json(),
            r#"{"type":"reset","channel":"chat","epoch":"k3f9","seq":5}"#
        );
    }

    #[test]
    fn envelope_json_parses_back() {
        let e = Envelope {
            channel: Channel::new("a/b:c@d=e+f").expect("valid"),
            seq: 1,
            epoch: Epoch::from_random(&[255, 1, 2, 3, 4, 5, 6]),
            data: "\"line\\nbreak\"".into(),
            time: 3,
        };
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).expect("json");
        assert_eq!(v["channel"], "a/b:c@d=e+f");
        assert_eq!(v["data"], "line\nbreak");
        assert_eq!(v["epoch"].as_str().map(str::len), Some(8));
    }

    #[test]
    fn rejects_invalid_json_and_ids() {
        assert!(matches!(
            NewMessage::new(chat(), "{", None),
            Err(MessageError::InvalidJson(_))
        ));
        assert!(matches!(
            NewMessage::new(chat(), "1 2", None),
            Err(MessageError::InvalidJson(_))
        ));
        for bad in ["", "has space", &"x".repeat(201)] {
            assert_eq!(
                NewMessage::new(chat(), "1", Some(bad)),
                Err(MessageError::InvalidId(bad.to_owned()))
            );
        }
        assert!(NewMessage::new(chat(), " {\"a\":[1]} ", Some("k-1")).is_ok());
    }

    #[test]
    fn stored_round_trips() {
        for s in [
            Stored {
                time: 12,
                id: Some("a:b".into()),
                data: "{\"x\":\"1:2\"}".into(),
            },
            Stored {
                time: 0,
                id: None,
                data: "null".into(),
            },
        ] {
            assert_eq!(Stored::decode(&s.encode()), Some(s));
        }
        assert_eq!(Stored::decode(b"x"), None);
        assert_eq!(Stored::decode(b"1:9:ab"), None);
    }
}
