//! `xhr_send` and `jsonp_send`: a batch of client messages into the session's application.

use bytes::Bytes;
use comet_edge::http::{Query, Resp, full, read_body};
use comet_state::SessionId;
use http::{HeaderMap, StatusCode, header};
use spin_sdk::http::Request;

use crate::Ctx;
use crate::respond::text_error;

/// A client send body is at most this large (sockjs-client batches what queued up).
const SEND_BODY_LIMIT: usize = 1 << 20;

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

impl BodyError {
    fn response(&self) -> Resp {
        match self {
            BodyError::PayloadExpected => text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "payload_expected",
                "Payload expected.",
            ),
            BodyError::BrokenJson => text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "broken_json",
                "Broken JSON encoding.",
            ),
        }
    }
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
        Query::parse(raw)
            .get("d")
            .map(str::to_owned)
            .ok_or(BodyError::PayloadExpected)?
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

/// Serves a send request. Checks run in sockjs-node's order: the payload first, then the
/// session (404 when unknown or timed out; a closing session takes and drops messages).
pub(crate) async fn send(ctx: &Ctx, kind: SendKind, id: &SessionId, req: Request) -> Resp {
    let headers = req.headers().clone();
    let body = match read_body(req, SEND_BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => {
            return text_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "Payload too large.",
            );
        }
        Err(_) => return BodyError::PayloadExpected.response(),
    };
    let messages = match parse_messages(kind, &headers, &body) {
        Ok(m) => m,
        Err(e) => return e.response(),
    };
    if messages
        .iter()
        .any(|m| m.len() > ctx.config.max_message_bytes)
    {
        return text_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            "Message too large.",
        );
    }
    match ctx.sessions.get(id).await {
        Ok(None) => return crate::respond::not_found(),
        Ok(Some(record)) if record.closed => return accepted(kind),
        Ok(Some(_)) => {}
        Err(e) => return store_failure(&e.into()),
    }
    match ctx.sessions.is_alive(id).await {
        Ok(true) => {}
        Ok(false) => return crate::respond::not_found(),
        Err(e) => return store_failure(&e.into()),
    }
    if let Err(e) = ctx.app.on_messages(ctx, id, messages).await {
        return store_failure(&e);
    }
    accepted(kind)
}

fn accepted(kind: SendKind) -> Resp {
    match kind {
        SendKind::Xhr => full(
            StatusCode::NO_CONTENT,
            "text/plain; charset=UTF-8",
            Bytes::new(),
        ),
        SendKind::Jsonp => full(StatusCode::OK, "text/plain; charset=UTF-8", "ok"),
    }
}

fn store_failure(e: &comet_edge::ApiError) -> Resp {
    eprintln!("sockjs: send failed: {}", e.message);
    text_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "Store unavailable.",
    )
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
