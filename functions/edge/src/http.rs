//! Request parsing and response building shared by the functions: query strings, channel
//! lists, bounded body reads, CORS and security headers.

use bytes::Bytes;
use comet_state::{Channel, Cursor};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use percent_encoding::percent_decode_str;
use spin_sdk::http::body::IncomingBodyExt;
use spin_sdk::http::{BoxBody, FullBody, Request, box_body};

use crate::access::Access;
use crate::config::{Config, CorsOrigins};
use crate::error::ApiError;

/// The response type every function returns.
pub type Resp = http::Response<BoxBody>;

/// A decoded query string; repeated keys keep every value, in order.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes `a=1&b=x%20y&channel=a&channel=b` (`+` means space).
    pub fn parse(raw: &str) -> Self {
        Self(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(k), decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decodes a query component (`+` → space); invalid UTF-8 is replaced, and then fails
/// channel validation rather than being silently altered into a valid name.
pub fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The subscribed channels: every `channel=` value, each may also be a comma list, each
/// readable with `access`.
///
/// # Errors
/// None given, too many, a bad name, an internal (`$`) channel, or a private channel the
/// request's token does not open (see [`Access::check`]).
pub fn channels(query: &Query, config: &Config, access: &Access) -> Result<Vec<Channel>, ApiError> {
    let mut out: Vec<Channel> = Vec::new();
    for value in query.all("channel") {
        for name in value.split(',') {
            let channel = Channel::new(name)?;
            access.check(&channel, config)?;
            if out.contains(&channel) {
                continue;
            }
            if out.len() >= config.max_channels {
                return Err(ApiError::bad_request(
                    "too_many_channels",
                    format!("at most {} channels per subscription", config.max_channels),
                ));
            }
            out.push(channel);
        }
    }
    if out.is_empty() {
        return Err(ApiError::bad_request(
            "missing_channel",
            "name at least one channel with ?channel=",
        ));
    }
    Ok(out)
}

/// The resume cursor: `cursor=`, `lastEventId=` or the `Last-Event-ID` header, the first that
/// is not empty. An empty value means "absent" wherever it stands, so `?cursor=` left blank by
/// a client never hides a valid `Last-Event-ID` (the stream would start from now and skip
/// what the client missed).
///
/// # Errors
/// The chosen token does not decode (garbage, tampered, too long): 400 whichever place it came
/// from.
pub fn cursor(query: &Query, headers: &HeaderMap) -> Result<Option<Cursor>, ApiError> {
    let header = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let token = [query.get("cursor"), query.get("lastEventId"), header]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|t| !t.is_empty());
    token
        .map(Cursor::decode)
        .transpose()
        .map_err(ApiError::from)
}

/// Reads a request body of at most `limit` bytes.
///
/// # Errors
/// 413 `body_too_large` beyond the limit; 400 `bad_body` if the stream breaks.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(too_large(limit));
    }
    let mut stream = req.into_body().stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request("bad_body", format!("reading body: {e:?}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("request body exceeds {limit} bytes"),
    )
}

