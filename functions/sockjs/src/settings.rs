//! The SockJS endpoint's own settings, from Spin variables (all optional).

use std::time::Duration;

/// What the endpoint runs inside its sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppKind {
    /// The Jii-comet protocol (`/comet`).
    Jii,
    /// SockJS's protocol-test apps, chosen by the route prefix: `/close` closes at once,
    /// `/cookie_needed_echo` asks for cookies, anything else echoes.
    Test,
}

/// SockJS and Jii settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The session application.
    pub app: AppKind,
    /// Where `iframe.html` loads the SockJS client from.
    pub sockjs_url: String,
    /// Quiet receivers get `h` this often (SockJS default 25 s).
    pub heartbeat: Duration,
    /// A session without a receiver for this long is gone (SockJS default 5 s).
    pub disconnect_delay: Duration,
    /// A streaming response ends after this many bytes (SockJS default 128 KiB).
    pub response_limit: usize,
    /// `cookie_needed` in `/info`, and `JSESSIONID` cookies on every transport.
    pub cookie_needed: bool,
    /// Shortest session id accepted: SockJS clients choose ids, and a guessed live id reads
    /// that session's messages. sockjs-client's default is 8 characters (40 bits); Comet's
    /// client uses 32 (160 bits). Raise this once all clients send long ids.
    pub min_session_id: usize,
    /// Channel patterns clients may publish to with `channel <ch> <payload>` (default none).
    pub client_publish: Vec<String>,
    /// Action route patterns clients may call (`time`, `chat/*`, `*`; default none).
    pub client_actions: Vec<String>,
    /// Where `action <route> …` goes: `<target>/<route>`.
    pub action_target: String,
    /// An action unanswered after this long answers with a timeout error.
    pub action_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            app: AppKind::Jii,
            sockjs_url: "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js".into(),
            heartbeat: Duration::from_secs(25),
            disconnect_delay: Duration::from_secs(5),
            response_limit: 128 * 1024,
            cookie_needed: false,
            min_session_id: 8,
            client_publish: Vec::new(),
            client_actions: Vec::new(),
            action_target: "http://actions.spin.internal".into(),
            action_timeout: Duration::from_secs(10),
        }
    }
}

/// A variable that is set but unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError(pub String);

impl Settings {
    /// Builds settings from a variable lookup (`None` = unset).
    ///
    /// # Errors
    /// A value that does not parse, naming the variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let d = Settings::default();
        let secs = |name: &str, default: Duration, max: u64| -> Result<Duration, SettingsError> {
            match get(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(s) if s.is_finite() && s > 0.0 && s <= max as f64 => {
                        Ok(Duration::from_secs_f64(s))
                    }
                    _ => Err(SettingsError(format!(
                        "variable {name}: {v:?} is not a number of seconds in (0, {max}]"
                    ))),
                },
            }
        };
        let app = match get("sockjs_app").as_deref().map(str::trim) {
            None | Some("jii") => AppKind::Jii,
            Some("test") => AppKind::Test,
            Some(other) => {
                return Err(SettingsError(format!(
                    "variable sockjs_app: {other:?} is neither \"jii\" nor \"test\""
                )));
            }
        };
        let cookie_needed = match get("sockjs_cookie").as_deref().map(str::trim) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(SettingsError(format!(
                    "variable sockjs_cookie: {other:?} is neither \"true\" nor \"false\""
                )));
            }
        };
        let response_limit = match get("sockjs_response_limit") {
            None => d.response_limit,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=64 << 20).contains(&n) => n,
                _ => {
                    return Err(SettingsError(format!(
                        "variable sockjs_response_limit: {v:?} is not a byte count up to 64 MiB"
                    )));
                }
            },
        };
        let min_session_id = match get("sockjs_min_session_id") {
            None => d.min_session_id,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if (1..=64).contains(&n) => n,
                _ => {
                    return Err(SettingsError(format!(
                        "variable sockjs_min_session_id: {v:?} is not a length from 1 to 64"
                    )));
                }
            },
        };
        let action_target = get("action_target")
            .map(|t| t.trim().trim_end_matches('/').to_owned())
            .unwrap_or(d.action_target);
        if !action_target.starts_with("http://") && !action_target.starts_with("https://") {
            return Err(SettingsError(format!(
                "variable action_target: {action_target:?} must be an http(s) URL"
            )));
        }
        Ok(Self {
            app,
            sockjs_url: get("sockjs_url").unwrap_or(d.sockjs_url),
            heartbeat: secs("sockjs_heartbeat_seconds", d.heartbeat, 300)?,
            disconnect_delay: secs("sockjs_disconnect_delay_seconds", d.disconnect_delay, 300)?,
            response_limit,
            cookie_needed,
            min_session_id,
            client_publish: patterns(get("client_publish")),
            client_actions: patterns(get("client_actions")),
            action_target,
            action_timeout: secs("action_timeout_seconds", d.action_timeout, 300)?,
        })
    }

    /// Whether clients may publish to `channel`: an exact pattern, `prefix*`, or `*`.
    pub fn may_publish(&self, channel: &str) -> bool {
        matches_any(&self.client_publish, channel)
    }

    /// Whether clients may call action `route` (same pattern rules).
    pub fn may_call(&self, route: &str) -> bool {
        matches_any(&self.client_actions, route)
    }
}

fn patterns(value: Option<String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn matches_any(patterns: &[String], name: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => p == name,
    })
}

/// Every variable [`Settings`] reads.
pub const NAMES: &[&str] = &[
    "sockjs_app",
    "sockjs_url",
    "sockjs_heartbeat_seconds",
    "sockjs_disconnect_delay_seconds",
    "sockjs_response_limit",
    "sockjs_cookie",
    "sockjs_min_session_id",
    "client_publish",
    "client_actions",
    "action_target",
    "action_timeout_seconds",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_lookup(|n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_and_overrides() {
        let d = with(&[]).expect("defaults");
        assert_eq!(d.heartbeat, Duration::from_secs(25));
        assert_eq!(d.app, AppKind::Jii);
        assert!(!d.may_publish("anything"));
        assert!(!d.may_call("time"), "actions are denied by default");
        let s = with(&[
            ("sockjs_app", "test"),
            ("sockjs_heartbeat_seconds", "0.5"),
            ("client_publish", "chat-*, exact"),
            ("client_actions", "time,chat/*"),
            ("action_target", "http://backend.example/"),
        ])
        .expect("valid");
        assert_eq!(s.app, AppKind::Test);
        assert_eq!(s.heartbeat, Duration::from_millis(500));
        assert!(s.may_publish("chat-1") && s.may_publish("exact"));
        assert!(!s.may_publish("exactly") && !s.may_publish("news"));
        assert!(s.may_call("time") && s.may_call("chat/send") && !s.may_call("admin/x"));
        assert_eq!(s.action_target, "http://backend.example");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("sockjs_app", "chat"),
            ("sockjs_heartbeat_seconds", "0"),
            ("sockjs_cookie", "yes"),
            ("sockjs_response_limit", "-1"),
            ("action_target", "ftp://x"),
            ("sockjs_min_session_id", "0"),
            ("sockjs_min_session_id", "65"),
        ] {
            let e = with(&[(k, v)]).expect_err("invalid");
            assert!(e.0.contains(k), "{e:?}");
        }
    }
}
