//! The Jii-comet text protocol inside SockJS messages.
//!
//! Client → server, one command per message (as Jii-comet's server parses them):
//! `subscribe <ch> [<token>]`, `unsubscribe <ch>`, `channel <ch> <data>`,
//! `action <route> [<json>]` (the subscribe token is Comet's addition, for private channels).
//! Server → client: `channel <ch> <data>` and `action <json>` (with the request's
//! `requestUid`). Payload text round-trips exactly: a JSON object or array is stored as
//! JSON, anything else as a JSON string, and pushed back as the same text.

/// A parsed client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `subscribe <channel> [<token>]` (the token is Comet's addition, for private channels).
    Subscribe {
        /// The channel.
        channel: &'a str,
        /// A subscribe token, if given.
        token: Option<&'a str>,
    },
    /// `unsubscribe <channel>`.
    Unsubscribe(&'a str),
    /// `channel <channel> <data>`: a client publish.
    Publish {
        /// Target channel.
        channel: &'a str,
        /// The payload text.
        data: &'a str,
    },
    /// `action <route> <json>`: a request to the action target.
    Action {
        /// The route, e.g. `site/test`.
        route: &'a str,
        /// The parameters' JSON text (`{}` when absent).
        params: &'a str,
    },
    /// Anything else (ignored, as Jii-comet ignores it).
    Unknown,
}

/// Parses one client message.
pub fn parse(message: &str) -> Command<'_> {
    if let Some(rest) = message.strip_prefix("subscribe ") {
        match rest.split_once(' ') {
            Some((channel, token)) => Command::Subscribe {
                channel,
                token: Some(token.trim()).filter(|t| !t.is_empty()),
            },
            None => Command::Subscribe {
                channel: rest,
                token: None,
            },
        }
    } else if let Some(rest) = message.strip_prefix("unsubscribe ") {
        Command::Unsubscribe(rest)
    } else if let Some(rest) = message.strip_prefix("channel ") {
        let (channel, data) = rest.split_once(' ').unwrap_or((rest, ""));
        Command::Publish { channel, data }
    } else if let Some(rest) = message.strip_prefix("action ") {
        let (route, params) = rest.split_once(' ').unwrap_or((rest, ""));
        Command::Action {
            route,
            params: if params.is_empty() { "{}" } else { params },
        }
    } else {
        Command::Unknown
    }
}

/// The stored JSON for a client-published payload (see the module doc).
pub fn stored_data(text: &str) -> String {
    let structured = matches!(text.trim_start().as_bytes().first(), Some(b'{' | b'['))
        && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
    if structured {
        text.to_owned()
    } else {
        serde_json::Value::String(text.to_owned()).to_string()
    }
}

/// The `channel <ch> <data>` push for a stored message: a JSON string goes out as its
/// content, anything else as its JSON text.
pub fn channel_push(channel: &str, data: &str) -> String {
    let text = match serde_json::from_str::<serde_json::Value>(data) {
        Ok(serde_json::Value::String(s)) => s,
        _ => data.to_owned(),
    };
    format!("channel {channel} {text}")
}

/// The `action <json>` reply: an object answer gets the `requestUid` added (as Jii does);
/// any other answer is wrapped as `{"result": …}` so the client can still match it.
pub fn action_reply(answer: serde_json::Value, request_uid: Option<&serde_json::Value>) -> String {
    let mut object = match answer {
        serde_json::Value::Object(map) => map,
        other => {
            let mut map = serde_json::Map::new();
            map.insert("result".into(), other);
            map
        }
    };
    object.remove("requestUid");
    let mut json = serde_json::Value::Object(object).to_string();
    // Jii appends the uid as the last key; so do we.
    if let Some(uid) = request_uid {
        json.pop();
        if json.len() > 1 {
            json.push(',');
        }
        json.push_str("\"requestUid\":");
        json.push_str(&uid.to_string());
        json.push('}');
    }
    format!("action {json}")
}

/// The `action <json>` reply for a failed action: `{"error":{code,message},"requestUid":…}`.
pub fn action_error(code: &str, message: &str, request_uid: Option<&serde_json::Value>) -> String {
    action_reply(
        serde_json::json!({ "error": { "code": code, "message": message } }),
        request_uid,
    )
}

/// Whether an action route is safe to append to the target URL: 1–200 characters of
/// `[A-Za-z0-9_.-/]`, no empty, `.` or `..` segment.
pub fn valid_route(route: &str) -> bool {
    !route.is_empty()
        && route.len() <= 200
        && route
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b))
        && route
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_commands_like_jii() {
        assert_eq!(
            parse("subscribe news"),
            Command::Subscribe {
                channel: "news",
                token: None
            }
        );
        assert_eq!(
            parse("subscribe private-x a.b.c"),
            Command::Subscribe {
                channel: "private-x",
                token: Some("a.b.c")
            }
        );
        assert_eq!(parse("unsubscribe news"), Command::Unsubscribe("news"));
        assert_eq!(
            parse("channel chat hello world"),
            Command::Publish {
                channel: "chat",
                data: "hello world"
            }
        );
        assert_eq!(
            parse("action site/test {\"a\":1}"),
            Command::Action {
                route: "site/test",
                params: "{\"a\":1}"
            }
        );
        assert_eq!(
            parse("action site/test"),
            Command::Action {
                route: "site/test",
                params: "{}"
            }
        );
        assert_eq!(parse("subscribe"), Command::Unknown);
        assert_eq!(parse("hello"), Command::Unknown);
    }

    #[test]
    fn payloads_round_trip_exactly() {
        for text in [
            "hello",
            "{\"a\":1}",
            "[1, 2]",
            "\"quoted\"",
            "123",
            "{broken",
            "",
        ] {
            let stored = stored_data(text);
            assert!(serde_json::from_str::<serde_json::Value>(&stored).is_ok());
            assert_eq!(channel_push("c", &stored), format!("channel c {text}"));
        }
        assert_eq!(channel_push("c", "{\"x\":2}"), "channel c {\"x\":2}");
    }

    #[test]
    fn action_replies_carry_the_uid() {
        let uid = json!("u-1");
        assert_eq!(
            action_reply(json!({"sum": 3}), Some(&uid)),
            "action {\"sum\":3,\"requestUid\":\"u-1\"}"
        );
        assert_eq!(
            action_reply(json!("text"), Some(&uid)),
            "action {\"result\":\"text\",\"requestUid\":\"u-1\"}"
        );
        assert_eq!(
            action_error("action_timeout", "slow", Some(&uid)),
            "action {\"error\":{\"code\":\"action_timeout\",\"message\":\"slow\"},\"requestUid\":\"u-1\"}"
        );
        assert_eq!(
            action_reply(json!({}), Some(&uid)),
            "action {\"requestUid\":\"u-1\"}"
        );
        assert_eq!(action_reply(json!({"a": 1}), None), "action {\"a\":1}");
    }

    #[test]
    fn routes_are_validated() {
        for ok in ["time", "site/test", "a-b/c_d.e"] {
            assert!(valid_route(ok), "{ok}");
        }
        for bad in [
            "", "/x", "x/", "a//b", "../x", "a/./b", "a b", "a?b", "a#b", "a%2f",
        ] {
            assert!(!valid_route(bad), "{bad}");
        }
    }
}
