//! `xhr_send` and `jsonp_send`: a batch of client messages into the session's application.

use bytes::Bytes;
use comet_edge::http::{Resp, full, read_body};
use comet_sockjs_protocol::body::{BodyError, SendKind, parse_messages};
use comet_state::SessionId;
use http::StatusCode;
use spin_sdk::http::Request;

use crate::Ctx;
use crate::respond::text_error;

/// A client send body is at most this large (sockjs-client batches what queued up).
const SEND_BODY_LIMIT: usize = 1 << 20;

/// SockJS's answer to a refused body.
fn refuse(e: &BodyError) -> Resp {
    match e {
        BodyError::PayloadExpected => text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "payload_expected",
            "Payload expected.",
        ),
        BodyError::BrokenJson => text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "broken_json",
            "Broken JSON encoding.",
        ),
    }
}

/// Serves a send request. Checks run in sockjs-node's order: the payload first, then the
/// session (404 when unknown or timed out; a closing session takes and drops messages).
pub(crate) async fn send(ctx: &Ctx, kind: SendKind, id: &SessionId, req: Request) -> Resp {
    let headers = req.headers().clone();
    let body = match read_body(req, SEND_BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => {
            return text_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "Payload too large.",
            );
        }
        Err(_) => return refuse(&BodyError::PayloadExpected),
    };
    let messages = match parse_messages(kind, &headers, &body) {
        Ok(m) => m,
        Err(e) => return refuse(&e),
    };
    if messages
        .iter()
        .any(|m| m.len() > ctx.config.max_message_bytes)
    {
        return text_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "message_too_large",
            "Message too large.",
        );
    }
    match ctx.sessions.status(id).await {
        Ok(Some((record, _))) if record.closed => return accepted(kind),
        Ok(Some((_, true))) => {}
        Ok(None | Some((_, false))) => return crate::respond::not_found(),
        Err(e) => return store_failure(&e.into()),
    }
    if let Err(e) = ctx.app.on_messages(ctx, id, messages).await {
        return store_failure(&e);
    }
    accepted(kind)
}

fn accepted(kind: SendKind) -> Resp {
    match kind {
        SendKind::Xhr => full(
            StatusCode::NO_CONTENT,
            "text/plain; charset=UTF-8",
            Bytes::new(),
        ),
        SendKind::Jsonp => full(StatusCode::OK, "text/plain; charset=UTF-8", "ok"),
    }
}

fn store_failure(e: &comet_edge::ApiError) -> Resp {
    eprintln!("sockjs: send failed: {}", e.message);
    text_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "Store unavailable.",
    )
}
