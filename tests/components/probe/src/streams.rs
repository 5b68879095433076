//! Time and streamed bodies.
//!
//! - `GET /probe/sleep?ms=N` → sleeps with `spin_sdk::time::sleep`, then `slept N`
//! - `GET /probe/stream?n=3&ms=100` → a streamed body of `n` lines `chunk {i}\n` (i from 1),
//!   sleeping `ms` before each line after the first
//! - `POST /probe/echo` → the request body, streamed back as it arrives
//! - `POST /probe/count` → the number of bytes in the request body, read as a stream
//! - `GET /probe/hold?tag=T&ms=N` → sets key `hold:T` in the default store to `started`, sleeps
//!   `N` ms, sets it to `finished`, answers `finished`. A runner that cancels the guest task when
//!   the client goes away leaves `started`.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use http::StatusCode;
use spin_sdk::http::Request;
use spin_sdk::http::body::{IncomingBodyExt, stream as body_stream};
use spin_sdk::time::sleep as guest_sleep;

use crate::{Query, Resp, key_value, text};

pub(crate) async fn sleep(query: &Query) -> Resp {
    let ms = query.num("ms", 0u64);
    guest_sleep(Duration::from_millis(ms)).await;
    text(StatusCode::OK, format!("slept {ms}"))
}

pub(crate) fn stream(query: &Query) -> Resp {
    let n = query.num("n", 3u32);
    let ms = query.num("ms", 100u64);
    let (mut tx, body) = body_stream::<String>();
    spin_sdk::wasip3::spawn(async move {
        for i in 1..=n {
            if i > 1 {
                guest_sleep(Duration::from_millis(ms)).await;
            }
            // A failed send means the client went away: a normal end.
            if tx.send(format!("chunk {i}\n")).await.is_err() {
                break;
            }
        }
    });
    streamed(body)
}

pub(crate) fn echo(req: Request) -> Resp {
    let (mut tx, body) = body_stream::<bytes::Bytes>();
    let mut incoming = req.into_body().stream();
    spin_sdk::wasip3::spawn(async move {
        while let Some(Ok(chunk)) = incoming.next().await {
            if tx.send(chunk).await.is_err() {
                break;
            }
        }
    });
    streamed(body)
}

pub(crate) async fn count(req: Request) -> Resp {
    let mut incoming = req.into_body().stream();
    let mut total: u64 = 0;
    while let Some(chunk) = incoming.next().await {
        match chunk {
            Ok(chunk) => total += chunk.len() as u64,
            Err(e) => return text(StatusCode::BAD_REQUEST, format!("reading body: {e:?}")),
        }
    }
    text(StatusCode::OK, total.to_string())
}

pub(crate) async fn hold(query: &Query) -> Resp {
    let key = format!("hold:{}", query.get("tag").unwrap_or(""));
    let ms = query.num("ms", 1000u64);
    if let Err(resp) = key_value::set_default(&key, "started").await {
        return resp;
    }
    guest_sleep(Duration::from_millis(ms)).await;
    if let Err(resp) = key_value::set_default(&key, "finished").await {
        return resp;
    }
    text(StatusCode::OK, "finished")
}

fn streamed(
    body: impl http_body::Body<Data = bytes::Bytes, Error = anyhow::Error> + Send + 'static,
) -> Resp {
    let mut resp = http::Response::new(spin_sdk::http::box_body(body));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
