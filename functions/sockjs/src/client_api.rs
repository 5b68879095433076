//! The browser's native write path (docs/protocol.md §4), for clients that do not use SockJS:
//!
//! - `POST /v1/send` `{"channel","data"}`: a client publish, allowed only to channels matching
//!   `client_publish`; private channels also need a token covering them (`token=` or
//!   `Authorization: Bearer`). Counted against the instance's publish rate like any publish.
//! - `POST /v1/action/{route}` with JSON params: allowed only for routes matching
//!   `client_actions`; forwarded to the action target, and its answer returned.

use comet_edge::Config;
use comet_edge::access::{Access, now_secs};
use comet_edge::error::ApiError;
use comet_edge::http::{Query, Resp, json, read_body};
use comet_edge::store::{SpinClock, instance};
use comet_state::Clock as _;
use comet_state::{Channel, Log, NewMessage};
use http::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;
use spin_sdk::http::Request;

use crate::action;
use crate::settings::Settings;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody<'a> {
    channel: String,
    #[serde(borrow)]
    data: &'a RawValue,
}

/// `POST /v1/send`.
pub async fn send(req: Request, config: &Config, settings: &Settings) -> Result<Resp, ApiError> {
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let access = Access::from_request(&query, req.headers(), config, now_secs());
    let body = read_body(req, config.max_message_bytes + 1024).await?;
    let parsed: SendBody<'_> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("send body: {e}")))?;
    let channel = Channel::new(&parsed.channel)?;
    if !settings.may_publish(channel.as_str()) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "publish_forbidden",
            "clients may not publish to this channel (see the client_publish variable)",
        ));
    }
    access.check(&channel, config)?;
    let data = parsed.data.get();
    if data.len() > config.max_message_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!("message data exceeds {} bytes", config.max_message_bytes),
        ));
    }
    let message = NewMessage::new(channel, data, None)?;
    comet_edge::rate::admit(1, config, SpinClock.now_ms())?;
    let inst = instance(config).await?;
    let published = inst.log.publish(&[message]).await?;
    let p = published.first().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            "the store stored nothing",
        )
    })?;
    Ok(json(
        StatusCode::OK,
        serde_json::json!({
            "channel": p.channel.as_str(),
            "seq": p.seq,
            "epoch": p.epoch.as_str(),
            "time": p.time,
        })
        .to_string(),
    ))
}

/// `POST /v1/action/{route}`.
pub async fn action(
    req: Request,
    route: &str,
    config: &Config,
    settings: &Settings,
) -> Result<Resp, ApiError> {
    let body = read_body(req, config.max_message_bytes + 1024).await?;
    let params = if body.iter().all(u8::is_ascii_whitespace) {
        "{}".to_owned()
    } else {
        String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::bad_request("invalid_action", "the body is not UTF-8"))?
    };
    match action::invoke(settings, None, route, &params).await {
        Ok(value) => Ok(json(StatusCode::OK, value.to_string())),
        Err(e) => Err(ApiError::new(e.status, e.code, e.message)),
    }
}
