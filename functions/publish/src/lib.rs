//! `publish`: the publisher-facing endpoints under `/v1`.
//!
//! - `POST /v1/publish`: one message `{"channel","data","id"?}` or a batch `[…]`, with
//!   `Authorization: Bearer <publish_key>`; `id` makes publisher retries idempotent
//! - `GET /v1/history/{channel}?since=&limit=`: retained messages
//! - `GET /v1/channels/{channel}`: epoch, last seq, retained count

use comet_edge::access::{Access, now_secs};
use comet_edge::auth::require_publish_key;
use comet_edge::error::ApiError;
use comet_edge::http::{self as h, Query, Resp};
use comet_edge::store::{SpinClock, instance};
use comet_state::Clock as _;
use comet_state::{Channel, Log, NewMessage, Published};
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use spin_sdk::http::Request;

/// Largest publish body, whatever the batch settings: bounds memory per request.
const MAX_BODY: usize = 8 << 20;

#[spin_sdk::http_service]
async fn handle(req: Request) -> Resp {
    let (headers, config) = match h::begin(&req).await {
        Ok(ready) => ready,
        Err(answered) => return answered,
    };
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let method = req.method().clone();
    let access = Access::from_request(&query, &headers, &config, now_secs());
    let result = if path == "/v1/publish" {
        match method {
            Method::POST => publish(req, &config).await,
            _ => Err(h::method_not_allowed("POST")),
        }
    } else if let Some(name) = path.strip_prefix("/v1/history/") {
        match method {
            Method::GET => history(name, &query, &config, &access).await,
            _ => Err(h::method_not_allowed("GET")),
        }
    } else if let Some(name) = path.strip_prefix("/v1/channels/") {
        match method {
            Method::GET => info(name, &config, &access).await,
            _ => Err(h::method_not_allowed("GET")),
        }
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no endpoint {path}"),
        ))
    };
    let resp = result.unwrap_or_else(|e| h::error_response(&e));
    h::finish(resp, &headers, &config)
}

/// One message of a publish body; `data` stays raw JSON text end to end.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming<'a> {
    channel: String,
    #[serde(borrow)]
    data: &'a RawValue,
    /// Absent means "no id"; `null` is refused (it would silently disable de-duplication).
    #[serde(default, deserialize_with = "present_id")]
    id: Option<String>,
}

/// An `id` that is present must be a string: `"id": null` is a client bug, not "no id".
fn present_id<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

async fn publish(req: Request, config: &comet_edge::Config) -> Result<Resp, ApiError> {
    require_publish_key(req.headers(), config)?;
    let limit = config
        .max_message_bytes
        .saturating_mul(config.max_batch)
        .clamp(config.max_message_bytes + 4096, MAX_BODY);
    let body = h::read_body(req, limit).await?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("invalid_json", "body is not UTF-8"))?;
    let is_batch = text.trim_start().starts_with('[');
    let incoming: Vec<Incoming<'_>> = if is_batch {
        serde_json::from_str(text)
    } else {
        serde_json::from_str(text).map(|one| vec![one])
    }
    .map_err(|e| ApiError::bad_request("invalid_json", format!("publish body: {e}")))?;
    if incoming.is_empty() {
        return Err(ApiError::bad_request(
            "empty_batch",
            "the batch holds no message",
        ));
    }
    if incoming.len() > config.max_batch {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("at most {} messages per batch", config.max_batch),
        ));
    }
    let mut messages = Vec::with_capacity(incoming.len());
    for m in &incoming {
        let data = m.data.get();
        if data.len() > config.max_message_bytes {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "message_too_large",
                format!("message data exceeds {} bytes", config.max_message_bytes),
            ));
        }
        let channel = Channel::new(&m.channel)?;
        messages.push(NewMessage::new(channel, data, m.id.as_deref())?);
    }
    comet_edge::rate::admit(messages.len(), config, SpinClock.now_ms())?;
    let inst = instance(config).await?;
    let published = inst.log.publish(&messages).await?;
    let body = if is_batch {
        let items: Vec<String> = published.iter().map(result_json).collect();
        format!("{{\"results\":[{}]}}", items.join(","))
    } else {
        published.first().map(result_json).unwrap_or_default()
    };
    Ok(h::json(StatusCode::OK, body))
}

fn result_json(p: &Published) -> String {
    serde_json::json!({
        "channel": p.channel.as_str(),
        "seq": p.seq,
        "epoch": p.epoch.as_str(),
        "time": p.time,
        "duplicate": p.duplicate,
    })
    .to_string()
}

/// The channel named in the path, if this request may read it.
fn channel_from_path(
    raw: &str,
    config: &comet_edge::Config,
    access: &Access,
) -> Result<Channel, ApiError> {
    let channel = Channel::new(&h::decode(raw))?;
    access.check(&channel, config)?;
    Ok(channel)
}

fn number(query: &Query, name: &'static str, default: u64, max: u64) -> Result<u64, ApiError> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(ApiError::bad_request(
                if name == "limit" {
                    "invalid_limit"
                } else {
                    "invalid_since"
                },
                format!("{name}={v:?}: a whole number up to {max}"),
            )),
        },
    }
}

async fn history(
    name: &str,
    query: &Query,
    config: &comet_edge::Config,
    access: &Access,
) -> Result<Resp, ApiError> {
    let channel = channel_from_path(name, config, access)?;
    let since = number(query, "since", 0, u64::MAX)?;
    let limit = number(query, "limit", 100, 1000)?;
    let inst = instance(config).await?;
    let (messages, position) = inst
        .log
        .history(&channel, since, usize::try_from(limit).unwrap_or(1000))
        .await?;
    let cursor = comet_state::Cursor::from_positions([(&channel, &position)]).encode();
    let items: Vec<String> = messages
        .iter()
        .map(comet_state::Envelope::to_json)
        .collect();
    Ok(h::json(
        StatusCode::OK,
        format!(
            "{{\"channel\":{},\"epoch\":{},\"messages\":[{}],\"cursor\":\"{cursor}\"}}",
            serde_json::Value::from(channel.as_str()),
            serde_json::Value::from(position.epoch.as_str()),
            items.join(",")
        ),
    ))
}

async fn info(name: &str, config: &comet_edge::Config, access: &Access) -> Result<Resp, ApiError> {
    let channel = channel_from_path(name, config, access)?;
    let inst = instance(config).await?;
    let info = inst.log.info(&channel).await?;
    Ok(h::json(
        StatusCode::OK,
        serde_json::json!({
            "channel": channel.as_str(),
            "epoch": info.epoch.as_str(),
            "last_seq": info.last_seq,
            "retained_count": info.retained_count,
            "first_seq": info.first_seq,
        })
        .to_string(),
    ))
}
