//! `jii` fuzz check: `jii::parse`, the stored-data round trip and `jii::valid_route`.

use comet_sockjs_protocol::jii::{self, Command};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let t = text.as_ref();
    match jii::parse(t) {
        Command::Subscribe { channel, token } => {
            assert!(!channel.contains(' '));
            assert!(token.is_none_or(|tok| !tok.is_empty() && tok == tok.trim()));
            assert!(t.starts_with(&format!("subscribe {channel}")));
        }
        Command::Unsubscribe(channel) => assert_eq!(format!("unsubscribe {channel}"), t),
        Command::Publish { channel, data } => {
            assert!(!channel.contains(' '));
            let full = format!("channel {channel} {data}");
            assert!(full == t || (data.is_empty() && format!("channel {channel}") == t));
        }
        Command::Action { route, params } => {
            assert!(!route.contains(' ') && !params.is_empty());
            assert!(t.starts_with(&format!("action {route}")));
        }
        Command::Unknown => assert!(
            !["subscribe ", "unsubscribe ", "channel ", "action "]
                .iter()
                .any(|p| t.starts_with(p))
        ),
    }
    // Payload text round-trips exactly through storage.
    let stored = jii::stored_data(t);
    serde_json::from_str::<serde::de::IgnoredAny>(&stored).expect("stored data is JSON");
    assert_eq!(jii::channel_push("c", &stored), format!("channel c {t}"));
    let message = format!("channel c {t}");
    assert_eq!(
        jii::parse(&message),
        Command::Publish {
            channel: "c",
            data: t
        }
    );
    // A valid route cannot climb out of the action target's path or carry a query.
    if jii::valid_route(t) {
        assert!((1..=200).contains(&t.len()));
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
        );
        assert!(t.split('/').all(|seg| !matches!(seg, "" | "." | "..")));
    }
}
