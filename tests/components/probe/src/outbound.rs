//! Outbound HTTP.
//!
//! - `GET /probe/chain` → GETs `http://probe.spin.internal/probe/hello` (service chaining) and
//!   answers with its body (502 with the error otherwise)
//! - `GET /probe/fetch?url=U` → GETs `U`; answers `{status}\n{body}` with 200, or 502 with the
//!   error (e.g. `HttpRequestDenied` when `U` is not in `allowed_outbound_hosts`)

use http::StatusCode;
use spin_sdk::http::body::IncomingBodyExt;

use crate::{Query, Resp, text};

pub(crate) async fn chain() -> Resp {
    match get("http://probe.spin.internal/probe/hello").await {
        Ok((200, body)) => text(StatusCode::OK, body),
        Ok((status, body)) => text(StatusCode::BAD_GATEWAY, format!("{status}\n{body}")),
        Err(e) => text(StatusCode::BAD_GATEWAY, e),
    }
}

pub(crate) async fn fetch(query: &Query) -> Resp {
    let Some(url) = query.get("url") else {
        return text(StatusCode::BAD_REQUEST, "missing url");
    };
    match get(url).await {
        Ok((status, body)) => text(StatusCode::OK, format!("{status}\n{body}")),
        Err(e) => text(StatusCode::BAD_GATEWAY, e),
    }
}

/// GETs `url`, returning its status and body (lossy UTF-8), or the error's debug text.
async fn get(url: &str) -> Result<(u16, String), String> {
    let resp = spin_sdk::http::get(url)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .bytes()
        .await
        .map_err(|e| format!("reading body: {e:?}"))?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
