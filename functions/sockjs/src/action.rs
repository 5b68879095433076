//! Jii actions: an HTTP call to the action target, answered to the session.
//!
//! `action <route> <json>` becomes `POST <action_target>/<route>` with the JSON as body and
//! the session id in `Comet-Session`. Whatever happens — an answer, an error status, an
//! unreachable target, a timeout — the client gets exactly one `action` reply with its
//! `requestUid`, so a request never hangs.

use std::time::Duration;

use bytes::Bytes;
use comet_state::SessionId;
use futures::future::{Either, select};
use spin_sdk::http::FullBody;
use spin_sdk::http::body::IncomingBodyExt;

use crate::jii;
use crate::settings::Settings;

/// Largest action answer taken.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Runs one action and returns the `action …` reply text.
pub async fn call(settings: &Settings, session: &SessionId, route: &str, params: &str) -> String {
    let parsed: serde_json::Value = match serde_json::from_str(params) {
        Ok(v) => v,
        Err(e) => return jii::action_error("invalid_action", &format!("params: {e}"), None),
    };
    let uid = parsed.get("requestUid").cloned();
    if !settings.may_call(route) {
        return jii::action_error(
            "action_forbidden",
            "clients may not call this action (see the client_actions variable)",
            uid.as_ref(),
        );
    }
    if !jii::valid_route(route) {
        return jii::action_error(
            "invalid_action_route",
            "routes are [A-Za-z0-9_.-] segments separated by /",
            uid.as_ref(),
        );
    }
    let url = format!("{}/{route}", settings.action_target);
    let request = http::Request::post(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("comet-session", session.as_str())
        .body(FullBody::new(Bytes::from(params.to_owned())));
    let request = match request {
        Ok(r) => r,
        Err(e) => return jii::action_error("invalid_action_route", &e.to_string(), uid.as_ref()),
    };
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
        Either::Right(((), _)) => jii::action_error(
            "action_timeout",
            &format!("no answer within {}", seconds(settings.action_timeout)),
            uid.as_ref(),
        ),
        Either::Left((Err(e), _)) => jii::action_error("action_unavailable", &e, uid.as_ref()),
        Either::Left((Ok((status, body)), _)) => answer(status, &body, uid.as_ref()),
    }
}

/// The reply for a target's answer.
fn answer(status: u16, body: &[u8], uid: Option<&serde_json::Value>) -> String {
    if body.len() > MAX_ANSWER_BYTES {
        return jii::action_error("action_failed", "the answer is too large", uid);
    }
    match status {
        200..=299 => {
            let value = if body.is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_slice(body).unwrap_or_else(|_| {
                    serde_json::Value::String(String::from_utf8_lossy(body).into_owned())
                })
            };
            jii::action_reply(value, uid)
        }
        404 => jii::action_error("action_not_found", "no such action", uid),
        _ => jii::action_error(
            "action_failed",
            &format!("the action answered HTTP {status}"),
            uid,
        ),
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
    fn answers_become_replies() {
        let uid = json!("u");
        assert_eq!(
            answer(200, br#"{"sum":3}"#, Some(&uid)),
            r#"action {"sum":3,"requestUid":"u"}"#
        );
        assert_eq!(answer(204, b"", Some(&uid)), r#"action {"requestUid":"u"}"#);
        assert_eq!(
            answer(200, b"plain", Some(&uid)),
            r#"action {"result":"plain","requestUid":"u"}"#
        );
        assert!(answer(404, b"", Some(&uid)).contains("action_not_found"));
        assert!(answer(500, b"boom", Some(&uid)).contains("action_failed"));
    }
}
