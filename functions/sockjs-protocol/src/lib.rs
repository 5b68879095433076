//! SockJS 0.3.3 and Jii-comet on the wire, without I/O: what the `sockjs` function speaks,
//! kept SDK-free so it is unit-tested and fuzzed natively.
//!
//! - [`frame`]: `o`, `h`, `a[…]`, `c[…]` and SockJS's JSON escaping
//! - [`transport`]: how each receiving transport wraps frames, preludes, callbacks
//! - [`body`]: `xhr_send` / `jsonp_send` bodies into messages
//! - [`jii`]: Jii-comet commands, pushes and action replies

#![deny(missing_docs)]

pub mod body;
pub mod frame;
pub mod jii;
pub mod transport;
