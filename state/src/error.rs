//! Error types of the engine.
//!
//! Expected outcomes (a wait timing out, a lease held by someone else, a duplicate publish) are
//! values, not errors; these enums cover invalid input and storage failures only.

use thiserror::Error;

/// A storage operation failed (the key-value store or Redis answered with an error).
///
/// The engine cannot tell a transient failure from a permanent one, so it passes the backend's
/// message through; the function turns it into a 5xx.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("store error: {message}")]
pub struct StoreError {
    /// The backend's own description of the failure.
    pub message: String,
}

impl StoreError {
    /// Wraps a backend message, so adapters can write `StoreError::new(e.to_string())`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// Whether Redis said the script is not cached (`NOSCRIPT`), so `EVAL` must be used instead.
    ///
    /// Matched case-insensitively: clients render the error code differently (raw `NOSCRIPT`,
    /// redis-rs 1.x `NoScript: …`, older `NoScriptError`).
    pub fn is_noscript(&self) -> bool {
        self.message.to_ascii_lowercase().contains("noscript")
    }
}

/// A channel name broke the naming rules of docs/protocol.md §1.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChannelError {
    /// The name was empty.
    #[error("channel name is empty")]
    Empty,
    /// The name was longer than [`crate::channel::MAX_CHANNEL_LEN`] bytes.
    #[error("channel name too long ({0} > 200)")]
    TooLong(usize),
    /// The name held a byte outside `[A-Za-z0-9_\-.:@/=+]`.
    #[error("channel name {name:?} has invalid character {ch:?}")]
    InvalidChar {
        /// The offending name (at most 200 bytes, since length is checked first).
        name: String,
        /// The first character that is not allowed.
        ch: char,
    },
}

/// A cursor token could not be decoded; the function answers 400 `invalid_cursor`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CursorError {
    /// The token was longer than [`crate::cursor::MAX_CURSOR_LEN`] characters.
    #[error("cursor too long ({0} > 4096)")]
    TooLong(usize),
    /// The token was not base64url without padding.
    #[error("cursor is not base64url: {0}")]
    Encoding(String),
    /// The token was too short to hold a version byte and a checksum.
    #[error("cursor truncated ({0} bytes)")]
    Truncated(usize),
    /// The version byte was not one this build understands.
    #[error("unsupported cursor version {0}")]
    Version(u8),
    /// The checksum did not match: the token was damaged or tampered with.
    #[error("cursor checksum mismatch")]
    Checksum,
    /// The body did not parse into channel entries.
    #[error("malformed cursor entry at byte {0}")]
    Malformed(usize),
}

/// An argument to a publish was invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// The data was not a single valid JSON value.
    #[error("message data is not valid json: {0}")]
    InvalidJson(String),
    /// The publisher idempotency id was empty, too long or held control characters.
    #[error("invalid message id {0:?} (1-200 printable bytes)")]
    InvalidId(String),
}

/// Any failure of an engine call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StateError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A channel name was invalid.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A message was invalid.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The store held a value the engine did not write (corruption or a foreign writer).
    #[error("corrupt value at key {key:?}: {reason}")]
    Corrupt {
        /// The key whose value was unreadable.
        key: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A session id was not of the form the engine creates.
    #[error("invalid session id {0:?}")]
    InvalidSession(String),
    /// A compare-and-swap loop kept losing to other writers (should never happen in practice).
    #[error("too much contention on key {0:?}")]
    Contention(String),
}
