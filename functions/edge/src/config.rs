//! Configuration from Spin variables only, so `spin up` and `comet up` read the same settings.
//!
//! Every name is documented with its default in the README's configuration table. A variable
//! a component does not declare reads as its default; a declared one with a bad value is a
//! startup-visible error (every request answers 500 `bad_configuration` naming it), never a
//! silent fallback.

use std::time::Duration;

use comet_state::Retention;

/// Which store keeps the channel logs.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// Spin's key-value store, label `default` (the embedded default).
    Kv,
    /// Redis at this URL (`redis://host:port[/db]`), for many instances; `cluster` when it is
    /// a Redis Cluster (no multi-key commands across channels).
    Redis {
        /// Server URL.
        url: String,
        /// Redis Cluster: read watched heads one key at a time.
        cluster: bool,
    },
}

/// Allowed CORS origins.
#[derive(Debug, Clone, PartialEq)]
pub enum CorsOrigins {
    /// `*`: any origin (the default; subscribe data is public unless `private-`).
    Any,
    /// Exactly these origins.
    List(Vec<String>),
}

/// Everything a function needs to know about its deployment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Bearer key for `POST /v1/publish`; empty disables publishing.
    pub publish_key: String,
    /// The log store.
    pub backend: Backend,
    /// Retention per channel.
    pub retention: Retention,
    /// Largest message payload in bytes.
    pub max_message_bytes: usize,
    /// Most channels on one subscription.
    pub max_channels: usize,
    /// Most messages in one publish batch.
    pub max_batch: usize,
    /// Longest long-poll a client may ask for.
    pub poll_timeout_max: Duration,
    /// Long-poll duration when the client names none.
    pub poll_timeout_default: Duration,
    /// An SSE/stream response ends cleanly after this long (platforms cap request life).
    pub max_stream: Duration,
    /// Quiet streams get a heartbeat this often.
    pub heartbeat: Duration,
    /// Held requests one instance serves at once; beyond it: 503 + `Retry-After`.
    pub max_held_requests: usize,
    /// CORS allow-list.
    pub cors_origins: CorsOrigins,
    /// Messages returned by one read.
    pub read_limit: usize,
    /// Messages per second one instance accepts on `POST /v1/publish` (0: no limit).
    pub publish_rate_limit: u64,
    /// HMAC key for subscribe tokens (secret); empty: private channels are closed.
    pub token_secret: String,
    /// Channel patterns (exact, or `prefix*`) that are private besides `private-…`.
    pub private_channels: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            publish_key: String::new(),
            backend: Backend::Kv,
            retention: Retention::default(),
            max_message_bytes: 64 * 1024,
            max_channels: 100,
            max_batch: 1000,
            poll_timeout_max: Duration::from_secs(60),
            poll_timeout_default: Duration::from_secs(25),
            max_stream: Duration::from_secs(120),
            heartbeat: Duration::from_secs(15),
            max_held_requests: 10_000,
            cors_origins: CorsOrigins::Any,
            read_limit: 500,
            publish_rate_limit: 100_000,
            token_secret: String::new(),
            private_channels: Vec::new(),
        }
    }
}

/// A variable that is set but unusable.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The variable name.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "variable {}: {}", self.name, self.reason)
    }
}

