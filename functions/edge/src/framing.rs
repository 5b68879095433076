//! Wire framing of the native transports, byte for byte.
//!
//! * Server-Sent Events per the WHATWG HTML spec (§9.2): `id:` carries the cursor after the
//!   event, so a browser's automatic reconnect (`Last-Event-ID`) resumes exactly there.
//! * NDJSON for `/v1/stream`: one JSON object per line.
//! * JSONP for `/v1/poll?callback=`: the callback name is validated, never echoed raw.

use comet_state::{Cursor, Event, Position};

/// Bytes of padding in the SSE prelude: some proxies buffer the first 2 KiB of a response.
pub const SSE_PADDING: usize = 2048;

/// The SSE prelude: a padding comment, then the reconnect delay hint.
pub fn sse_prelude(retry_ms: u32) -> String {
    let mut s = String::with_capacity(SSE_PADDING + 32);
    s.push(':');
    s.extend(std::iter::repeat_n(' ', SSE_PADDING));
    s.push('\n');
    s.push_str(&format!("retry: {retry_ms}\n\n"));
    s
}

/// One SSE event. `event` is `None` for plain messages (so `onmessage` fires) and a name for
/// the others (`reset`, `open`, `close`). Data is JSON, which never contains a raw newline, so
/// one `data:` line suffices; a newline in it would still be split correctly below.
pub fn sse_event(event: Option<&str>, id: Option<&str>, data: &str) -> String {
    let mut s = String::with_capacity(data.len() + 64);
    if let Some(event) = event {
        s.push_str("event: ");
        s.push_str(event);
        s.push('\n');
    }
    if let Some(id) = id {
        s.push_str("id: ");
        s.push_str(id);
        s.push('\n');
    }
    for line in data.split('\n') {
        s.push_str("data: ");
        s.push_str(line.strip_suffix('\r').unwrap_or(line));
        s.push('\n');
    }
    s.push('\n');
    s
}

/// An SSE heartbeat: a comment line, ignored by `EventSource`, that keeps proxies from
/// closing a quiet stream.
pub fn sse_heartbeat() -> &'static str {
    ":hb\n\n"
}

/// The SSE event name for an event (`None` = default `message`).
pub fn sse_event_name(event: &Event) -> Option<&'static str> {
    match event {
        Event::Message(_) => None,
        Event::Reset { .. } => Some("reset"),
    }
}

/// An NDJSON line for `/v1/stream`: the event's JSON with the cursor after it appended.
pub fn ndjson_event(event: &Event, cursor: &str) -> String {
    let json = event.to_json();
    let body = json.strip_suffix('}').unwrap_or(&json);
    format!("{body},\"cursor\":\"{cursor}\"}}\n")
}

/// An NDJSON control line (`open`, `heartbeat`, `close`) carrying the current cursor.
pub fn ndjson_control(kind: &str, cursor: &str) -> String {
    format!("{{\"type\":\"{kind}\",\"cursor\":\"{cursor}\"}}\n")
}

/// Whether a JSONP callback name is safe and valid JavaScript: dot-separated identifiers
/// (`^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$`, at most 64 bytes), so `a.`, `.a` and `a..b`
/// (syntax errors in the page) are refused.
pub fn valid_callback(name: &str) -> bool {
    let identifier = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    !name.is_empty() && name.len() <= 64 && name.split('.').all(identifier)
}

/// Wraps JSON in a JSONP call. The `/**/` prefix defeats content-sniffing attacks (Rosetta
/// Flash) that rely on the response starting with the callback name.
pub fn jsonp(callback: &str, json: &str) -> String {
    format!("/**/{callback}({json});")
}

