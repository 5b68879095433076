//! `comet-probe`: a test component that exercises each Spin host interface `comet` implements.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p comet-probe`; the e2e tests run it
//! through `tests/probe-app/spin.toml`. Every route lives under `/probe/` (the prefix is
//! stripped before dispatch). `GET /probe/hello` answers `hello`;
//! `GET /probe/headers[/…]` answers the request URI and headers as JSON; each module documents
//! the routes of one interface. Errors come back as plain-text bodies naming the error variant,
//! so tests can assert on them.

use bytes::Bytes;
use http::{Method, StatusCode};
use spin_sdk::http::{BoxBody, FullBody, Request, box_body};

mod key_value;
mod outbound;
mod redis;
mod streams;
mod variables;
mod wasi_keyvalue;

/// The response type every route returns.
type Resp = http::Response<BoxBody>;

#[spin_sdk::http_service]
async fn handle(req: Request) -> Resp {
    let path = req.uri().path().to_owned();
    let rest = path.strip_prefix("/probe").unwrap_or(&path).to_owned();
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let method = req.method().clone();
    let segments: Vec<&str> = rest.trim_start_matches('/').splitn(3, '/').collect();

    match (&method, segments.as_slice()) {
        (&Method::GET, ["hello"]) => text(StatusCode::OK, "hello"),
        (&Method::GET, ["headers", ..]) => headers(&req),
        (_, ["kv-open"]) => key_value::open(&query).await,
        (_, ["kv-keys"]) => key_value::keys(&query).await,
        (_, ["kv", key @ ..]) => key_value::route(&method, &key.join("/"), &query, req).await,
        (_, ["wkv", rest @ ..]) => wasi_keyvalue::route(&method, rest, &query, req).await,
        (&Method::POST, ["redis", op]) => redis::route(op, &query, req).await,
        (&Method::GET, ["var", name]) => variables::get(name).await,
        (&Method::GET, ["sleep"]) => streams::sleep(&query).await,
        (&Method::GET, ["stream"]) => streams::stream(&query),
        (&Method::POST, ["echo"]) => streams::echo(req),
        (&Method::POST, ["count"]) => streams::count(req).await,
        (&Method::GET, ["hold"]) => streams::hold(&query).await,
        (&Method::GET, ["chain"]) => outbound::chain().await,
        (&Method::GET, ["fetch"]) => outbound::fetch(&query).await,
        _ => text(
            StatusCode::NOT_FOUND,
            format!("probe: no route for {method} {path}"),
        ),
    }
}

/// `GET /probe/headers`: the request URI and every header, as JSON.
fn headers(req: &Request) -> Resp {
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value.into())
        })
        .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({
            "uri": req.uri().to_string(),
            "method": req.method().as_str(),
            "headers": headers,
        }),
    )
}

/// A plain-text response.
fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    let body: String = body.into();
    response(status, "text/plain; charset=utf-8", Bytes::from(body))
}

/// A JSON response.
fn json(status: StatusCode, value: &serde_json::Value) -> Resp {
    response(status, "application/json", Bytes::from(value.to_string()))
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Resp {
    let mut resp = http::Response::new(box_body(FullBody::new(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

/// Reads the whole request body, or answers 400 naming the error.
async fn read_body(req: Request) -> Result<Bytes, Resp> {
    use spin_sdk::http::body::IncomingBodyExt;
    req.into_body()
        .bytes()
        .await
        .map_err(|e| text(StatusCode::BAD_REQUEST, format!("reading body: {e:?}")))
}

/// Decoded query parameters, in order.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Self {
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Query(pairs)
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A numeric parameter, or `default` when absent or malformed.
    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }
}

/// Decodes `%XX` escapes and `+` (form encoding); invalid escapes are kept verbatim.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