impl Config {
    /// Builds a configuration from a variable lookup (`None` = not declared or empty).
    ///
    /// # Errors
    /// A variable has a value that does not parse or is out of range.
    pub fn from_lookup(get: impl Fn(&'static str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Config::default();
        let num =
            |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
                match get(name) {
                    None => Ok(default),
                    Some(v) => match v.trim().parse::<u64>() {
                        Ok(n) if (min..=max).contains(&n) => Ok(n),
                        _ => Err(ConfigError {
                            name,
                            reason: format!("{v:?} is not a whole number from {min} to {max}"),
                        }),
                    },
                }
            };
        let backend = match get("backend").as_deref().map(str::trim) {
            None | Some("kv") => Backend::Kv,
            Some("redis") => {
                let url = get("redis_url").unwrap_or_else(|| "redis://127.0.0.1:6379".into());
                if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                    return Err(ConfigError {
                        name: "redis_url",
                        reason: format!("{url:?} must start with redis://"),
                    });
                }
                let cluster = match get("redis_cluster").as_deref().map(str::trim) {
                    None | Some("false") => false,
                    Some("true") => true,
                    Some(other) => {
                        return Err(ConfigError {
                            name: "redis_cluster",
                            reason: format!("{other:?} is neither \"true\" nor \"false\""),
                        });
                    }
                };
                Backend::Redis { url, cluster }
            }
            Some(other) => {
                return Err(ConfigError {
                    name: "backend",
                    reason: format!("{other:?} is neither \"kv\" nor \"redis\""),
                });
            }
        };
        let cors_origins = match get("cors_origins").as_deref().map(str::trim) {
            None | Some("*") => CorsOrigins::Any,
            Some(list) => CorsOrigins::List(
                list.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_string())
                    .filter(|o| !o.is_empty())
                    .collect(),
            ),
        };
        let poll_timeout_max = num("poll_timeout_max", 60, 1, 3600)?;
        Ok(Self {
            publish_key: get("publish_key").unwrap_or_default(),
            backend,
            retention: Retention {
                count: num("retention_count", d.retention.count, 1, 1_000_000)?,
                max_age: Duration::from_secs(num("retention_seconds", 3600, 1, 30 * 86_400)?),
            },
            max_message_bytes: usize_of(num("max_message_bytes", 65_536, 1, 16 << 20)?),
            max_channels: usize_of(num("max_channels", 100, 1, 1000)?),
            max_batch: usize_of(num("max_batch", 1000, 1, 10_000)?),
            poll_timeout_max: Duration::from_secs(poll_timeout_max),
            poll_timeout_default: Duration::from_secs(
                num("poll_timeout_default", 25, 0, 3600)?.min(poll_timeout_max),
            ),
            max_stream: Duration::from_secs(num("max_stream_seconds", 120, 1, 86_400)?),
            heartbeat: Duration::from_secs(num("heartbeat_seconds", 15, 1, 300)?),
            max_held_requests: usize_of(num("max_held_requests", 10_000, 1, 1_000_000)?),
            cors_origins,
            read_limit: d.read_limit,
            publish_rate_limit: num("publish_rate_limit", d.publish_rate_limit, 0, 10_000_000)?,
            token_secret: get("token_secret").unwrap_or_default(),
            private_channels: get("private_channels")
                .map(|v| {
                    v.split(',')
                        .map(|p| p.trim().to_owned())
                        .filter(|p| !p.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// Reads the configuration from Spin variables.
    ///
    /// # Errors
    /// See [`Config::from_lookup`].
    pub async fn load() -> Result<Self, ConfigError> {
        let mut values = std::collections::HashMap::new();
        for name in NAMES {
            if let Ok(v) = spin_sdk::variables::get(name).await
                && !v.is_empty()
            {
                values.insert(*name, v);
            }
        }
        Self::from_lookup(|n| values.get(n).cloned())
    }
}

fn usize_of(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Every variable the functions read.
pub const NAMES: &[&str] = &[
    "publish_key",
    "token_secret",
    "private_channels",
    "publish_rate_limit",
    "backend",
    "redis_url",
    "redis_cluster",
    "retention_count",
    "retention_seconds",
    "max_message_bytes",
    "max_channels",
    "max_batch",
    "poll_timeout_max",
    "poll_timeout_default",
    "max_stream_seconds",
    "heartbeat_seconds",
    "max_held_requests",
    "cors_origins",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&'static str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_follow_the_design() {
        let c = from(&[]).expect("defaults");
        assert_eq!(c.backend, Backend::Kv);
        assert_eq!(c.retention.count, 1000);
        assert_eq!(c.poll_timeout_default, Duration::from_secs(25));
        assert_eq!(c.max_message_bytes, 65_536);
        assert_eq!(c.cors_origins, CorsOrigins::Any);
    }

    #[test]
    fn parses_redis_and_origins() {
        let c = from(&[
            ("backend", "redis"),
            ("redis_url", "redis://127.0.0.1:6379/2"),
            ("cors_origins", "https://a.example, https://b.example/"),
        ])
        .expect("parses");
        assert_eq!(
            c.backend,
            Backend::Redis {
                url: "redis://127.0.0.1:6379/2".into(),
                cluster: false
            }
        );
        assert_eq!(
            c.cors_origins,
            CorsOrigins::List(vec!["https://a.example".into(), "https://b.example".into()])
        );
    }

    #[test]
    fn rejects_bad_values_by_name() {
        assert_eq!(
            from(&[("backend", "mongo")]).expect_err("bad").name,
            "backend"
        );
        assert_eq!(
            from(&[("max_channels", "0")]).expect_err("bad").name,
            "max_channels"
        );
        assert_eq!(
            from(&[("retention_count", "x")]).expect_err("bad").name,
            "retention_count"
        );
    }
}
