//! `xhr_send` and `jsonp_send` bodies: the client's messages, with sockjs-node's rules for
//! content types, form fields and errors.

use http::{HeaderMap, header};
use percent_encoding::percent_decode_str;

/// Which send endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendKind {
    /// `xhr_send`: raw JSON body, 204.
    Xhr,
    /// `jsonp_send`: form field `d` or raw body, 200 `ok`.
    Jsonp,
}

/// Why a send body was refused, with SockJS's texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Empty body or no `d` field, or JSON that is not an array.
    PayloadExpected,
    /// Not JSON.
    BrokenJson,
}

/// Extracts the messages of a send body: a JSON array whose strings are the messages
/// (other values are taken as their JSON text, as JavaScript servers see them).
///
/// # Errors
/// [`BodyError`] as SockJS defines.
pub fn parse_messages(
    kind: SendKind,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<String>, BodyError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let form = content_type == "application/x-www-form-urlencoded";
    let raw_ok = match kind {
        SendKind::Xhr => matches!(
            content_type.as_str(),
            "" | "text/plain" | "t" | "application/json" | "application/xml" | "text/xml"
        ),
        SendKind::Jsonp => matches!(content_type.as_str(), "" | "text/plain"),
    };
    let text = if form && kind == SendKind::Jsonp {
        let raw = std::str::from_utf8(body).map_err(|_| BodyError::BrokenJson)?;
        form_field(raw, "d").ok_or(BodyError::PayloadExpected)?
    } else if raw_ok {
        String::from_utf8(body.to_vec()).map_err(|_| BodyError::BrokenJson)?
    } else {
        return Err(BodyError::PayloadExpected);
    };
    if text.is_empty() {
        return Err(BodyError::PayloadExpected);
    }
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        // JavaScript strings may hold lone surrogates, which JSON.parse accepts and serde
        // refuses: take them as U+FFFD rather than dropping the whole batch.
        Err(_) => serde_json::from_str(&replace_lone_surrogates(&text))
            .map_err(|_| BodyError::BrokenJson)?,
    };
    let serde_json::Value::Array(items) = value else {
        return Err(BodyError::PayloadExpected);
    };
    Ok(items
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        })
        .collect())
}

/// Rewrites `\uD800`–`\uDFFF` escapes that do not form a surrogate pair as `\ufffd`.
fn replace_lone_surrogates(text: &str) -> String {
    fn unit_at(s: &str, i: usize) -> Option<u16> {
        let hex = s.get(i + 2..i + 6)?;
        (s.get(i..i + 2)? == "\\u")
            .then(|| u16::from_str_radix(hex, 16).ok())
            .flatten()
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let Some(rest) = text.get(i..) else { break };
        let Some(c) = rest.chars().next() else { break };
        if c == '\\' {
            match unit_at(text, i) {
                Some(0xd800..=0xdbff)
                    if unit_at(text, i + 6).is_some_and(|lo| (0xdc00..=0xdfff).contains(&lo)) =>
                {
                    out.push_str(&text[i..i + 12]);
                    i += 12;
                    continue;
                }
                Some(0xd800..=0xdfff) => {
                    out.push_str("\\ufffd");
                    i += 6;
                    continue;
                }
                _ => {
                    // Any other escape (including `\\`): copy both characters.
                    let next = rest[1..].chars().next().map_or(0, char::len_utf8);
                    out.push_str(&text[i..i + 1 + next]);
                    i += 1 + next;
                    continue;
                }
            }
        }
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// The first `name=` field of an `application/x-www-form-urlencoded` body, decoded (`+` is a
/// space; invalid UTF-8 becomes U+FFFD).
fn form_field(raw: &str, name: &str) -> Option<String> {
    raw.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn parses_send_bodies() {
        let none = HeaderMap::new();
        let mut form = HeaderMap::new();
        form.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(
            parse_messages(SendKind::Xhr, &none, br#"["a","b"]"#),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            parse_messages(SendKind::Jsonp, &form, b"d=%5B%22x%20y%22%5D"),
            Ok(vec!["x y".into()])
        );
        assert_eq!(
            parse_messages(SendKind::Jsonp, &none, br#"["raw"]"#),
            Ok(vec!["raw".into()])
        );
        assert_eq!(
            parse_messages(SendKind::Xhr, &none, br#"[1,{"a":2}]"#),
            Ok(vec!["1".into(), r#"{"a":2}"#.into()])
        );
        assert_eq!(
            parse_messages(SendKind::Xhr, &none, b""),
            Err(BodyError::PayloadExpected)
        );
        assert_eq!(
            parse_messages(SendKind::Jsonp, &form, b"e=1"),
            Err(BodyError::PayloadExpected)
        );
        assert_eq!(
            parse_messages(SendKind::Jsonp, &form, b"d="),
            Err(BodyError::PayloadExpected)
        );
        assert_eq!(
            parse_messages(SendKind::Xhr, &none, b"[\"x"),
            Err(BodyError::BrokenJson)
        );
        assert_eq!(
            parse_messages(SendKind::Xhr, &none, b"{}"),
            Err(BodyError::PayloadExpected)
        );
        assert_eq!(
            parse_messages(SendKind::Xhr, &none, b"\xff"),
            Err(BodyError::BrokenJson)
        );
        assert_eq!(
            parse_messages(
                SendKind::Xhr,
                &none,
                br#"["\ud800 lone","ok","\ud83d\ude00","\\ud800"]"#
            ),
            Ok(vec![
                "\u{fffd} lone".into(),
                "ok".into(),
                "\u{1F600}".into(),
                "\\ud800".into()
            ])
        );
        let mut other = HeaderMap::new();
        other.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
        assert_eq!(
            parse_messages(SendKind::Xhr, &other, br#"["x"]"#),
            Err(BodyError::PayloadExpected)
        );
        let mut plain = HeaderMap::new();
        plain.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain;charset=UTF-8"),
        );
        assert_eq!(
            parse_messages(SendKind::Xhr, &plain, br#"["x"]"#),
            Ok(vec!["x".into()])
        );
    }
}
