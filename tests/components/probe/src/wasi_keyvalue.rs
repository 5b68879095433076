//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) routes; `?store=label` picks the bucket
//! (default `default`).
//!
//! - `GET /probe/wkv/{key}` → the value, or 404 `not found`
//! - `POST /probe/wkv/incr/{key}?delta=N` → the new value (delta defaults to 1)
//! - `POST /probe/wkv/cas/{key}?expect=V` (body = new value) → 200 `swapped` or 409 `conflict`.
//!   Without `expect` the key is expected to be absent. The `x-probe-conflict` header says where
//!   the conflict was seen: `current` (the value read through the CAS handle differed) or `swap`
//!   (the host refused the swap). `interfere=W` writes `W` to the key after the CAS handle is
//!   taken and before the swap, so the host's own conflict detection is exercised.
//! - `POST /probe/wkv/set-many` with a JSON object of string values → `ok`
//! - `POST /probe/wkv/get-many` with a JSON array of keys → JSON object, `null` for absent keys
//! - `POST /probe/wkv/delete-many` with a JSON array of keys → `ok`

use http::{Method, StatusCode};
use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store};
use spin_sdk::http::Request;

use crate::{Query, Resp, json, read_body, response, text};

pub(crate) async fn route(method: &Method, segments: &[&str], query: &Query, req: Request) -> Resp {
    let bucket = match store::open(query.get("store").unwrap_or("default")) {
        Ok(bucket) => bucket,
        Err(e) => return error_response(&e),
    };
    let result = match (method, segments) {
        (&Method::POST, ["incr", key]) => increment(&bucket, key, query),
        (&Method::POST, ["cas", key]) => match read_body(req).await {
            Ok(body) => compare_and_swap(&bucket, key, query, &body),
            Err(resp) => return resp,
        },
        (&Method::POST, ["set-many" | "get-many" | "delete-many"]) => {
            let body = match read_body(req).await {
                Ok(body) => body,
                Err(resp) => return resp,
            };
            let Ok(value) = serde_json::from_slice::<serde_json::Value>(&body) else {
                return text(StatusCode::BAD_REQUEST, "body is not JSON");
            };
            match segments[0] {
                "set-many" => set_many(&bucket, &value),
                "get-many" => get_many(&bucket, &value),
                _ => delete_many(&bucket, &value),
            }
        }
        (&Method::GET, [key]) => match bucket.get(key) {
            Ok(Some(value)) => Ok(response(
                StatusCode::OK,
                "application/octet-stream",
                value.into(),
            )),
            Ok(None) => Ok(text(StatusCode::NOT_FOUND, "not found")),
            Err(e) => Err(e),
        },
        (&Method::DELETE, [key]) => bucket.delete(key).map(|()| text(StatusCode::OK, "ok")),
        _ => return text(StatusCode::NOT_FOUND, "probe: no wkv route"),
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn increment(bucket: &store::Bucket, key: &str, query: &Query) -> Result<Resp, store::Error> {
    let delta = query.num("delta", 1i64);
    let value = atomics::increment(bucket, key, delta)?;
    Ok(text(StatusCode::OK, value.to_string()))
}

fn compare_and_swap(
    bucket: &store::Bucket,
    key: &str,
    query: &Query,
    new: &[u8],
) -> Result<Resp, store::Error> {
    let cas = atomics::Cas::new(bucket, key)?;
    let expected = query.get("expect").map(str::as_bytes);
    if cas.current()?.as_deref() != expected {
        return Ok(conflict("current"));
    }
    if let Some(interfering) = query.get("interfere") {
        bucket.set(key, interfering.as_bytes())?;
    }
    match atomics::swap(cas, new) {
        Ok(()) => Ok(text(StatusCode::OK, "swapped")),
        Err(atomics::CasError::CasFailed(_)) => Ok(conflict("swap")),
        Err(atomics::CasError::StoreError(e)) => Err(e),
    }
}

fn conflict(seen_at: &'static str) -> Resp {
    let mut resp = text(StatusCode::CONFLICT, "conflict");
    resp.headers_mut()
        .insert("x-probe-conflict", http::HeaderValue::from_static(seen_at));
    resp
}

fn set_many(bucket: &store::Bucket, value: &serde_json::Value) -> Result<Resp, store::Error> {
    let Some(object) = value.as_object() else {
        return Ok(text(StatusCode::BAD_REQUEST, "expected a JSON object"));
    };
    let pairs: Vec<(String, Vec<u8>)> = object
        .iter()
        .map(|(k, v)| (k.clone(), json_string(v).into_bytes()))
        .collect();
    batch::set_many(bucket, &pairs)?;
    Ok(text(StatusCode::OK, "ok"))
}

fn get_many(bucket: &store::Bucket, value: &serde_json::Value) -> Result<Resp, store::Error> {
    let Some(keys) = string_array(value) else {
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "expected a JSON array of strings",
        ));
    };
    let found = batch::get_many(bucket, &keys)?;
    let object: serde_json::Map<String, serde_json::Value> = found
        .into_iter()
        .map(|(k, v)| {
            let v = v.map_or(serde_json::Value::Null, |v| {
                String::from_utf8_lossy(&v).into_owned().into()
            });
            (k, v)
        })
        .collect();
    Ok(json(StatusCode::OK, &object.into()))
}

fn delete_many(bucket: &store::Bucket, value: &serde_json::Value) -> Result<Resp, store::Error> {
    let Some(keys) = string_array(value) else {
        return Ok(text(
            StatusCode::BAD_REQUEST,
            "expected a JSON array of strings",
        ));
    };
    batch::delete_many(bucket, &keys)?;
    Ok(text(StatusCode::OK, "ok"))
}

fn string_array(value: &serde_json::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// A JSON string's contents, or any other JSON value's text.
fn json_string(v: &serde_json::Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
}

fn error_response(e: &store::Error) -> Resp {
    match e {
        store::Error::AccessDenied => text(StatusCode::FORBIDDEN, "access_denied"),
        store::Error::NoSuchStore => text(StatusCode::NOT_FOUND, "no_such_store"),
        store::Error::Other(msg) => {
            text(StatusCode::INTERNAL_SERVER_ERROR, format!("other: {msg}"))
        }
    }
}
