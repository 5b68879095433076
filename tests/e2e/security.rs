//! The security table (docs/protocol.md §6, issue 7): each attack on every surface and the answer it
//! must get — status, stable code, and nothing reflected or leaked. Token attacks on every
//! transport are in `v1::tokens`; the SockJS bad-input table in `sockjs::protocol`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::v1::{Api, Backend, KEY};

/// One attack: what, method, path, headers, body, expected status and code (`None`: a
/// SockJS plain-text answer, matched by its `Comet-Error` header instead).
struct Attack {
    what: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
    status: u16,
    code: &'static str,
}

fn attack(what: &'static str, method: &'static str, path: impl Into<String>) -> Attack {
    Attack {
        what,
        method,
        path: path.into(),
        headers: Vec::new(),
        body: None,
        status: 0,
        code: "",
    }
}

impl Attack {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }
    fn expect(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }
}

/// Text a response must never contain: the secrets, and the raw attack payloads.
const NEVER: &[&str] = &[KEY, "s3cr3t-token-key", "<script>alert(1)</script>"];

#[tokio::test(flavor = "multi_thread")]
async fn every_attack_gets_its_documented_answer() {
    let api = Api::with(
        Backend::Kv,
        &[
            ("token_secret", "s3cr3t-token-key"),
            ("max_message_bytes", "1000"),
            ("sockjs_min_session_id", "16"),
            ("sockjs_heartbeat_seconds", "1"),
        ],
    );
    // A victim session with a message waiting in its own queue.
    let victim = format!("/comet/000/{}", "v".repeat(24));
    let post =
        |path: String, body: &str| api.send(api.client.post(api.url(&path)).body(body.to_owned()));
    assert_eq!(post(format!("{victim}/xhr"), "").await.text, "o\n");
    let id = "v".repeat(24);
    let a = api
        .send(
            api.client
                .post(api.url(&format!("/v1/sessions/{id}/send")))
                .bearer_auth(KEY)
                .json(&json!({"messages": ["for the victim only"]})),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);

    let xss = "<script>alert(1)</script>";
    let attacks = vec![
        attack("publish without the key", "POST", "/v1/publish")
            .body(json!({"channel": "x", "data": 1}).to_string())
            .expect(401, "unauthorized"),
        attack("publish with a wrong key", "POST", "/v1/publish")
            .header("authorization", "Bearer guess")
            .body(json!({"channel": "x", "data": 1}).to_string())
            .expect(401, "unauthorized"),
        attack(
            "publish with the key as a query",
            "POST",
            format!("/v1/publish?key={KEY}"),
        )
        .body(json!({"channel": "x", "data": 1}).to_string())
        .expect(401, "unauthorized"),
        attack(
            "server send without the key",
            "POST",
            format!("/v1/sessions/{id}/send"),
        )
        .body(json!({"messages": ["spoof"]}).to_string())
        .expect(401, "unauthorized"),
        attack(
            "close someone's session without the key",
            "POST",
            format!("/v1/sessions/{id}/close"),
        )
        .expect(401, "unauthorized"),
        attack(
            "read a session queue by poll",
            "GET",
            format!("/v1/poll?channel=$s:{id}&from=start&timeout=0"),
        )
        .expect(400, "invalid_channel"),
        attack(
            "read a session queue by history",
            "GET",
            format!("/v1/history/%24s%3A{id}"),
        )
        .expect(400, "invalid_channel"),
        attack(
            "read a session queue by SSE",
            "GET",
            format!("/v1/sse?channel=%24s:{id}"),
        )
        .expect(400, "invalid_channel"),
        attack("publish into a session queue", "POST", "/v1/publish")
            .header("authorization", format!("Bearer {KEY}"))
            .body(json!({"channel": format!("$s:{id}"), "data": "spoof"}).to_string())
            .expect(400, "invalid_channel"),
        attack("client send into a session queue", "POST", "/v1/send")
            .body(json!({"channel": format!("$s:{id}"), "data": "spoof"}).to_string())
            .expect(400, "invalid_channel"),
        attack(
            "private channel, no token",
            "GET",
            "/v1/poll?channel=private-a&timeout=0",
        )
        .expect(403, "token_required"),
        attack(
            "private channel, token from another deployment",
            "GET",
            format!(
                "/v1/poll?channel=private-a&timeout=0&token={}",
                comet_token::mint(
                    b"other",
                    &comet_token::Claims {
                        sub: None,
                        channels: vec!["private-a".into()],
                        exp: u64::MAX / 2,
                        nbf: None,
                    }
                )
                .expect("mint")
            ),
        )
        .expect(401, "invalid_token"),
        attack(
            "JSONP callback injection",
            "GET",
            "/v1/poll?channel=x&timeout=0&callback=alert(1)//",
        )
        .expect(400, "invalid_callback"),
        attack(
            "JSONP callback with markup",
            "GET",
            format!("/v1/poll?channel=x&timeout=0&callback={xss}"),
        )
        .expect(400, "invalid_callback"),
        attack(
            "markup in a channel name",
            "GET",
            format!("/v1/poll?channel={xss}"),
        )
        .expect(400, "invalid_channel"),
        attack("markup in an unknown path", "GET", format!("/v1/{xss}"))
            .expect(404, "route_not_found"),
        attack(
            "garbage cursor",
            "GET",
            "/v1/poll?channel=x&cursor=%00%ff&timeout=0",
        )
        .expect(400, "invalid_cursor"),
        attack(
            "huge cursor",
            "GET",
            format!("/v1/poll?channel=x&timeout=0&cursor={}", "A".repeat(20_000)),
        )
        .expect(400, "invalid_cursor"),
        attack("oversize message", "POST", "/v1/publish")
            .header("authorization", format!("Bearer {KEY}"))
            .body(json!({"channel": "x", "data": "y".repeat(2000)}).to_string())
            .expect(413, "message_too_large"),
        attack("malformed publish", "POST", "/v1/publish")
            .header("authorization", format!("Bearer {KEY}"))
            .body("{\"channel\":\"x\",\"data\":")
            .expect(400, "invalid_json"),
        attack("client publish not allowed", "POST", "/v1/send")
            .body(json!({"channel": "news", "data": xss}).to_string())
            .expect(403, "publish_forbidden"),
        attack("action not allowed", "POST", "/v1/action/echo")
            .body("{}")
            .expect(403, "action_forbidden"),
        attack(
            "SockJS jsonp callback injection",
            "GET",
            format!("{victim}/jsonp?c=alert(1)"),
        )
        .expect(500, "invalid_callback"),
        attack(
            "SockJS htmlfile callback with markup",
            "GET",
            format!("{victim}/htmlfile?c={xss}"),
        )
        .expect(500, "invalid_callback"),
        attack(
            "SockJS short (guessable) session id",
            "POST",
            "/comet/000/abcdefgh/xhr",
        )
        .expect(404, "not_found"),
        attack(
            "SockJS send into an unknown session",
            "POST",
            format!("/comet/000/{}/xhr_send", "u".repeat(24)),
        )
        .body("[\"x\"]")
        .expect(404, "not_found"),
        attack("SockJS oversize send", "POST", format!("{victim}/xhr_send"))
            .body(format!("[\"{}\"]", "z".repeat(2000)))
            .expect(413, "message_too_large"),
        attack(
            "SockJS send body over 1 MiB",
            "POST",
            format!("{victim}/xhr_send"),
        )
        .body(format!("[\"{}\"]", "z".repeat(1_100_000)))
        .expect(413, "body_too_large"),
        attack(
            "SockJS malformed send",
            "POST",
            format!("{victim}/xhr_send"),
        )
        .body("[\"x")
        .expect(500, "broken_json"),
    ];
    let mut problems = Vec::new();
    for a in attacks {
        let mut req = api
            .client
            .request(a.method.parse().expect("method"), api.url(&a.path));
        for (n, v) in &a.headers {
            req = req.header(*n, v);
        }
        if let Some(b) = &a.body {
            req = req.header("content-type", "text/plain").body(b.clone());
        }
        let got = api.send(req).await;
        let json_code = serde_json::from_str::<Value>(&got.text)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        let code = json_code.or_else(|| got.header("comet-error").map(str::to_owned));
        if got.status.as_u16() != a.status || code.as_deref() != Some(a.code) {
            problems.push(format!(
                "{}: want {} {}, got {} {:?} {:?}",
                a.what,
                a.status,
                a.code,
                got.status,
                code,
                got.text.chars().take(200).collect::<String>()
            ));
        }
        if got.header("x-content-type-options") != Some("nosniff") {
            problems.push(format!("{}: no nosniff", a.what));
        }
        if got
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html") || t.contains("javascript"))
        {
            problems.push(format!("{}: error served as script or HTML", a.what));
        }
        for secret in NEVER {
            if got.text.contains(secret) {
                problems.push(format!("{}: answer contains {secret:?}", a.what));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Another session (a different id) sees none of the victim's messages.
    let other = format!("/comet/000/{}", "o".repeat(24));
    assert_eq!(post(format!("{other}/xhr"), "").await.text, "o\n");
    assert_eq!(post(format!("{other}/xhr"), "").await.text, "h\n");
    // The victim still gets its own, exactly once, and no spoofed message arrived.
    let text = post(format!("{victim}/xhr"), "").await.text;
    assert_eq!(text, "a[\"for the victim only\"]\n");
}
