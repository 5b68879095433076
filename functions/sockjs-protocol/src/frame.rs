//! SockJS frames and SockJS's JSON quoting.
//!
//! Frames are `o` (open), `h` (heartbeat), `a[...]` (messages) and `c[code,"reason"]`
//! (close). Strings are JSON-encoded as `JSON.stringify` does, and then every UTF-16 code unit
//! some browser or proxy would mangle (zero-width and direction marks, line/paragraph
//! separators, invisible operators, specials, surrogates) is `\uXXXX`-escaped, exactly the
//! set sockjs-node escapes; characters outside the BMP therefore go out as escaped
//! surrogate pairs.

use std::fmt::Write as _;

/// The open frame.
pub const OPEN: &str = "o";
/// The heartbeat frame.
pub const HEARTBEAT: &str = "h";

/// Whether SockJS escapes `c` beyond what JSON requires.
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\u{0000}'..='\u{001f}'
        | '\u{200c}'..='\u{200f}'
        | '\u{2028}'..='\u{202f}'
        | '\u{2060}'..='\u{206f}'
        | '\u{fff0}'..='\u{ffff}')
}

/// `s` as a SockJS-safe JSON string literal.
pub fn quote(s: &str) -> String {
    // serde_json escapes `"`, `\` and control characters like JSON.stringify does.
    let json = serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    if !json
        .chars()
        .any(|c| needs_escape(c) || u32::from(c) > 0xffff)
    {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    let mut units = [0u16; 2];
    for c in json.chars() {
        if needs_escape(c) || u32::from(c) > 0xffff {
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// An `a[...]` frame carrying `messages` in order.
pub fn messages<S: AsRef<str>>(messages: &[S]) -> String {
    let mut out = String::from("a[");
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&quote(m.as_ref()));
    }
    out.push(']');
    out
}

/// A `c[code,"reason"]` frame (plain JSON, as sockjs-node writes it).
pub fn close(code: u16, reason: &str) -> String {
    let reason = serde_json::to_string(reason).unwrap_or_else(|_| "\"\"".to_owned());
    format!("c[{code},{reason}]")
}

/// The frame for a second receiver of a session that already has one.
pub fn another_connection() -> String {
    close(2010, "Another connection still open")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_byte_exact() {
        assert_eq!(messages(&["a", "b"]), r#"a["a","b"]"#);
        assert_eq!(messages::<&str>(&[]), "a[]");
        assert_eq!(close(3000, "Go away!"), r#"c[3000,"Go away!"]"#);
        assert_eq!(
            another_connection(),
            r#"c[2010,"Another connection still open"]"#
        );
    }

    #[test]
    fn quoting_escapes_what_json_and_sockjs_require() {
        assert_eq!(quote("x\"y\\z"), r#""x\"y\\z""#);
        assert_eq!(quote("\n\t\u{1}"), r#""\n\t\u0001""#);
        assert_eq!(
            quote("\u{200c}\u{2028}\u{2029}\u{2060}\u{fff0}\u{ffff}"),
            r#""\u200c\u2028\u2029\u2060\ufff0\uffff""#
        );
        // Ordinary non-ASCII text passes through unescaped.
        assert_eq!(quote("żółw ✓ 日本"), "\"żółw ✓ 日本\"");
        assert_eq!(quote("\u{1F600}"), r#""\ud83d\ude00""#);
        // sockjs-node's own example.
        assert_eq!(
            quote("a\u{1}\n\"\\\u{2028}\u{1F600}\u{200d}\u{fff0}x\u{7f}é"),
            "\"a\\u0001\\n\\\"\\\\\\u2028\\ud83d\\ude00\\u200d\\ufff0x\u{7f}é\""
        );
    }

    #[test]
    fn every_escaped_character_round_trips_through_json() {
        let all: String = (0u32..=0x10ffff)
            .step_by(7)
            .filter_map(char::from_u32)
            .collect();
        let quoted = quote(&all);
        assert!(
            quoted.is_ascii()
                || !quoted
                    .chars()
                    .any(|c| needs_escape(c) || u32::from(c) > 0xffff)
        );
        let back: String = serde_json::from_str(&quoted).expect("valid JSON");
        assert_eq!(back, all);
    }
}
