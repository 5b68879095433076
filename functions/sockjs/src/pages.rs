//! The session-less SockJS endpoints: the greeting, `/info` and `iframe.html`.

use bytes::Bytes;
use comet_edge::http::{Resp, etag, full};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use crate::respond::{Caching, RequestMeta, finish};

/// `GET /`: SockJS's greeting.
pub fn greeting(meta: &RequestMeta) -> Resp {
    finish(
        full(
            StatusCode::OK,
            "text/plain; charset=UTF-8",
            "Welcome to SockJS!\n",
        ),
        meta,
        Caching::Year,
        false,
    )
}

/// `GET /info`: what the client may use. `websocket` is always false: edge functions take
/// no inbound WebSocket, so clients pick an HTTP transport at once.
pub fn info(meta: &RequestMeta, cookie_needed: bool) -> Resp {
    let mut entropy = [0u8; 4];
    let _ = getrandom::fill(&mut entropy);
    let body = serde_json::json!({
        "websocket": false,
        "cookie_needed": cookie_needed,
        "origins": ["*:*"],
        "entropy": u32::from_le_bytes(entropy),
    })
    .to_string();
    finish(
        full(StatusCode::OK, "application/json; charset=UTF-8", body),
        meta,
        Caching::None,
        false,
    )
}

/// The hidden page iframe-based transports load; it runs the SockJS client from
/// `sockjs_url` (the client must be the same major version as the page's).
pub fn iframe_html(sockjs_url: &str) -> String {
    let url = sockjs_url
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n  \
         <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  \
         <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n  \
         <script src=\"{url}\"></script>\n  <script>\n    \
         document.domain = document.domain;\n    SockJS.bootstrap_iframe();\n  \
         </script>\n</head>\n<body>\n  <h2>Don't panic!</h2>\n  \
         <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>\n\
         </body>\n</html>"
    )
}

/// `GET /iframe.html` (and `/iframe-<anything>.html`): cached for a year, 304 on a matching
/// `If-None-Match`.
pub fn iframe(meta: &RequestMeta, headers: &HeaderMap, sockjs_url: &str) -> Resp {
    let body = iframe_html(sockjs_url);
    let tag = etag(&body);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut resp = if matches {
        full(
            StatusCode::NOT_MODIFIED,
            "text/html; charset=UTF-8",
            Bytes::new(),
        )
    } else {
        full(StatusCode::OK, "text/html; charset=UTF-8", body)
    };
    if matches {
        resp.headers_mut().remove(header::CONTENT_TYPE);
    }
    if let Ok(v) = HeaderValue::from_str(&tag) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    finish(resp, meta, Caching::Year, false)
}

/// Whether `path` names the iframe page: `/iframe.html` or `/iframe[0-9a-z._-]*.html`.
pub fn is_iframe_path(path: &str) -> bool {
    path.strip_prefix("/iframe")
        .and_then(|rest| rest.strip_suffix(".html"))
        .is_some_and(|mid| {
            mid.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b"-._".contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iframe_paths() {
        for ok in ["/iframe.html", "/iframe-a.b_1.html", "/iframe123.html"] {
            assert!(is_iframe_path(ok), "{ok}");
        }
        for bad in [
            "/iframe.htm",
            "/iframeX.html",
            "/x/iframe.html",
            "/iframe/.html",
        ] {
            assert!(!is_iframe_path(bad), "{bad}");
        }
    }

    #[test]
    fn iframe_escapes_the_client_url() {
        let page = iframe_html("http://x/a.js?\"><script>");
        assert!(page.contains("src=\"http://x/a.js?&quot;&gt;&lt;script&gt;\""));
        assert_eq!(etag(&page), etag(&page.clone()));
        assert_ne!(etag(&page), etag("other"));
    }
}
