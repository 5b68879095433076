//! The Jii-comet protocol inside `/comet` sessions: subscribe/unsubscribe, deliveries of
//! `/v1/publish`, client publishing permissions, actions, refusals and server sends.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::Sock;
use crate::v1::{Api, Backend, KEY, both};

/// The app with a 1 s SockJS heartbeat (quiet polls come back quickly) and every action
/// allowed (the default allows none).
fn app(backend: Backend, extra: &[(&str, &str)]) -> Api {
    let mut vars = vec![("sockjs_heartbeat_seconds", "1"), ("client_actions", "*")];
    vars.extend_from_slice(extra);
    Api::with(backend, &vars)
}

/// The JSON of an `action {…}` message.
fn action_json(message: &str) -> Value {
    let json = message
        .strip_prefix("action ")
        .unwrap_or_else(|| panic!("not an action reply: {message:?}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("bad action reply {message:?}: {e}"))
}

async fn subscribe_publish_unsubscribe(backend: Backend) {
    let api = app(backend, &[]);
    let ch = api.channel("news");
    let s = Sock::new(&api, "/comet");
    s.open().await;
    // Published before the subscription: not delivered (subscriptions start now).
    api.publish(&ch, json!("before")).await;
    s.send(&[&format!("subscribe {ch}")]).await;
    api.publish(&ch, json!("hello")).await;
    api.publish(&ch, json!({"n": 1})).await;
    api.publish(&ch, json!([1, "two"])).await;
    assert_eq!(
        s.collect(3).await,
        [
            format!("channel {ch} hello"),
            format!("channel {ch} {{\"n\":1}}"),
            format!("channel {ch} [1,\"two\"]"),
        ]
    );
    // Published between polls: waits in the session.
    for i in 0..5 {
        api.publish(&ch, json!(format!("m{i}"))).await;
    }
    let got = s.collect(5).await;
    assert_eq!(
        got,
        (0..5)
            .map(|i| format!("channel {ch} m{i}"))
            .collect::<Vec<_>>()
    );
    s.send(&[&format!("unsubscribe {ch}")]).await;
    api.publish(&ch, json!("after")).await;
    assert_eq!(s.xhr().await, "h\n", "nothing after unsubscribe");
}

async fn client_publishing_needs_permission(backend: Backend) {
    let api = app(backend, &[("client_publish", "chat-*")]);
    let room = format!("chat-{}", api.channel("room"));
    let alice = Sock::new(&api, "/comet");
    let bob = Sock::new(&api, "/comet");
    alice.open().await;
    bob.open().await;
    bob.send(&[&format!("subscribe {room}")]).await;
    alice
        .send(&[
            &format!("channel {room} hi bob"),
            &format!("channel {room} {{\"x\":1}}"),
        ])
        .await;
    assert_eq!(
        bob.collect(2).await,
        [
            format!("channel {room} hi bob"),
            format!("channel {room} {{\"x\":1}}")
        ]
    );
    // The same messages through the native API: a string and an object.
    let history = api.get(&format!("/v1/history/{room}")).await.json();
    let data: Vec<&Value> = history["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| &m["data"])
        .collect();
    assert_eq!(data, [&json!("hi bob"), &json!({"x": 1})]);

    let news = api.channel("news");
    alice.send(&[&format!("channel {news} nope")]).await;
    let refusal = alice.collect(1).await;
    let json: Value = serde_json::from_str(
        refusal[0]
            .strip_prefix("error ")
            .unwrap_or_else(|| panic!("not an error: {refusal:?}")),
    )
    .expect("error json");
    assert_eq!(json["code"], "publish_forbidden");
    assert_eq!(json["command"], "channel");
    let nothing = api
        .poll(&format!("channel={news}&from=start&timeout=0"))
        .await;
    assert_eq!(nothing["messages"], json!([]));
}

async fn refusals_for_private_and_internal_channels(backend: Backend) {
    let api = app(backend, &[]);
    let s = Sock::new(&api, "/comet");
    s.open().await;
    s.send(&[
        "subscribe private-room",
        "subscribe $s:abcdefgh",
        "subscribe __allVfcOS7",
        "subscribe bad{name",
        "channel news x",
        "unknown command",
    ])
    .await;
    let got = s.collect(5).await;
    let codes: Vec<String> = got
        .iter()
        .map(|m| {
            let v: Value =
                serde_json::from_str(m.strip_prefix("error ").expect("error")).expect("json");
            v["code"].as_str().expect("code").to_owned()
        })
        .collect();
    assert_eq!(
        codes,
        [
            "token_required",
            "invalid_channel",
            "channel_forbidden",
            "invalid_channel",
            "publish_forbidden"
        ]
    );
}

async fn actions_answer_with_the_request_uid(backend: Backend) {
    let api = app(backend, &[("action_timeout_seconds", "1")]);
    let s = Sock::new(&api, "/comet");
    s.open().await;
    s.send(&[
        "action echo {\"x\":1,\"requestUid\":\"u1\"}",
        "action sum {\"numbers\":[1,2,3.5],\"requestUid\":\"u2\"}",
        "action nope {\"requestUid\":\"u3\"}",
        "action fail {\"requestUid\":\"u4\"}",
        "action ../etc {\"requestUid\":\"u5\"}",
        "action echo {broken",
        "action time",
    ])
    .await;
    let replies: Vec<Value> = s.collect(7).await.iter().map(|m| action_json(m)).collect();
    assert_eq!(
        replies[0],
        json!({"params": {"x": 1, "requestUid": "u1"}, "session": s.id(), "requestUid": "u1"})
    );
    assert_eq!(replies[1], json!({"sum": 6.5, "requestUid": "u2"}));
    assert_eq!(replies[2]["error"]["code"], "action_not_found");
    assert_eq!(replies[2]["requestUid"], "u3");
    assert_eq!(replies[3]["error"]["code"], "action_failed");
    assert_eq!(replies[3]["requestUid"], "u4");
    assert_eq!(replies[4]["error"]["code"], "invalid_action_route");
    assert_eq!(replies[4]["requestUid"], "u5");
    assert_eq!(replies[5]["error"]["code"], "invalid_action");
    assert!(replies[6]["now"].as_str().is_some(), "{}", replies[6]);

    // A slow action is answered by the timeout, never left hanging.
    let started = std::time::Instant::now();
    s.send(&["action slow {\"ms\":5000,\"requestUid\":\"u6\"}"])
        .await;
    assert!(started.elapsed() < Duration::from_secs(4));
    let reply = action_json(&s.collect(1).await[0]);
    assert_eq!(reply["error"]["code"], "action_timeout");
    assert_eq!(reply["requestUid"], "u6");
}

async fn backends_send_to_and_close_sessions(backend: Backend) {
    let api = app(backend, &[]);
    let s = Sock::new(&api, "/comet");
    s.open().await;
    let send = |id: &str, key: Option<&str>, body: Value| {
        let mut req = api
            .client
            .post(api.url(&format!("/v1/sessions/{id}/send")))
            .json(&body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        api.send(req)
    };
    let a = send(s.id(), None, json!({"messages": ["x"]})).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNAUTHORIZED, "unauthorized".into())
    );
    let a = send(s.id(), Some(KEY), json!({"messages": ["first", "second"]})).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json(), json!({"sent": 2}));
    assert_eq!(s.collect(2).await, ["first", "second"]);
    let a = send("nosuchsession", Some(KEY), json!({"messages": ["x"]})).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::NOT_FOUND, "session_not_found".into())
    );
    let a = send(s.id(), Some(KEY), json!({"messages": "x"})).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "invalid_body".into())
    );
    let a = send("bad.id", Some(KEY), json!({"messages": ["x"]})).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    let a = api
        .send(
            api.client
                .post(api.url(&format!("/v1/sessions/{}/close", s.id())))
                .bearer_auth(KEY)
                .json(&json!({"code": 4000, "reason": "bye"})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(s.xhr().await, "c[4000,\"bye\"]\n");
}

async fn actions_are_denied_unless_allowed(backend: Backend) {
    let api = Api::with(
        backend,
        &[
            ("sockjs_heartbeat_seconds", "1"),
            ("client_actions", "time"),
        ],
    );
    let s = Sock::new(&api, "/comet");
    s.open().await;
    s.send(&[
        "action echo {\"requestUid\":\"d1\"}",
        "action time {\"requestUid\":\"d2\"}",
    ])
    .await;
    let replies: Vec<Value> = s.collect(2).await.iter().map(|m| action_json(m)).collect();
    assert_eq!(replies[0]["error"]["code"], "action_forbidden");
    assert_eq!(replies[0]["requestUid"], "d1");
    assert!(replies[1]["now"].is_string(), "{}", replies[1]);
    assert_eq!(replies[1]["requestUid"], "d2");
}

both!(
    actions_are_denied_unless_allowed,
    subscribe_publish_unsubscribe,
    client_publishing_needs_permission,
    refusals_for_private_and_internal_channels,
    actions_answer_with_the_request_uid,
    backends_send_to_and_close_sessions,
);
