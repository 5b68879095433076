//! `spin:redis@3` routes; `?addr=` is the Redis URL (default `redis://127.0.0.1:6379`).
//!
//! - `POST /probe/redis/execute` with a JSON array `["SET","k","v"]` (strings are sent as
//!   binary, integers as int64) → JSON array of results: `null`, `{"status":s}`, `{"int64":n}`
//!   or `{"binary":s}` (lossy UTF-8)
//! - `POST /probe/redis/incr?key=k` → the new value
//! - `POST /probe/redis/set?key=k` (body = value) → `ok`; `POST /probe/redis/get?key=k` → value
//! - `POST /probe/redis/publish?channel=c` (body = payload) → `ok`
//!
//! Errors answer 502 with the variant (`invalid_address`, `too_many_connections`,
//! `type_error`, `other: …`).

use http::StatusCode;
use serde_json::{Value, json as j};
use spin_sdk::http::Request;
use spin_sdk::redis::{Connection, Error, RedisParameter, RedisResult};

use crate::{Query, Resp, json, read_body, response, text};

pub(crate) async fn route(op: &str, query: &Query, req: Request) -> Resp {
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let addr = query.get("addr").unwrap_or("redis://127.0.0.1:6379");
    let conn = match Connection::open(addr).await {
        Ok(conn) => conn,
        Err(e) => return error_response(e),
    };
    let key = query.get("key").unwrap_or("");
    let result = match op {
        "execute" => {
            let Ok(Value::Array(words)) = serde_json::from_slice::<Value>(&body) else {
                return text(StatusCode::BAD_REQUEST, "expected a JSON array");
            };
            let Some((Value::String(command), args)) = words.split_first() else {
                return text(StatusCode::BAD_REQUEST, "expected a command name first");
            };
            let args = args.iter().map(|a| match a {
                Value::Number(n) if n.is_i64() => RedisParameter::Int64(n.as_i64().unwrap_or(0)),
                Value::String(s) => RedisParameter::Binary(s.clone().into_bytes()),
                other => RedisParameter::Binary(other.to_string().into_bytes()),
            });
            conn.execute(command, args.collect::<Vec<_>>())
                .await
                .map(|results| json(StatusCode::OK, &results.iter().map(result_json).collect()))
        }
        "incr" => conn
            .incr(key)
            .await
            .map(|n| text(StatusCode::OK, n.to_string())),
        "set" => conn
            .set(key, &body)
            .await
            .map(|()| text(StatusCode::OK, "ok")),
        "get" => conn.get(key).await.map(|v| match v {
            Some(v) => response(StatusCode::OK, "application/octet-stream", v.into()),
            None => text(StatusCode::NOT_FOUND, "not found"),
        }),
        "publish" => conn
            .publish(query.get("channel").unwrap_or(""), &body)
            .await
            .map(|()| text(StatusCode::OK, "ok")),
        _ => return text(StatusCode::NOT_FOUND, "probe: no redis route"),
    };
    result.unwrap_or_else(error_response)
}

fn result_json(r: &RedisResult) -> Value {
    match r {
        RedisResult::Nil => Value::Null,
        RedisResult::Status(s) => j!({ "status": s }),
        RedisResult::Int64(n) => j!({ "int64": n }),
        RedisResult::Binary(b) => j!({ "binary": String::from_utf8_lossy(b) }),
    }
}

fn error_response(e: Error) -> Resp {
    let body = match e {
        Error::InvalidAddress => "invalid_address".to_owned(),
        Error::TooManyConnections => "too_many_connections".to_owned(),
        Error::TypeError => "type_error".to_owned(),
        Error::Other(msg) => format!("other: {msg}"),
    };
    text(StatusCode::BAD_GATEWAY, body)
}