/// Per-event cursors for a batch: the cursor after each event, in order.
///
/// `start` is the cursor the batch was read from (positions before it); channels without a
/// start position get one just before their first event. Resuming from the cursor of event
/// *k* redelivers nothing up to *k* and loses nothing after it.
pub fn event_cursors(
    start: &Cursor,
    final_positions: &[(comet_state::Channel, Position)],
    events: &[Event],
) -> Vec<String> {
    let mut cur = Cursor::from_positions(final_positions.iter().map(|(c, p)| (c, p)));
    // Rewind every channel that has events to where it stood before the batch.
    let mut rewound: Vec<&comet_state::Channel> = Vec::new();
    for ev in events {
        let ch = ev.channel();
        if rewound.contains(&ch) {
            continue;
        }
        rewound.push(ch);
        let before = match start.get(ch) {
            Some(p) => p.clone(),
            None => match ev {
                Event::Message(e) => Position {
                    epoch: e.epoch.clone(),
                    seq: e.seq.saturating_sub(1),
                },
                Event::Reset { epoch, seq, .. } => Position {
                    epoch: epoch.clone(),
                    seq: seq.saturating_sub(1),
                },
            },
        };
        cur.set(ch, before);
    }
    events
        .iter()
        .map(|ev| {
            let after = match ev {
                Event::Message(e) => Position {
                    epoch: e.epoch.clone(),
                    seq: e.seq,
                },
                Event::Reset { epoch, seq, .. } => Position {
                    epoch: epoch.clone(),
                    seq: seq.saturating_sub(1),
                },
            };
            cur.set(ev.channel(), after);
            cur.encode()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use comet_state::{Channel, Envelope, Epoch};

    fn msg(seq: u64) -> Event {
        Event::Message(Envelope {
            channel: Channel::new("chat").expect("valid"),
            seq,
            epoch: Epoch("k3f9".into()),
            data: "{\"t\":1}".into(),
            time: 5,
        })
    }

    #[test]
    fn sse_bytes_are_exact() {
        assert_eq!(
            sse_event(None, Some("c1"), "{\"a\":1}"),
            "id: c1\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            sse_event(Some("reset"), None, "x\ny"),
            "event: reset\ndata: x\ndata: y\n\n"
        );
        let p = sse_prelude(2000);
        assert!(p.starts_with(':') && p.ends_with("\nretry: 2000\n\n"));
        assert_eq!(p.len(), 1 + SSE_PADDING + 1 + "retry: 2000\n\n".len());
    }

    #[test]
    fn ndjson_appends_the_cursor() {
        assert_eq!(
            ndjson_event(&msg(3), "CUR"),
            "{\"channel\":\"chat\",\"seq\":3,\"epoch\":\"k3f9\",\"data\":{\"t\":1},\"time\":5,\"cursor\":\"CUR\"}\n"
        );
        assert_eq!(
            ndjson_control("heartbeat", "C"),
            "{\"type\":\"heartbeat\",\"cursor\":\"C\"}\n"
        );
    }

    #[test]
    fn callbacks_are_validated() {
        for ok in ["cb", "_x", "$", "a.b.c", "jQuery123_456"] {
            assert!(valid_callback(ok), "{ok}");
        }
        for bad in [
            "",
            "1a",
            "a-b",
            "a(b)",
            "alert(1);x",
            &"a".repeat(65),
            "a b",
            "a\u{e9}",
            "a.",
            ".a",
            "a..b",
            "a.1b",
        ] {
            assert!(!valid_callback(bad), "{bad}");
        }
        assert_eq!(jsonp("cb", "{}"), "/**/cb({});");
    }

    #[test]
    fn event_cursors_resume_after_each_event() {
        let chat = Channel::new("chat").expect("valid");
        let start = Cursor::from_positions([(
            &chat,
            &Position {
                epoch: Epoch("k3f9".into()),
                seq: 1,
            },
        )]);
        let events = vec![msg(2), msg(3)];
        let finals = vec![(
            chat.clone(),
            Position {
                epoch: Epoch("k3f9".into()),
                seq: 3,
            },
        )];
        let cursors = event_cursors(&start, &finals, &events);
        let first = Cursor::decode(&cursors[0]).expect("decodes");
        assert_eq!(first.get(&chat).map(|p| p.seq), Some(2));
        let last = Cursor::decode(&cursors[1]).expect("decodes");
        assert_eq!(last.get(&chat).map(|p| p.seq), Some(3));
    }
}
