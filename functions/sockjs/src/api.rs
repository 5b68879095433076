//! Server-to-session sends for backends, with the publish key:
//!
//! - `POST /v1/sessions/{id}/send` with `{"messages": ["…", …]}`: raw SockJS messages to one
//!   session, delivered in order on whichever instance holds its receiver (Jii's
//!   `sendToConnection`);
//! - `POST /v1/sessions/{id}/close` with optional `{"code": 3000, "reason": "…"}`.
//!
//! Both answer 404 `session_not_found` for unknown, timed-out or closed sessions.

use comet_edge::Config;
use comet_edge::auth::require_publish_key;
use comet_edge::error::ApiError;
use comet_edge::http::{Resp, error_response, finish, json, read_body};
use comet_edge::store::instance;
use comet_state::SessionId;
use http::{Method, StatusCode};
use serde::Deserialize;
use spin_sdk::http::Request;

use crate::settings::Settings;
use crate::store::{Queued, enqueue, sessions};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    messages: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CloseBody {
    code: Option<u16>,
    reason: Option<String>,
}

/// Serves this component's `/v1` routes: `/v1/sessions/…`, `/v1/send`, `/v1/action/…`.
pub async fn handle(req: Request, config: &Config, settings: &Settings) -> Resp {
    let headers = req.headers().clone();
    if req.method() == Method::OPTIONS {
        return comet_edge::http::preflight(&headers, config);
    }
    let path = req.uri().path().to_owned();
    let result = if path == "/v1/send" {
        if req.method() == Method::POST {
            crate::client_api::send(req, config, settings).await
        } else {
            Err(comet_edge::http::method_not_allowed("POST"))
        }
    } else if let Some(route) = path.strip_prefix("/v1/action/") {
        if req.method() == Method::POST {
            let route = comet_edge::http::decode(route);
            crate::client_api::action(req, &route, config, settings).await
        } else {
            Err(comet_edge::http::method_not_allowed("POST"))
        }
    } else {
        serve(req, config, settings).await
    };
    let resp = match result {
        Ok(resp) => resp,
        Err(e) => error_response(&e),
    };
    finish(resp, &headers, config)
}

async fn serve(req: Request, config: &Config, settings: &Settings) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_owned();
    let rest = path.strip_prefix("/v1/sessions/").unwrap_or("");
    let (id, verb) = rest.split_once('/').unwrap_or((rest, ""));
    if verb != "send" && verb != "close" {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no endpoint {path}"),
        ));
    }
    if req.method() != Method::POST {
        return Err(comet_edge::http::method_not_allowed("POST"));
    }
    require_publish_key(req.headers(), config)?;
    let id = SessionId::from_client(id)?;
    let sessions = sessions(config, settings.disconnect_delay).await?;
    if !sessions.is_alive(&id).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "no live session with this id",
        ));
    }
    let limit = config
        .max_message_bytes
        .saturating_mul(config.max_batch.min(100))
        + 1024;
    let body = read_body(req, limit).await?;
    if verb == "close" {
        let parsed: CloseBody = if body.is_empty() {
            CloseBody::default()
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?
        };
        let code = parsed.code.unwrap_or(3000);
        if !(1000..=4999).contains(&code) {
            return Err(ApiError::bad_request(
                "invalid_body",
                "code must be from 1000 to 4999",
            ));
        }
        let reason = parsed.reason.unwrap_or_else(|| "Go away!".into());
        if reason.len() > 123 {
            return Err(ApiError::bad_request(
                "invalid_body",
                "reason is at most 123 bytes",
            ));
        }
        sessions.close_with(&id, code, &reason).await?;
        // Wakes a receiver held on any instance, so it sends the close frame now.
        let inst = instance(config).await?;
        enqueue(&inst.log, &id, &[Queued::Wake]).await?;
        return Ok(json(StatusCode::OK, "{\"closed\":true}".into()));
    }
    let parsed: SendBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    if parsed.messages.is_empty() || parsed.messages.len() > config.max_batch {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("messages: 1 to {} strings", config.max_batch),
        ));
    }
    if parsed
        .messages
        .iter()
        .any(|m| m.len() > config.max_message_bytes)
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            format!("a message exceeds {} bytes", config.max_message_bytes),
        ));
    }
    let count = parsed.messages.len();
    let entries: Vec<Queued> = parsed.messages.into_iter().map(Queued::Message).collect();
    let inst = instance(config).await?;
    enqueue(&inst.log, &id, &entries).await?;
    Ok(json(StatusCode::OK, format!("{{\"sent\":{count}}}")))
}
