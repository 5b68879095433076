//! `files`: the browser client (`client/comet.js`, its types) and the demo page, compiled
//! into the component so a deployment serves exactly the client it was built with, with no
//! file system access.
//!
//! - `GET /client/comet.js`, `/client/comet.d.ts`
//! - `GET /client/demo/` (and `/client/demo/index.html`): the live ticker demo

use bytes::Bytes;
use comet_edge::http::{Resp, etag, full};
use http::{HeaderValue, Method, StatusCode, header};
use spin_sdk::http::Request;

/// An embedded file: its body, content type and strong validator.
struct File {
    body: &'static str,
    content_type: &'static str,
}

/// The file served at `path`, if any.
fn lookup(path: &str) -> Option<File> {
    let (body, content_type) = match path {
        "/client/comet.js" => (
            include_str!("../../../client/comet.js"),
            "text/javascript; charset=utf-8",
        ),
        "/client/comet.d.ts" => (
            include_str!("../../../client/comet.d.ts"),
            "text/plain; charset=utf-8",
        ),
        "/client/demo" | "/client/demo/" | "/client/demo/index.html" => (
            include_str!("../../../client/demo/index.html"),
            "text/html; charset=utf-8",
        ),
        _ => return None,
    };
    Some(File { body, content_type })
}

#[spin_sdk::http_service]
async fn handle(req: Request) -> Resp {
    let Some(file) = lookup(req.uri().path()) else {
        return full(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n",
        );
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = full(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "use GET\n",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    let tag = etag(file.body);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if fresh {
        full(StatusCode::NOT_MODIFIED, file.content_type, Bytes::new())
    } else if req.method() == Method::HEAD {
        full(StatusCode::OK, file.content_type, Bytes::new())
    } else {
        full(StatusCode::OK, file.content_type, file.body)
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    // Revalidate every time: a redeploy must never leave browsers on an old client.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_client_files_only() {
        for path in ["/client/comet.js", "/client/comet.d.ts", "/client/demo/"] {
            assert!(lookup(path).is_some(), "{path}");
        }
        for path in ["/client/", "/client/../Cargo.toml", "/client/demo/x.js"] {
            assert!(lookup(path).is_none(), "{path}");
        }
        assert_ne!(etag("a"), etag("b"));
    }
}
