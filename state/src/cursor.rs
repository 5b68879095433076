//! Cursors: the opaque, URL-safe token that says where a subscriber is in each channel.
//!
//! Layout (before base64url without padding):
//!
//! ```text
//! version (1 byte = 1)
//! entry*  : channel hash (u32 BE, FNV-1a of the name) | epoch length (u8) | epoch bytes | seq (LEB128)
//! crc32   : IEEE CRC-32 (BE) of everything before it
//! ```
//!
//! An entry costs 4 + 1 + 8 + 1..=3 bytes for an 8-character epoch and seq < 2²¹, i.e. about
//! 21 token characters per channel, so a cursor for up to ~45 channels stays within 1 KiB; the
//! decoder accepts up to [`MAX_CURSOR_LEN`] characters (enough for the 100-channel limit).
//!
//! The checksum rejects damaged or casually edited tokens with a typed error. It is not a MAC:
//! a cursor grants nothing (channel access is checked separately), so a forged one can only
//! ask for messages the caller may read anyway.
//!
//! Two channels of one request whose names share a 32-bit hash (about 1 in a million for 100
//! channels) would share an entry; the worst outcome is an explicit `reset`, never a silent gap,
//! because an entry also carries its log's epoch.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::channel::Channel;
use crate::envelope::Epoch;
use crate::error::CursorError;

/// Current cursor format version.
pub const CURSOR_VERSION: u8 = 1;

/// Longest token [`Cursor::decode`] accepts, in characters.
pub const MAX_CURSOR_LEN: usize = 4096;

/// A place in one channel's log: "I have seen everything up to `seq` of log `epoch`".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Position {
    /// The log's epoch; empty when the channel had no log yet (then `seq` is 0).
    pub epoch: Epoch,
    /// The last sequence number seen (0 = none).
    pub seq: u64,
}

/// A decoded cursor: positions keyed by channel hash.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    entries: Vec<(u32, Position)>,
}

impl Cursor {
    /// An empty cursor (every channel "from now").
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a cursor from channel positions, e.g. a [`crate::Batch`]'s.
    pub fn from_positions<'a>(
        positions: impl IntoIterator<Item = (&'a Channel, &'a Position)>,
    ) -> Self {
        let mut c = Self::new();
        for (ch, pos) in positions {
            c.set(ch, pos.clone());
        }
        c
    }

    /// Records the position of `channel`, replacing an older one.
    pub fn set(&mut self, channel: &Channel, position: Position) {
        let h = channel.short_hash();
        match self.entries.iter_mut().find(|(eh, _)| *eh == h) {
            Some(entry) => entry.1 = position,
            None => self.entries.push((h, position)),
        }
    }

    /// The position stored for `channel`, if any (absent = "from now").
    pub fn get(&self, channel: &Channel) -> Option<&Position> {
        let h = channel.short_hash();
        self.entries.iter().find(|(eh, _)| *eh == h).map(|(_, p)| p)
    }

    /// Number of channel entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cursor holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Encodes to the URL-safe token.
    pub fn encode(&self) -> String {
        let mut buf = Vec::with_capacity(5 + self.entries.len() * 16);
        buf.push(CURSOR_VERSION);
        for (h, pos) in &self.entries {
            buf.extend_from_slice(&h.to_be_bytes());
            // Epochs are the engine's 8-char ids; a longer foreign one is cut to 255 bytes.
            let epoch = pos.epoch.as_str().as_bytes();
            let epoch = &epoch[..epoch.len().min(255)];
            buf.push(epoch.len() as u8);
            buf.extend_from_slice(epoch);
            let mut seq = pos.seq;
            loop {
                let byte = (seq & 0x7f) as u8;
                seq >>= 7;
                if seq == 0 {
                    buf.push(byte);
                    break;
                }
                buf.push(byte | 0x80);
            }
        }
        let crc = crc32(&buf);
        buf.extend_from_slice(&crc.to_be_bytes());
        URL_SAFE_NO_PAD.encode(buf)
    }

    /// Decodes a token produced by [`Cursor::encode`].
    ///
    /// # Errors
    /// [`CursorError`] for tokens that are too long, not base64url, truncated, of an unknown
    /// version, fail the checksum or hold malformed entries.
    pub fn decode(token: &str) -> Result<Self, CursorError> {
        if token.len() > MAX_CURSOR_LEN {
            return Err(CursorError::TooLong(token.len()));
        }
        let buf = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|e| CursorError::Encoding(e.to_string()))?;
        if buf.len() < 5 {
            return Err(CursorError::Truncated(buf.len()));
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        let want = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
        if crc32(body) != want {
            return Err(CursorError::Checksum);
        }
        if body[0] != CURSOR_VERSION {
            return Err(CursorError::Version(body[0]));
        }
        let mut entries = Vec::new();
        let mut i = 1;
        while i < body.len() {
            let at = i;
            let bad = || CursorError::Malformed(at);
            let h = body.get(i..i + 4).ok_or_else(bad)?;
            let h = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
            i += 4;
            let len = usize::from(*body.get(i).ok_or_else(bad)?);
            i += 1;
            let epoch = body.get(i..i + len).ok_or_else(bad)?;
            let epoch = std::str::from_utf8(epoch).map_err(|_| bad())?.to_owned();
            i += len;
            let mut seq: u64 = 0;
            let mut shift = 0;
            loop {
                let b = *body.get(i).ok_or_else(bad)?;
                i += 1;
                if shift > 63 || (shift == 63 && b & 0x7e != 0) {
                    return Err(bad());
                }
                seq |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            entries.push((
                h,
                Position {
                    epoch: Epoch(epoch),
                    seq,
                },
            ));
        }
        Ok(Self { entries })
    }
}

