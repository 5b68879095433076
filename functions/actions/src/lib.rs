//! `actions`: an example target for Jii `action <route> <json>` commands.
//!
//! The `sockjs` component POSTs each action to `http://actions.spin.internal/<route>` (Spin
//! service chaining; the component has only a private route) with the client's JSON as body
//! and the session id in `Comet-Session`, and sends the JSON answer back to the session.
//! Replace this component with your own, or point `action_target` at any HTTP backend.
//!
//! Routes: `time` (server clock), `echo` (the params back, with the session id), `sum`
//! (`{"numbers":[…]}` → `{"sum":…}`), `slow` (`{"ms":…}`, to exercise timeouts), `fail` (500).

use std::time::Duration;

use comet_edge::http::{Resp, full, read_body};
use http::StatusCode;
use serde_json::{Value, json};
use spin_sdk::http::Request;

/// Longest `slow` sleep.
const MAX_SLOW_MS: u64 = 60_000;

#[spin_sdk::http_service]
async fn handle(req: Request) -> Resp {
    let route = req.uri().path().trim_start_matches('/').to_owned();
    let session = req
        .headers()
        .get("comet-session")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let params: Value = match read_body(req, 1 << 20).await {
        Ok(body) if body.is_empty() => json!({}),
        Ok(body) => match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return answer(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
        },
        Err(e) => return answer(e.status, json!({"error": e.message})),
    };
    match route.as_str() {
        "time" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            answer(StatusCode::OK, json!({ "now": now.to_string() }))
        }
        "echo" => answer(
            StatusCode::OK,
            json!({ "params": params, "session": session }),
        ),
        "sum" => {
            let numbers = params.get("numbers").and_then(Value::as_array);
            match numbers.map(|n| n.iter().map(Value::as_f64).collect::<Option<Vec<f64>>>()) {
                Some(Some(n)) => answer(StatusCode::OK, json!({ "sum": n.iter().sum::<f64>() })),
                _ => answer(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "numbers must be an array of numbers"}),
                ),
            }
        }
        "slow" => {
            let ms = params
                .get("ms")
                .and_then(Value::as_u64)
                .unwrap_or(1000)
                .min(MAX_SLOW_MS);
            spin_sdk::time::sleep(Duration::from_millis(ms)).await;
            answer(StatusCode::OK, json!({ "slept": ms }))
        }
        "fail" => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "this action always fails"}),
        ),
        _ => answer(StatusCode::NOT_FOUND, json!({"error": "no such action"})),
    }
}

fn answer(status: StatusCode, body: Value) -> Resp {
    full(status, "application/json", body.to_string())
}
