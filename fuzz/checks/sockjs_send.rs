//! `sockjs_send` fuzz check: `send::parse_messages` and `frame::quote`.
//!
//! First byte: bit 0 = xhr_send / jsonp_send, bits 1..=3 = the content type; the rest is the
//! body. Messages parsed from any body, quoted into a frame, must parse back the same.

use comet_sockjs_protocol::body::{SendKind, parse_messages};
use comet_sockjs_protocol::frame;
use http::{HeaderMap, HeaderValue, header};

const TYPES: [&str; 8] = [
    "",
    "text/plain",
    "text/plain;charset=UTF-8",
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "T",
    "image/png",
];

pub fn check(data: &[u8]) {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let kind = if first & 1 == 0 {
        SendKind::Xhr
    } else {
        SendKind::Jsonp
    };
    let mut headers = HeaderMap::new();
    let content_type = TYPES[usize::from(first >> 1) % TYPES.len()];
    if !content_type.is_empty() {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if let Ok(messages) = parse_messages(kind, &headers, body) {
        let frame = frame::messages(&messages);
        let again = parse_messages(SendKind::Xhr, &HeaderMap::new(), &frame.as_bytes()[1..]);
        assert_eq!(again, Ok(messages));
    }
    quoted(&String::from_utf8_lossy(body));
}

/// `quote` gives JSON that decodes to the input, with nothing SockJS escapes left raw.
fn quoted(s: &str) {
    let q = frame::quote(s);
    assert_eq!(
        serde_json::from_str::<String>(&q).ok().as_deref(),
        Some(s),
        "{q}"
    );
    let escaped = |c: char| {
        matches!(c, '\u{0}'..='\u{1f}' | '\u{200c}'..='\u{200f}' | '\u{2028}'..='\u{202f}'
            | '\u{2060}'..='\u{206f}' | '\u{fff0}'..='\u{ffff}')
            || u32::from(c) > 0xffff
    };
    assert!(q.chars().all(|c| !escaped(c)), "{q:?}");
}
