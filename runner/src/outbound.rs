//! Outbound HTTP: `allowed_outbound_hosts` enforcement and in-process service chaining.
//!
//! A request to `http://<component>.spin.internal/...` never leaves the process: it is handed
//! to that component's handler directly, as Spin's service chaining does. Everything else goes
//! through wasmtime-wasi-http's default client, but only if the manifest allows the host.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// One `allowed_outbound_hosts` entry: `scheme://host[:port]`, each part may be `*`;
/// `*.example.com` matches subdomains.
#[derive(Debug, Clone, PartialEq)]
struct HostPattern {
    scheme: String,
    host: String,
    port: Option<String>,
}

/// The parsed allow-list of one component.
#[derive(Debug, Default)]
pub struct AllowedHosts {
    patterns: Vec<HostPattern>,
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" => Some(6379),
        "rediss" => Some(6380),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "mqtt" => Some(1883),
        _ => None,
    }
}

impl AllowedHosts {
    /// Parses the manifest entries (templates already expanded).
    ///
    /// # Errors
    /// An entry has no `scheme://`.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut patterns = Vec::new();
        for entry in entries {
            let (scheme, rest) = entry.split_once("://").ok_or_else(|| {
                anyhow::anyhow!(
                    "allowed_outbound_hosts entry {entry:?} needs a scheme (e.g. https://)"
                )
            })?;
            let rest = rest.trim_end_matches('/');
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, p)) if p == "*" || p.parse::<u16>().is_ok() => {
                    (h.to_string(), Some(p.to_string()))
                }
                _ => (rest.to_string(), None),
            };
            patterns.push(HostPattern {
                scheme: scheme.to_ascii_lowercase(),
                host: host.to_ascii_lowercase(),
                port,
            });
        }
        Ok(Self { patterns })
    }

    /// Whether a destination is allowed.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let port = port.or_else(|| default_port(&scheme));
        self.patterns.iter().any(|p| {
            let scheme_ok = p.scheme == "*" || p.scheme == scheme;
            let host_ok = p.host == "*"
                || p.host == host
                || p.host
                    .strip_prefix("*.")
                    .is_some_and(|suffix| host.ends_with(&format!(".{suffix}")));
            let port_ok = match (&p.port, port) {
                (Some(pp), _) if pp == "*" => true,
                (Some(pp), Some(port)) => pp.parse::<u16>().ok() == Some(port),
                (None, Some(port)) => default_port(&p.scheme) == Some(port),
                (_, None) => false,
            };
            scheme_ok && host_ok && port_ok
        })
    }

    /// Whether a URL (`redis://host:port/db`, `https://host/...`) is allowed.
    pub fn allows_url(&self, url: &str) -> bool {
        let Some((scheme, rest)) = url.split_once("://") else {
            return false;
        };
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let authority = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => match p.parse::<u16>() {
                Ok(p) => (h, Some(p)),
                Err(_) => return false,
            },
            None => (authority, None),
        };
        self.allows(scheme, host, port)
    }
}

/// The response future of a chained request.
pub type ChainedResponse =
    Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, HttpError>> + Send>>;

/// Hands a chained request to a component of this application.
pub trait InternalDispatch: Send + Sync {
    /// Serves `request` with component `id`; `None` if there is no such component.
    fn dispatch(
        self: Arc<Self>,
        id: &str,
        request: http::Request<WasiBody>,
    ) -> Option<ChainedResponse>;
}

/// The `wasi:http` hooks of one instance.
pub struct OutboundHooks {
    allowed: Arc<AllowedHosts>,
    app: Weak<dyn InternalDispatch>,
}

impl OutboundHooks {
    /// Hooks enforcing `allowed` and chaining through `app`.
    pub fn new(allowed: Arc<AllowedHosts>, app: Weak<dyn InternalDispatch>) -> Self {
        Self { allowed, app }
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("http").to_string();
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let port = uri.port_u16();
        if !self.allowed.allows(&scheme, &host, port) {
            tracing::warn!(%uri, "outbound request denied: host not in allowed_outbound_hosts");
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        if let Some(component) = host.strip_suffix(".spin.internal") {
            let Some(app) = self.app.upgrade() else {
                return Box::new(async { Err(HttpError::DestinationUnavailable) });
            };
            let Some(served) = app.dispatch(component, request) else {
                return Box::new(async { Err(HttpError::DestinationNotFound) });
            };
            return Box::new(async move {
                let response = served.await?;
                let done: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                    Box::new(async { Ok(()) });
                Ok((response, done))
            });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> = Box::new(io);
            Ok((response.map(BodyExt::boxed_unsync), io))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("parses")
    }

    #[test]
    fn matches_scheme_host_and_port() {
        let h = hosts(&[
            "redis://127.0.0.1:6379",
            "https://*.example.com",
            "http://127.0.0.1:*",
        ]);
        assert!(h.allows_url("redis://127.0.0.1:6379"));
        assert!(h.allows_url("redis://127.0.0.1"));
        assert!(!h.allows_url("redis://127.0.0.1:6380"));
        assert!(h.allows("https", "api.example.com", None));
        assert!(!h.allows("https", "example.com", None));
        assert!(!h.allows("http", "api.example.com", None));
        assert!(h.allows("http", "127.0.0.1", Some(3000)));
        assert!(!h.allows("http", "10.0.0.1", Some(3000)));
    }

    #[test]
    fn chaining_hosts_need_an_entry() {
        let h = hosts(&["http://probe.spin.internal"]);
        assert!(h.allows("http", "probe.spin.internal", None));
        assert!(!h.allows("http", "other.spin.internal", None));
        assert!(hosts(&["http://*.spin.internal"]).allows("http", "other.spin.internal", None));
    }

    #[test]
    fn entry_without_scheme_is_an_error() {
        assert!(AllowedHosts::parse(&["example.com".to_string()]).is_err());
    }
}
