//! Actions: an HTTP call to the action target, for Jii `action <route> <json>` and for
//! `POST /v1/action/{route}`.
//!
//! The call is `POST <action_target>/<route>` with the client's JSON as body and the session
//! id (if any) in `Comet-Session`. Whatever happens — an answer, an error status, an
//! unreachable target, a timeout — the caller gets exactly one outcome, so a request never
//! hangs: [`invoke`] for HTTP, [`call`] for the Jii reply text with the `requestUid`.

use std::time::Duration;

use bytes::Bytes;
use futures::future::{Either, select};
use http::StatusCode;
use spin_sdk::http::FullBody;
use spin_sdk::http::body::IncomingBodyExt;

use crate::jii;
use crate::settings::Settings;

/// Largest action answer taken.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why an action produced no answer; `status` is what `POST /v1/action` answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionError {
    /// HTTP status for the native endpoint.
    pub status: StatusCode,
    /// Stable code (`action_forbidden`, `action_not_found`, …).
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl ActionError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

/// Runs action `route` with `params` (JSON text) for `session`, and returns its answer.
///
/// # Errors
/// [`ActionError`]: forbidden by `client_actions`, bad params or route, the target's 404 or
/// other failure status, unreachable, or no answer within `action_timeout_seconds`.
pub async fn invoke(
    settings: &Settings,
    session: Option<&str>,
    route: &str,
    params: &str,
) -> Result<serde_json::Value, ActionError> {
    if serde_json::from_str::<serde::de::IgnoredAny>(params).is_err() {
        return Err(ActionError::new(
            StatusCode::BAD_REQUEST,
            "invalid_action",
            "the action's parameters are not JSON",
        ));
    }
    if !settings.may_call(route) {
        return Err(ActionError::new(
            StatusCode::FORBIDDEN,
            "action_forbidden",
            "clients may not call this action (see the client_actions variable)",
        ));
    }
    if !jii::valid_route(route) {
        return Err(ActionError::new(
            StatusCode::BAD_REQUEST,
            "invalid_action_route",
            "routes are [A-Za-z0-9_.-] segments separated by /",
        ));
    }
    let url = format!("{}/{route}", settings.action_target);
    let mut request =
        http::Request::post(&url).header(http::header::CONTENT_TYPE, "application/json");
    if let Some(id) = session {
        request = request.header("comet-session", id);
    }
    let request = request
        .body(FullBody::new(Bytes::from(params.to_owned())))
        .map_err(|e| {
            ActionError::new(
                StatusCode::BAD_REQUEST,
                "invalid_action_route",
                e.to_string(),
            )
        })?;
    let exchange = Box::pin(async move {
        let resp = spin_sdk::http::send(request)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .bytes()
            .await
            .map_err(|e| format!("reading the answer: {e:?}"))?;
        Ok::<_, String>((status, body))
    });
    let timeout = Box::pin(spin_sdk::time::sleep(settings.action_timeout));
    match select(exchange, timeout).await {
        Either::Right(((), _)) => Err(ActionError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "action_timeout",
            format!("no answer within {}", seconds(settings.action_timeout)),
        )),
        Either::Left((Err(e), _)) => Err(ActionError::new(
            StatusCode::BAD_GATEWAY,
            "action_unavailable",
            e,
        )),
        Either::Left((Ok((status, body)), _)) => answer(status, &body),
    }
}

/// Runs a Jii action and returns the `action …` reply text (with the request's `requestUid`).
pub async fn call(settings: &Settings, session: &str, route: &str, params: &str) -> String {
    let uid = serde_json::from_str::<serde_json::Value>(params)
        .ok()
        .and_then(|v| v.get("requestUid").cloned());
    match invoke(settings, Some(session), route, params).await {
        Ok(value) => jii::action_reply(value, uid.as_ref()),
        Err(e) => jii::action_error(e.code, &e.message, uid.as_ref()),
    }
}

/// The outcome of a target's answer.
fn answer(status: u16, body: &[u8]) -> Result<serde_json::Value, ActionError> {
    if body.len() > MAX_ANSWER_BYTES {
        return Err(ActionError::new(
            StatusCode::BAD_GATEWAY,
            "action_failed",
            "the answer is too large",
        ));
    }
    match status {
        200..=299 if body.is_empty() => Ok(serde_json::json!({})),
        200..=299 => Ok(serde_json::from_slice(body).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
        })),
        404 => Err(ActionError::new(
            StatusCode::NOT_FOUND,
            "action_not_found",
            "no such action",
        )),
        _ => Err(ActionError::new(
            StatusCode::BAD_GATEWAY,
            "action_failed",
            format!("the action answered HTTP {status}"),
        )),
    }
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_become_outcomes() {
        assert_eq!(answer(200, br#"{"sum":3}"#), Ok(json!({"sum": 3})));
        assert_eq!(answer(204, b""), Ok(json!({})));
        assert_eq!(answer(200, b"plain"), Ok(json!("plain")));
        assert_eq!(
            answer(404, b"").map_err(|e| e.code),
            Err("action_not_found")
        );
        assert_eq!(
            answer(500, b"boom").map_err(|e| e.code),
            Err("action_failed")
        );
        let big = vec![b' '; MAX_ANSWER_BYTES + 1];
        assert_eq!(answer(200, &big).map_err(|e| e.code), Err("action_failed"));
    }
}