/// A strong entity tag for a static body (FNV-1a 64, quoted): cheap, stable across builds.
pub fn etag(body: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// A complete response with `content_type`.
pub fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = http::Response::new(box_body(FullBody::new(body.into())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON response.
pub fn json(status: StatusCode, body: String) -> Resp {
    full(status, "application/json", body)
}

/// The error as a JSON response (with `Retry-After` when set).
pub fn error_response(e: &ApiError) -> Resp {
    let mut resp = json(e.status, e.body());
    if let Some(secs) = e.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// Adds the headers every Comet response carries: no caching, no sniffing, and CORS for
/// allowed origins.
pub fn finish(resp: Resp, request_headers: &HeaderMap, config: &Config) -> Resp {
    let mut resp = finish_unconfigured(resp);
    let h = resp.headers_mut();
    if let Some(origin) = allowed_origin(request_headers, config) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("Retry-After"),
        );
    }
    resp
}

/// The headers of [`finish`] that need no configuration (no sniffing, no caching), for
/// answers given when the configuration itself cannot be read (`bad_configuration`): without
/// a known allow-list no CORS header is added.
pub fn finish_unconfigured(mut resp: Resp) -> Resp {
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

/// The value for `Access-Control-Allow-Origin`, if the request's origin is allowed.
fn allowed_origin(request_headers: &HeaderMap, config: &Config) -> Option<HeaderValue> {
    let origin = request_headers.get(header::ORIGIN)?;
    match &config.cors_origins {
        CorsOrigins::Any => Some(HeaderValue::from_static("*")),
        CorsOrigins::List(list) => {
            let o = origin.to_str().ok()?;
            list.iter()
                .any(|allowed| allowed == o)
                .then(|| origin.clone())
        }
    }
}

/// Answers a CORS preflight (`OPTIONS`): 204, with the allow headers for allowed origins.
pub fn preflight(request_headers: &HeaderMap, config: &Config) -> Resp {
    let mut resp = full(StatusCode::NO_CONTENT, "text/plain", Bytes::new());
    if allowed_origin(request_headers, config).is_some() {
        let h = resp.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type, Last-Event-ID"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    finish(resp, request_headers, config)
}

/// 405 naming the allowed methods.
pub fn method_not_allowed(allowed: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("use {allowed}"),
    )
}

/// What every handler does first: load the configuration and answer CORS preflights.
///
/// # Errors
/// The finished response when the request is already answered (bad configuration, preflight).
pub async fn begin(req: &Request) -> Result<(HeaderMap, Config), Resp> {
    let headers = req.headers().clone();
    let config = match crate::config().await {
        Ok(c) => c,
        Err(e) => return Err(finish_unconfigured(error_response(&e))),
    };
    if req.method() == Method::OPTIONS {
        return Err(preflight(&headers, &config));
    }
    Ok((headers, config))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(last_event_id: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = last_event_id {
            h.insert("last-event-id", v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn an_empty_cursor_parameter_never_hides_last_event_id() {
        let valid = Cursor::default().encode();
        for query in [
            "cursor=",
            "lastEventId=",
            "cursor=&lastEventId=",
            "cursor=%20",
        ] {
            let found =
                cursor(&Query::parse(query), &headers(Some(&valid))).expect("the header is valid");
            assert_eq!(found.map(|c| c.encode()), Some(valid.clone()), "?{query}");
        }
        let none = cursor(&Query::parse("cursor=&lastEventId="), &headers(Some("")));
        assert!(none.expect("all empty is absent").is_none());
    }

    #[test]
    fn a_malformed_cursor_is_refused_wherever_it_stands() {
        let bad = "not-a-cursor!";
        for (query, header) in [
            (format!("cursor={bad}"), None),
            (format!("lastEventId={bad}"), None),
            ("cursor=".to_string(), Some(bad)),
        ] {
            let err = cursor(&Query::parse(&query), &headers(header))
                .expect_err("malformed must not be ignored");
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "?{query} {header:?}");
        }
    }

    #[test]
    fn query_decodes_repeats_and_escapes() {
        let q = Query::parse("channel=a&channel=b%2Fc&x=1+2&flag");
        assert_eq!(q.all("channel").collect::<Vec<_>>(), vec!["a", "b/c"]);
        assert_eq!(q.get("x"), Some("1 2"));
        assert_eq!(q.get("flag"), Some(""));
        assert_eq!(q.get("nope"), None);
    }

    #[test]
    fn channel_list_is_validated() {
        let config = Config {
            max_channels: 2,
            ..Config::default()
        };
        let anon = Access::Anonymous;
        let ok = channels(&Query::parse("channel=a,b&channel=a"), &config, &anon).expect("valid");
        assert_eq!(ok.len(), 2);
        let codes = |q: &str| {
            channels(&Query::parse(q), &config, &anon)
                .expect_err("invalid")
                .code
        };
        assert_eq!(codes(""), "missing_channel");
        assert_eq!(codes("channel=a,b,c"), "too_many_channels");
        assert_eq!(codes("channel=bad%20name"), "invalid_channel");
        assert_eq!(codes("channel=%24s:x"), "invalid_channel");
        assert_eq!(codes("channel=private-x"), "token_required");
    }
}
