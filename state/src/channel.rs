//! Channel names: validation, reserved prefixes and the short hash used in cursors.

use std::fmt;

use crate::error::ChannelError;

/// Longest channel name in bytes; keeps store keys and cursors bounded.
pub const MAX_CHANNEL_LEN: usize = 200;

/// Prefix of channels that need a subscribe token (docs/protocol.md §6).
pub const PRIVATE_PREFIX: &str = "private-";

/// Prefix of internal channels (e.g. a session's own queue `$s:<id>`) that clients never name.
pub const INTERNAL_PREFIX: &str = "$";

/// A validated channel name.
///
/// Holding a `Channel` proves the name is 1–200 bytes of `[A-Za-z0-9_\-.:@/=+]` (or an internal
/// `$…` name built by the engine), so store keys built from it need no escaping: none of these
/// characters is `{`, `}` or `|`, which the key layouts use as delimiters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Channel(String);

impl Channel {
    /// Validates a client-supplied name; internal `$…` names are rejected here on purpose.
    ///
    /// # Errors
    /// [`ChannelError`] when the name is empty, too long or holds a forbidden character
    /// (including `$`, so clients cannot name internal channels).
    pub fn new(name: &str) -> Result<Self, ChannelError> {
        validate(name, false)?;
        Ok(Self(name.to_owned()))
    }

    /// Validates a name that may be internal (`$` prefix); for engine-built names.
    ///
    /// # Errors
    /// [`ChannelError`] as for [`Channel::new`], except that a leading `$` is allowed.
    pub fn new_internal(name: &str) -> Result<Self, ChannelError> {
        validate(name, true)?;
        Ok(Self(name.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether subscribing needs a signed token (`private-` prefix).
    pub fn is_private(&self) -> bool {
        is_private(&self.0)
    }

    /// Whether this is an engine-internal channel (`$` prefix).
    pub fn is_internal(&self) -> bool {
        is_internal(&self.0)
    }

    /// A 32-bit FNV-1a hash of the name; cursors key channels by it so long names stay short.
    pub fn short_hash(&self) -> u32 {
        short_hash(self.0.as_bytes())
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Channel {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether a name has the `private-` prefix, so the function asks for a subscribe token.
pub fn is_private(name: &str) -> bool {
    name.starts_with(PRIVATE_PREFIX)
}

/// Whether a name has the internal `$` prefix, so clients may not use it directly.
pub fn is_internal(name: &str) -> bool {
    name.starts_with(INTERNAL_PREFIX)
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'@' | b'/' | b'=' | b'+')
}

fn validate(name: &str, internal_ok: bool) -> Result<(), ChannelError> {
    if name.is_empty() {
        return Err(ChannelError::Empty);
    }
    if name.len() > MAX_CHANNEL_LEN {
        return Err(ChannelError::TooLong(name.len()));
    }
    let body = match name.strip_prefix(INTERNAL_PREFIX) {
        Some(rest) if internal_ok && !rest.is_empty() => rest,
        _ => name,
    };
    match body.chars().find(|c| !u8::try_from(*c).is_ok_and(allowed)) {
        Some(ch) => Err(ChannelError::InvalidChar {
            name: name.to_owned(),
            ch,
        }),
        None => Ok(()),
    }
}

/// FNV-1a, 32 bits: tiny, stable across builds and platforms (cursors outlive deployments).
pub(crate) fn short_hash(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_names_by_table() {
        let long = "a".repeat(201);
        let max = "a".repeat(200);
        let cases: &[(&str, Result<(), ChannelError>)] = &[
            ("chat", Ok(())),
            ("a", Ok(())),
            ("A-z_0.9:@/=+", Ok(())),
            (&max, Ok(())),
            ("private-room", Ok(())),
            ("", Err(ChannelError::Empty)),
            (&long, Err(ChannelError::TooLong(201))),
            (
                "has space",
                Err(ChannelError::InvalidChar {
                    name: "has space".into(),
                    ch: ' ',
                }),
            ),
            (
                "brace{",
                Err(ChannelError::InvalidChar {
                    name: "brace{".into(),
                    ch: '{',
                }),
            ),
            (
                "$s:abc",
                Err(ChannelError::InvalidChar {
                    name: "$s:abc".into(),
                    ch: '$',
                }),
            ),
            (
                "é",
                Err(ChannelError::InvalidChar {
                    name: "é".into(),
                    ch: 'é',
                }),
            ),
        ];
        for (name, want) in cases {
            assert_eq!(&Channel::new(name).map(|_| ()), want, "name {name:?}");
        }
    }

    #[test]
    fn internal_names_need_the_internal_constructor() {
        let c = Channel::new_internal("$s:abc").expect("valid internal");
        assert!(c.is_internal());
        assert!(!c.is_private());
        assert!(Channel::new_internal("$").is_err());
        assert!(Channel::new_internal("$$x").is_err());
        assert!(Channel::new("private-x").expect("valid").is_private());
    }

    #[test]
    fn short_hash_is_stable() {
        // FNV-1a test vectors: cursors depend on this never changing.
        assert_eq!(short_hash(b""), 0x811c_9dc5);
        assert_eq!(short_hash(b"a"), 0xe40c_292c);
        assert_eq!(short_hash(b"foobar"), 0xbf9c_f968);
    }
}
