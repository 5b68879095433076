//! `files`: the browser client (`client/comet.js`, its types) and the demo page, compiled
//! into the component so a deployment serves exactly the client it was built with, with no
//! file system access.
//!
//! - `GET /client/comet.js`, `/client/comet.d.ts`, and the modules comet.js imports
//!   (`errors.js`, `tokens.js`, `transports.js`, `sockjs.js`), so
//!   `<script type="module">import { Comet } from '/client/comet.js'</script>` works as is
//! - not `react.js`: it imports `react` by its bare name, which only bundlers and Node
//!   resolve (it ships in the npm package `comet-push-client/react`)
//! - `GET /client/demo/` (and `/client/demo/index.html`): the demo chat

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
        "/client/errors.js" => (
            include_str!("../../../client/errors.js"),
            "text/javascript; charset=utf-8",
        ),
        "/client/tokens.js" => (
            include_str!("../../../client/tokens.js"),
            "text/javascript; charset=utf-8",
        ),
        "/client/transports.js" => (
            include_str!("../../../client/transports.js"),
            "text/javascript; charset=utf-8",
        ),
        "/client/sockjs.js" => (
            include_str!("../../../client/sockjs.js"),
            "text/javascript; charset=utf-8",
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
        for path in [
            "/client/comet.js",
            "/client/comet.d.ts",
            "/client/errors.js",
            "/client/tokens.js",
            "/client/transports.js",
            "/client/sockjs.js",
            "/client/demo/",
        ] {
            assert!(lookup(path).is_some(), "{path}");
        }
        for path in [
            "/client/",
            "/client/../Cargo.toml",
            "/client/demo/x.js",
            "/client/react.js",
        ] {
            assert!(lookup(path).is_none(), "{path}");
        }
        assert_ne!(etag("a"), etag("b"));
    }

    /// Every module the served client imports (`from './x.js'`) is served too, or a browser
    /// loading /client/comet.js fails on the missing import.
    #[test]
    fn serves_every_relative_import_of_the_client() {
        let mut pending = vec!["/client/comet.js".to_owned()];
        let mut seen = Vec::new();
        while let Some(path) = pending.pop() {
            let file = lookup(&path).unwrap_or_else(|| panic!("{path} is imported but not served"));
            seen.push(path);
            for part in file.body.split("from './").skip(1) {
                let name = part.split('\'').next().unwrap_or_default();
                let import = format!("/client/{name}");
                if !seen.contains(&import) && !pending.contains(&import) {
                    pending.push(import);
                }
            }
        }
        assert!(seen.len() >= 5, "{seen:?}");
    }
}