/// IEEE CRC-32, bitwise: cursors are small, and this detects every 1- and 2-bit flip.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xedb8_8320 & mask);
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ch(name: &str) -> Channel {
        Channel::new(name).expect("valid")
    }

    #[test]
    fn crc32_matches_reference() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn typical_cursor_fits_in_a_kib() {
        let mut c = Cursor::new();
        for i in 0..45 {
            let name = format!("some-rather-long-channel-name-{i}");
            c.set(
                &ch(&name),
                Position {
                    epoch: Epoch("AbCdEfGh".into()),
                    seq: 1_000_000,
                },
            );
        }
        assert!(c.encode().len() <= 1024, "{}", c.encode().len());
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            Cursor::decode("!!!"),
            Err(CursorError::Encoding(_))
        ));
        assert_eq!(Cursor::decode("AAA"), Err(CursorError::Truncated(2)));
        assert_eq!(
            Cursor::decode(&"A".repeat(5000)),
            Err(CursorError::TooLong(5000))
        );
        assert_eq!(Cursor::decode("AAAAAAAA"), Err(CursorError::Checksum));
        // A valid checksum over an unknown version.
        let mut buf = vec![9u8];
        buf.extend_from_slice(&crc32(&[9]).to_be_bytes());
        assert_eq!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode(buf)),
            Err(CursorError::Version(9))
        );
        // A valid checksum over a truncated entry.
        let mut buf = vec![1u8, 0, 0];
        buf.extend_from_slice(&crc32(&[1, 0, 0]).to_be_bytes());
        assert_eq!(
            Cursor::decode(&URL_SAFE_NO_PAD.encode(buf)),
            Err(CursorError::Malformed(1))
        );
    }

    #[test]
    fn missing_channels_are_absent() {
        let mut c = Cursor::new();
        c.set(&ch("a"), Position::default());
        let d = Cursor::decode(&c.encode()).expect("decodes");
        assert_eq!(d.get(&ch("a")), Some(&Position::default()));
        assert_eq!(d.get(&ch("b")), None);
    }

    fn arb_cursor() -> impl Strategy<Value = Vec<(String, String, u64)>> {
        proptest::collection::vec(
            ("[a-z0-9:_-]{1,40}", "[A-Za-z0-9_-]{0,12}", any::<u64>()),
            0..30,
        )
    }

    proptest! {
        #[test]
        fn round_trips(entries in arb_cursor()) {
            let mut c = Cursor::new();
            for (name, epoch, seq) in &entries {
                c.set(&ch(name), Position { epoch: Epoch(epoch.clone()), seq: *seq });
            }
            let token = c.encode();
            prop_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            let d = Cursor::decode(&token).expect("round trip");
            prop_assert_eq!(&d, &c);
            for (name, _, _) in &entries {
                prop_assert_eq!(d.get(&ch(name)), c.get(&ch(name)));
            }
        }

        #[test]
        fn rejects_any_bit_flip(entries in arb_cursor(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut c = Cursor::new();
            for (name, epoch, seq) in &entries {
                c.set(&ch(name), Position { epoch: Epoch(epoch.clone()), seq: *seq });
            }
            let mut raw = URL_SAFE_NO_PAD.decode(c.encode()).expect("own encoding");
            let i = flip.index(raw.len());
            raw[i] ^= 1 << bit;
            prop_assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode(raw)).is_err());
        }
    }
}
