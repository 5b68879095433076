//! Response building with SockJS's header rules: CORS that echoes the origin with
//! credentials, long caching for static answers, none for session traffic, `JSESSIONID`.

use bytes::Bytes;
use comet_edge::Config;
use comet_edge::config::CorsOrigins;
use comet_edge::http::{Resp, full};
use http::{HeaderMap, HeaderValue, StatusCode, header};

/// One year, SockJS's cache lifetime for `/info` preflights and `iframe.html`.
pub const YEAR_SECS: u64 = 365 * 24 * 3600;

/// What the request said that shapes the response headers.
pub struct RequestMeta {
    /// `Origin`, if sent and allowed: echoed, with credentials.
    pub origin: Option<HeaderValue>,
    /// No (or a `null`) origin and any origin allowed: `Access-Control-Allow-Origin: *`.
    pub wildcard: bool,
    /// `Access-Control-Request-Headers`, echoed on preflights.
    pub request_headers: Option<HeaderValue>,
    /// The `JSESSIONID` cookie the client sent.
    pub jsessionid: Option<String>,
    /// Whether to set `JSESSIONID` (cookie-needed deployments).
    pub cookie_needed: bool,
}

impl RequestMeta {
    /// Reads the request headers against the CORS allow-list.
    pub fn new(headers: &HeaderMap, config: &Config, cookie_needed: bool) -> Self {
        let sent = headers
            .get(header::ORIGIN)
            .filter(|o| o.as_bytes() != b"null");
        let wildcard = sent.is_none() && config.cors_origins == CorsOrigins::Any;
        let origin = sent.and_then(|o| {
            let allowed = match &config.cors_origins {
                CorsOrigins::Any => true,
                CorsOrigins::List(list) => o.to_str().is_ok_and(|o| list.iter().any(|a| a == o)),
            };
            allowed.then(|| o.clone())
        });
        let jsessionid = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().strip_prefix("JSESSIONID="))
            .find(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            })
            .map(str::to_owned);
        Self {
            origin,
            wildcard,
            request_headers: headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned(),
            jsessionid,
            cookie_needed,
        }
    }
}

/// How long a response may be cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Session traffic and `/info`: never.
    None,
    /// Preflights and `iframe.html`: a year.
    Year,
}

/// A plain-text error the SockJS protocol prescribes (its clients and test suites match the
/// text), with Comet's stable code in a `Comet-Error` header.
pub fn text_error(status: StatusCode, code: &'static str, text: &'static str) -> Resp {
    let mut resp = full(
        status,
        "text/plain; charset=UTF-8",
        Bytes::from_static(text.as_bytes()),
    );
    resp.headers_mut()
        .insert("comet-error", HeaderValue::from_static(code));
    resp
}

/// 404 for unknown routes and sessions, in sockjs-node's words.
pub fn not_found() -> Resp {
    text_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "404 Error: Page not found\n",
    )
}

/// Adds the headers every SockJS answer carries.
pub fn finish(mut resp: Resp, meta: &RequestMeta, caching: Caching, session_traffic: bool) -> Resp {
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    match caching {
        Caching::None => {
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(
                    "no-store, no-cache, no-transform, must-revalidate, max-age=0",
                ),
            );
        }
        Caching::Year => {
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000"),
            );
            if let Ok(v) = HeaderValue::from_str(&http_date(now_secs() + YEAR_SECS)) {
                h.insert(header::EXPIRES, v);
            }
        }
    }
    if let Some(origin) = &meta.origin {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    } else if meta.wildcard {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    if session_traffic && meta.cookie_needed {
        let value = format!(
            "JSESSIONID={}; path=/",
            meta.jsessionid.as_deref().unwrap_or("dummy")
        );
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(header::SET_COOKIE, v);
        }
    }
    resp
}

/// A CORS preflight for a SockJS endpoint: 204, cached for a year.
pub fn preflight(meta: &RequestMeta, methods: &'static str) -> Resp {
    let mut resp = full(
        StatusCode::NO_CONTENT,
        "text/plain; charset=UTF-8",
        Bytes::new(),
    );
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(YEAR_SECS));
    if let Some(requested) = &meta.request_headers {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    finish(resp, meta, Caching::Year, true)
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An RFC 9110 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn http_date(unix: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), for days since 1970-01-01.
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[usize::try_from(days % 7).unwrap_or(0)],
        MONTHS[usize::try_from(month - 1).unwrap_or(0)],
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_http_dates() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
    }

    #[test]
    fn reads_the_session_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; JSESSIONID=abc.1"),
        );
        let meta = RequestMeta::new(&h, &Config::default(), true);
        assert_eq!(meta.jsessionid.as_deref(), Some("abc.1"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("JSESSIONID=a;b=<x>"),
        );
        assert_eq!(
            RequestMeta::new(&h, &Config::default(), true)
                .jsessionid
                .as_deref(),
            Some("a")
        );
    }
}
