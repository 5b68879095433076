//! One session, two runner processes sharing Redis: consecutive requests of the session
//! alternate between them and still get every message once, in order.

use reqwest::StatusCode;
use serde_json::json;

use super::Sock;
use crate::v1::{Api, Backend};

#[tokio::test(flavor = "multi_thread")]
async fn a_session_alternating_between_two_runners_loses_nothing() {
    let vars = [("sockjs_heartbeat_seconds", "1")];
    let a = Api::with(Backend::Redis, &vars);
    let b = Api::with(Backend::Redis, &vars);
    let ch = a.channel("shared");
    let s = Sock::across(vec![&a, &b], "/comet");
    s.open().await; // on a
    s.send(&[&format!("subscribe {ch}")]).await; // on b
    let total = 120;
    let mut got = Vec::new();
    for round in 0..6 {
        // Publish through both runners, in order, while the session is between polls.
        for i in 0..total / 6 {
            let n = round * (total / 6) + i;
            let publisher = if n % 2 == 0 { &a } else { &b };
            publisher.publish(&ch, json!(n)).await;
        }
        while got.len() < (round + 1) * (total / 6) {
            let body = s.xhr().await; // alternates a, b, a, …
            if body.starts_with('a') {
                got.extend(super::messages_of(&body));
            } else {
                assert_eq!(body, "h\n", "unexpected frame");
            }
        }
    }
    let want: Vec<String> = (0..total).map(|n| format!("channel {ch} {n}")).collect();
    assert_eq!(got, want);
    // Echo through the session's own queue across processes too: a raw send on one
    // runner, received on the other.
    let resp = a
        .send(
            a.client
                .post(a.url(&format!("/v1/sessions/{}/send", s.id())))
                .bearer_auth(crate::v1::KEY)
                .json(&json!({"messages": ["via a"]})),
        )
        .await;
    assert_eq!(resp.status, StatusCode::OK, "{}", resp.text);
    let api_b = Sock {
        apis: vec![&b],
        base: s.base.clone(),
        turn: std::cell::Cell::new(0),
    };
    assert_eq!(api_b.collect(1).await, ["via a"]);
}
