//! `envelope` fuzz check: `Channel::new`, `NewMessage::new` and the envelope JSON.
//!
//! Input (lossy UTF-8) is read two ways: as lines `channel`, `id` (empty = none), `epoch`,
//! then the data text; and as a whole publish body (`{"channel","data","id"?}` or a batch),
//! parsed the way functions/publish does (with `data` as a JSON value, not raw text).

use comet_state::{Channel, Envelope, Epoch, Event, MAX_ID_LEN, NewMessage};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.splitn(4, '\n');
    let (name, id, epoch) = (lines.next(), lines.next(), lines.next());
    let (name, id, epoch) = (
        name.unwrap_or(""),
        id.filter(|i| !i.is_empty()),
        epoch.unwrap_or(""),
    );
    let payload = lines.next().unwrap_or("");
    if let Some(channel) = channel(name) {
        message(channel, payload, id, epoch);
    }
    publish_body(&text);
}

fn channel(name: &str) -> Option<Channel> {
    let internal = Channel::new_internal(name);
    let Ok(channel) = Channel::new(name) else {
        assert!(internal.is_err() || name.starts_with('$'), "{name:?}");
        return None;
    };
    assert_eq!(channel.as_str(), name);
    assert!((1..=200).contains(&name.len()));
    assert!(
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:@/=+".contains(&b))
    );
    assert_eq!(internal.as_ref().map(Channel::as_str), Ok(name));
    Some(channel)
}

fn message(channel: Channel, payload: &str, id: Option<&str>, epoch: &str) {
    let Ok(m) = NewMessage::new(channel, payload, id) else {
        return;
    };
    assert_eq!(m.data, payload.trim());
    assert!(id.is_none_or(|i| i.len() <= MAX_ID_LEN && i.bytes().all(|b| b.is_ascii_graphic())));
    let envelope = Envelope {
        channel: m.channel.clone(),
        seq: payload.len() as u64,
        epoch: Epoch(epoch.to_owned()),
        data: m.data.clone(),
        time: u64::MAX - epoch.len() as u64,
    };
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wire {
        channel: String,
        seq: u64,
        epoch: String,
        #[allow(dead_code)]
        data: IgnoredAny,
        time: u64,
    }
    let json = envelope.to_json();
    let wire: Wire = serde_json::from_str(&json).expect("envelope JSON parses");
    assert_eq!(wire.channel, m.channel.as_str());
    assert_eq!((wire.seq, wire.time), (envelope.seq, envelope.time));
    let safe = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    };
    assert!(safe(&wire.epoch));
    if safe(epoch) {
        assert_eq!(wire.epoch, epoch);
    }
    // Where serde_json can build a `Value` (it caps depth and number range), data is exact.
    if let (Ok(want), Ok(got)) = (
        serde_json::from_str::<Value>(&m.data),
        serde_json::from_str::<Value>(&json),
    ) {
        assert_eq!(got["data"], want);
    }
    let reset = Event::Reset {
        channel: m.channel,
        epoch: envelope.epoch,
        seq: 1,
    };
    serde_json::from_str::<Value>(&reset.to_json()).expect("reset JSON parses");
}

/// functions/publish's `Incoming`, with `data` as a value (its `RawValue` needs a feature).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    channel: String,
    data: Value,
    #[serde(default)]
    id: Option<String>,
}

fn publish_body(text: &str) {
    let incoming: Vec<Incoming> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text).unwrap_or_default()
    } else {
        serde_json::from_str(text)
            .map(|one| vec![one])
            .unwrap_or_default()
    };
    for m in incoming {
        let Some(channel) = channel(&m.channel) else {
            continue;
        };
        let data = m.data.to_string();
        // serde_json's own output must always pass NewMessage's validation.
        assert!(
            NewMessage::new(channel.clone(), &data, None).is_ok(),
            "{data}"
        );
        message(channel, &data, m.id.as_deref(), "AbCdEfGh");
    }
}
