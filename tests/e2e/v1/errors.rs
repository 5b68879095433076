//! Every error code of `/v1`: one table of bad requests → status + `error.code`, on both
//! backends, plus the deployment errors (publishing disabled, store down, bad configuration).
//! [`bad_request_codes`] and [`deployment_error_codes`] return the codes they observed (with
//! their status), which
//! the OpenAPI test compares with the spec's error-code enum.

use std::collections::BTreeMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

both!(bad_requests_answer_with_their_documented_status_and_code);

async fn bad_requests_answer_with_their_documented_status_and_code(b: Backend) {
    let codes = bad_request_codes(b).await;
    assert!(codes.len() >= 20, "{codes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deployment_errors_answer_with_their_documented_status_and_code() {
    deployment_error_codes().await;
}

/// One table row: a request and the answer it must get.
struct Row {
    what: String,
    method: reqwest::Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
}

fn row(what: &str, method: &str, path: impl Into<String>, status: u16, code: &'static str) -> Row {
    Row {
        what: what.to_owned(),
        method: method.parse().expect("method"),
        path: path.into(),
        headers: Vec::new(),
        body: None,
        status,
        code,
    }
}

impl Row {
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn auth(self) -> Self {
        self.header("authorization", format!("Bearer {KEY}"))
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self.header("content-type", "application/json")
    }

    fn raw(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }
}

/// Sends each row; returns the problems (empty = all as documented) and the codes seen.
async fn check(api: &Api, rows: Vec<Row>, seen: &mut BTreeMap<String, u16>) -> Vec<String> {
    let mut problems = Vec::new();
    for r in rows {
        let mut req = api.client.request(r.method.clone(), api.url(&r.path));
        for (n, v) in &r.headers {
            req = req.header(*n, v);
        }
        if let Some(body) = r.body.clone() {
            req = req.body(body);
        }
        let a = api.send(req).await;
        let code = serde_json::from_str::<Value>(&a.text)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        if a.status.as_u16() != r.status || code.as_deref() != Some(r.code) {
            problems.push(format!(
                "{} ({} {}): want {} {}, got {} {:?}",
                r.what,
                r.method,
                r.path.chars().take(120).collect::<String>(),
                r.status,
                r.code,
                a.status,
                a.text.chars().take(300).collect::<String>()
            ));
            continue;
        }
        if a.header("x-content-type-options") != Some("nosniff")
            || !a
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json"))
        {
            problems.push(format!(
                "{}: error response headers {:?}",
                r.what, a.headers
            ));
        }
        let message = a.json()["error"]["message"].clone();
        if message.as_str().is_none_or(|m| m.is_empty()) {
            problems.push(format!("{}: error without message: {}", r.what, a.text));
        }
        if r.status == 413 || r.status == 401 {
            // Neither the key nor the payload is echoed.
            if a.text.contains(KEY) {
                problems.push(format!("{}: echoed the key", r.what));
            }
        }
        seen.insert(r.code.to_owned(), r.status);
    }
    problems
}

/// Runs the bad-request table on `backend`; panics listing every row that answered wrong.
pub(super) async fn bad_request_codes(backend: Backend) -> BTreeMap<String, u16> {
    let api = Api::with(
        backend,
        &[
            ("max_message_bytes", "100"),
            ("max_batch", "3"),
            ("max_held_requests", "2"),
            ("poll_timeout_max", "5"),
            ("token_secret", super::tokens::SECRET),
            ("client_publish", "open-*,private-open"),
            ("client_actions", "echo,fail,slow,nope,a/*"),
            ("action_timeout_seconds", "1"),
        ],
    );
    let ch = api.channel("err");
    api.publish(&ch, json!(1)).await;
    let good = api
        .poll(&format!("channel={ch}&from=start&timeout=0"))
        .await["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    // A real cursor with one character changed: the checksum catches it.
    let mut tampered: Vec<char> = good.chars().collect();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let many: Vec<String> = (0..101).map(|i| format!("c{i}")).collect();
    let long_name = "a".repeat(201);
    let big = "x".repeat(150);
    let publish = |what: &str| row(what, "POST", "/v1/publish", 400, "invalid_json").auth();

    let rows = vec![
        row("unknown path", "GET", "/v1/nope", 404, "route_not_found"),
        row("bare /v1", "GET", "/v1", 404, "route_not_found"),
        row(
            "path below poll",
            "GET",
            format!("/v1/poll/x?channel={ch}"),
            404,
            "route_not_found",
        ),
        row(
            "path below publish",
            "POST",
            "/v1/publish/x",
            404,
            "route_not_found",
        ),
        row(
            "history without channel segment",
            "GET",
            "/v1/history",
            404,
            "route_not_found",
        ),
        row(
            "POST poll",
            "POST",
            format!("/v1/poll?channel={ch}"),
            405,
            "method_not_allowed",
        ),
        row(
            "PUT sse",
            "PUT",
            format!("/v1/sse?channel={ch}"),
            405,
            "method_not_allowed",
        ),
        row(
            "DELETE stream",
            "DELETE",
            format!("/v1/stream?channel={ch}"),
            405,
            "method_not_allowed",
        ),
        row(
            "GET publish",
            "GET",
            "/v1/publish",
            405,
            "method_not_allowed",
        ),
        row(
            "POST history",
            "POST",
            format!("/v1/history/{ch}"),
            405,
            "method_not_allowed",
        ),
        row(
            "DELETE channel",
            "DELETE",
            format!("/v1/channels/{ch}"),
            405,
            "method_not_allowed",
        ),
        row(
            "poll without channel",
            "GET",
            "/v1/poll?timeout=0",
            400,
            "missing_channel",
        ),
        row(
            "sse without channel",
            "GET",
            "/v1/sse",
            400,
            "missing_channel",
        ),
        row(
            "stream without channel",
            "GET",
            "/v1/stream?cursor=",
            400,
            "missing_channel",
        ),
        row(
            "101 channels",
            "GET",
            format!("/v1/poll?timeout=0&channel={}", many.join(",")),
            400,
            "too_many_channels",
        ),
        row(
            "101 channel params",
            "GET",
            format!("/v1/sse?channel={}", many.join("&channel=")),
            400,
            "too_many_channels",
        ),
        row(
            "space in name",
            "GET",
            "/v1/poll?channel=bad%20name",
            400,
            "invalid_channel",
        ),
        row(
            "empty name",
            "GET",
            "/v1/poll?channel=",
            400,
            "invalid_channel",
        ),
        row(
            "$ prefix",
            "GET",
            "/v1/poll?channel=%24internal",
            400,
            "invalid_channel",
        ),
        row(
            "201-byte name",
            "GET",
            format!("/v1/stream?channel={long_name}"),
            400,
            "invalid_channel",
        ),
        row(
            "bad name in history",
            "GET",
            "/v1/history/%24x",
            400,
            "invalid_channel",
        ),
        row(
            "bad name in channels",
            "GET",
            "/v1/channels/a%20b",
            400,
            "invalid_channel",
        ),
        publish("publish to $ channel")
            .json(json!({ "channel": "$x", "data": 1 }))
            .with(400, "invalid_channel"),
        publish("publish to bad name")
            .json(json!({ "channel": "a b", "data": 1 }))
            .with(400, "invalid_channel"),
        row(
            "private poll",
            "GET",
            "/v1/poll?channel=private-x&timeout=0",
            403,
            "token_required",
        ),
        row(
            "private sse",
            "GET",
            format!("/v1/sse?channel={ch},private-x"),
            403,
            "token_required",
        ),
        row(
            "private stream",
            "GET",
            "/v1/stream?channel=private-x",
            403,
            "token_required",
        ),
        row(
            "private history",
            "GET",
            "/v1/history/private-x",
            403,
            "token_required",
        ),
        row(
            "private channel info",
            "GET",
            "/v1/channels/private-x",
            403,
            "token_required",
        ),
        row(
            "client send, channel not open",
            "POST",
            "/v1/send",
            403,
            "publish_forbidden",
        )
        .json(json!({ "channel": "closed", "data": 1 })),
        row(
            "client send, private, no token",
            "POST",
            "/v1/send",
            403,
            "token_required",
        )
        .json(json!({ "channel": "private-open", "data": 1 })),
        row(
            "client send, bad JSON",
            "POST",
            "/v1/send",
            400,
            "invalid_json",
        )
        .raw("{\"channel\":")
        .header("content-type", "application/json"),
        row(
            "client send, bad name",
            "POST",
            "/v1/send",
            400,
            "invalid_channel",
        )
        .json(json!({ "channel": "open-a b", "data": 1 })),
        row(
            "client send, too large",
            "POST",
            "/v1/send",
            413,
            "message_too_large",
        )
        .json(json!({ "channel": "open-x", "data": big })),
        row(
            "client send, GET",
            "GET",
            "/v1/send",
            405,
            "method_not_allowed",
        ),
        row(
            "action not allowed",
            "POST",
            "/v1/action/time",
            403,
            "action_forbidden",
        )
        .json(json!({})),
        row(
            "action missing",
            "POST",
            "/v1/action/nope",
            404,
            "action_not_found",
        )
        .json(json!({})),
        row(
            "action fails",
            "POST",
            "/v1/action/fail",
            502,
            "action_failed",
        )
        .json(json!({})),
        row(
            "action too slow",
            "POST",
            "/v1/action/slow",
            504,
            "action_timeout",
        )
        .json(json!({ "ms": 3000 })),
        row(
            "action params not JSON",
            "POST",
            "/v1/action/echo",
            400,
            "invalid_action",
        )
        .raw("{nope"),
        row(
            "action route escapes",
            "POST",
            "/v1/action/a/..%2Fb",
            400,
            "invalid_action_route",
        )
        .json(json!({})),
        row(
            "forged token",
            "GET",
            format!(
                "/v1/poll?channel=private-x&timeout=0&token={}",
                super::tokens::forged(&["private-x"])
            ),
            401,
            "invalid_token",
        ),
        row(
            "expired token",
            "GET",
            format!(
                "/v1/sse?channel=private-x&token={}",
                super::tokens::token(&["private-x"], -3600)
            ),
            401,
            "token_expired",
        ),
        row(
            "token for another channel",
            "GET",
            "/v1/stream?channel=private-x",
            403,
            "channel_not_allowed",
        )
        .header(
            "authorization",
            format!("Bearer {}", super::tokens::token(&["private-y"], 60)),
        ),
        row(
            "garbage cursor",
            "GET",
            format!("/v1/poll?channel={ch}&cursor=not*a*cursor&timeout=0"),
            400,
            "invalid_cursor",
        ),
        row(
            "tampered cursor",
            "GET",
            format!("/v1/poll?channel={ch}&cursor={tampered}&timeout=0"),
            400,
            "invalid_cursor",
        ),
        row(
            "short cursor",
            "GET",
            format!("/v1/stream?channel={ch}&cursor=AQ"),
            400,
            "invalid_cursor",
        ),
        row(
            "too long cursor",
            "GET",
            format!("/v1/poll?channel={ch}&cursor={}", "A".repeat(5000)),
            400,
            "invalid_cursor",
        ),
        row(
            "garbage Last-Event-ID",
            "GET",
            format!("/v1/sse?channel={ch}"),
            400,
            "invalid_cursor",
        )
        .header("last-event-id", "nope!"),
        row(
            "tampered lastEventId",
            "GET",
            format!("/v1/sse?channel={ch}&lastEventId={tampered}"),
            400,
            "invalid_cursor",
        ),
        row(
            "timeout not a number",
            "GET",
            format!("/v1/poll?channel={ch}&timeout=abc"),
            400,
            "invalid_timeout",
        ),
        row(
            "negative timeout",
            "GET",
            format!("/v1/poll?channel={ch}&timeout=-1"),
            400,
            "invalid_timeout",
        ),
        row(
            "timeout over max",
            "GET",
            format!("/v1/poll?channel={ch}&timeout=5.5"),
            400,
            "invalid_timeout",
        ),
        row(
            "NaN timeout",
            "GET",
            format!("/v1/poll?channel={ch}&timeout=NaN"),
            400,
            "invalid_timeout",
        ),
        row(
            "infinite timeout",
            "GET",
            format!("/v1/poll?channel={ch}&timeout=inf"),
            400,
            "invalid_timeout",
        ),
        row(
            "bad from",
            "GET",
            format!("/v1/poll?channel={ch}&from=yesterday&timeout=0"),
            400,
            "invalid_from",
        ),
        row(
            "bad from on sse",
            "GET",
            format!("/v1/sse?channel={ch}&from=0"),
            400,
            "invalid_from",
        ),
        row(
            "callback starts with digit",
            "GET",
            format!("/v1/poll?channel={ch}&callback=1cb"),
            400,
            "invalid_callback",
        ),
        row(
            "callback with parens",
            "GET",
            format!("/v1/poll?channel={ch}&callback=a(b)"),
            400,
            "invalid_callback",
        ),
        row(
            "callback too long",
            "GET",
            format!("/v1/poll?channel={ch}&callback=a{}", "b".repeat(64)),
            400,
            "invalid_callback",
        ),
        publish("truncated JSON").raw("{\"channel\":"),
        publish("missing data").json(json!({ "channel": ch })),
        publish("unknown field").json(json!({ "channel": ch, "data": 1, "extra": true })),
        publish("channel not a string").json(json!({ "channel": 5, "data": 1 })),
        publish("not UTF-8").raw(vec![b'"', 0xff, 0xfe, b'"']),
        publish("scalar body").raw("42"),
        publish("empty body").raw(""),
        publish("empty id")
            .json(json!({ "channel": ch, "data": 1, "id": "" }))
            .with(400, "invalid_message_id"),
        publish("id with space")
            .json(json!({ "channel": ch, "data": 1, "id": "a b" }))
            .with(400, "invalid_message_id"),
        publish("201-byte id")
            .json(json!({ "channel": ch, "data": 1, "id": "i".repeat(201) }))
            .with(400, "invalid_message_id"),
        publish("empty batch").raw("[]").with(400, "empty_batch"),
        publish("body over limit")
            .json(json!({ "channel": ch, "data": "y".repeat(5000) }))
            .with(413, "body_too_large"),
        publish("data over max_message_bytes")
            .json(json!({ "channel": ch, "data": big }))
            .with(413, "message_too_large"),
        publish("batch over max_batch")
            .json(json!([
                { "channel": ch, "data": 1 }, { "channel": ch, "data": 2 },
                { "channel": ch, "data": 3 }, { "channel": ch, "data": 4 },
            ]))
            .with(413, "batch_too_large"),
        row(
            "publish without key",
            "POST",
            "/v1/publish",
            401,
            "unauthorized",
        )
        .json(json!({ "channel": ch, "data": 1 })),
        row(
            "publish with wrong key",
            "POST",
            "/v1/publish",
            401,
            "unauthorized",
        )
        .header("authorization", format!("Bearer {KEY}x"))
        .json(json!({ "channel": ch, "data": 1 })),
        row(
            "publish with Basic auth",
            "POST",
            "/v1/publish",
            401,
            "unauthorized",
        )
        .header("authorization", format!("Basic {KEY}"))
        .json(json!({ "channel": ch, "data": 1 })),
        row(
            "limit not a number",
            "GET",
            format!("/v1/history/{ch}?limit=ten"),
            400,
            "invalid_limit",
        ),
        row(
            "limit over 1000",
            "GET",
            format!("/v1/history/{ch}?limit=1001"),
            400,
            "invalid_limit",
        ),
        row(
            "negative limit",
            "GET",
            format!("/v1/history/{ch}?limit=-1"),
            400,
            "invalid_limit",
        ),
        row(
            "since not a number",
            "GET",
            format!("/v1/history/{ch}?since=x"),
            400,
            "invalid_since",
        ),
        row(
            "negative since",
            "GET",
            format!("/v1/history/{ch}?since=-1"),
            400,
            "invalid_since",
        ),
    ];
    let mut seen = BTreeMap::new();
    let mut problems = check(&api, rows, &mut seen).await;

    // Nothing above was stored.
    let info = api.get(&format!("/v1/channels/{ch}")).await.json();
    if info["last_seq"] != 1 {
        problems.push(format!("rejected publishes were stored: {info}"));
    }

    // A JSONP caller gets errors through its (valid) callback, with 200.
    let a = api.get("/v1/poll?callback=cb&timeout=0").await;
    let via_callback = a
        .text
        .strip_prefix("/**/cb(")
        .and_then(|t| t.strip_suffix(");"))
        .and_then(|t| serde_json::from_str::<Value>(t).ok());
    match via_callback {
        Some(v) if a.status == StatusCode::OK && v["error"]["code"] == "missing_channel" => {}
        _ => problems.push(format!("JSONP error: got {} {:?}", a.status, a.text)),
    }
    let a = api
        .get(&format!("/v1/poll?callback=cb&channel={ch}&timeout=9"))
        .await;
    if a.status != StatusCode::OK || !a.text.contains("\"code\":\"invalid_timeout\"") {
        problems.push(format!(
            "JSONP invalid_timeout: got {} {:?}",
            a.status, a.text
        ));
    }

    // A request body that breaks off: 400 bad_body (raw TCP, the client half-closes).
    match broken_body(&api).await {
        Ok((400, code)) if code == "bad_body" => {
            seen.insert(code, 400);
        }
        other => problems.push(format!("broken body: want 400 bad_body, got {other:?}")),
    }

    // Beyond max_held_requests (2) held requests: 503 + Retry-After, and slots come back.
    let held_ch = api.channel("held");
    let cursor = api.cursor_now(&held_ch).await;
    let hold = || {
        api.client
            .get(api.url(&format!(
                "/v1/poll?channel={held_ch}&cursor={cursor}&timeout=5"
            )))
            .send()
    };
    // The cap is per instance. Requests that arrive together can fan out to a second instance
    // (the runner starts one whenever none is free at that instant), so the held requests are
    // sent one after the other, each given time to be accepted by the same instance.
    let mut h1 = Box::pin(hold());
    let first_held = tokio::time::timeout(Duration::from_millis(300), &mut h1)
        .await
        .is_err();
    let mut h2 = Box::pin(hold());
    let still_held = tokio::time::timeout(Duration::from_millis(300), async {
        tokio::select! { _ = &mut h1 => {}, _ = &mut h2 => {} }
    })
    .await
    .is_err()
        && first_held;
    if !still_held {
        problems.push("a held poll returned early".into());
    }
    let third = api
        .get(&format!("/v1/poll?channel={held_ch}&timeout=1"))
        .await;
    let sse = api.get(&format!("/v1/sse?channel={held_ch}")).await;
    for (what, a) in [("poll", &third), ("sse", &sse)] {
        if a.status != StatusCode::SERVICE_UNAVAILABLE
            || a.code() != "too_many_held_requests"
            || !a
                .header("retry-after")
                .is_some_and(|v| v.parse::<u32>().is_ok_and(|s| s > 0))
        {
            problems.push(format!(
                "third held {what}: want 503 too_many_held_requests + Retry-After, got {} {:?} {:?}",
                a.status, a.headers, a.text
            ));
        } else {
            seen.insert("too_many_held_requests".into(), 503);
        }
    }
    // Non-held requests still work meanwhile; a publish releases both held polls.
    api.publish(&held_ch, json!("wake")).await;
    for h in [h1, h2] {
        let a = tokio::time::timeout(Duration::from_secs(3), h)
            .await
            .map(|r| r.map(|r| r.status()));
        if !matches!(a, Ok(Ok(StatusCode::OK))) {
            problems.push(format!("held poll after publish: {a:?}"));
        }
    }
    let after = api
        .get(&format!("/v1/poll?channel={held_ch}&timeout=0"))
        .await;
    if after.status != StatusCode::OK {
        problems.push(format!(
            "slots not released: {} {}",
            after.status, after.text
        ));
    }

    assert!(
        problems.is_empty(),
        "{} rows answered wrong on {backend:?}:\n{}",
        problems.len(),
        problems.join("\n")
    );
    seen
}

/// Runners configured so that every request fails: no publish key, Redis unreachable, a bad
/// variable. Returns the codes observed.
pub(super) async fn deployment_error_codes() -> BTreeMap<String, u16> {
    let mut seen = BTreeMap::new();
    let mut problems = Vec::new();

    let api = Api::with(Backend::Kv, &[("publish_key", "")]);
    let ch = api.channel("nokey");
    problems.extend(
        check(
            &api,
            vec![
                row(
                    "publish with no key configured",
                    "POST",
                    "/v1/publish",
                    503,
                    "publishing_disabled",
                )
                .auth()
                .json(json!({ "channel": ch, "data": 1 })),
                row(
                    "empty bearer, no key configured",
                    "POST",
                    "/v1/publish",
                    503,
                    "publishing_disabled",
                )
                .header("authorization", "Bearer ")
                .json(json!({ "channel": ch, "data": 1 })),
            ],
            &mut seen,
        )
        .await,
    );
    // Subscribing still works without a publish key.
    let a = api.get(&format!("/v1/poll?channel={ch}&timeout=0")).await;
    if a.status != StatusCode::OK {
        problems.push(format!("poll without publish key: {} {}", a.status, a.text));
    }
    drop(api);

    let mut opts = opts(Backend::Redis, &[]);
    opts = opts.env("SPIN_VARIABLE_REDIS_URL", "redis://127.0.0.1:1");
    let api = Api {
        runner: Runner::start(&manifest(), opts),
        client: client(),
    };
    let unavailable =
        |what: &str, method: &str, path: String| row(what, method, path, 503, "store_unavailable");
    let rows = vec![
        unavailable(
            "poll, Redis down",
            "GET",
            "/v1/poll?channel=x&timeout=0".into(),
        ),
        unavailable("sse, Redis down", "GET", "/v1/sse?channel=x".into()),
        unavailable("stream, Redis down", "GET", "/v1/stream?channel=x".into()),
        unavailable("history, Redis down", "GET", "/v1/history/x".into()),
        unavailable("channel info, Redis down", "GET", "/v1/channels/x".into()),
        unavailable("publish, Redis down", "POST", "/v1/publish".into())
            .auth()
            .json(json!({ "channel": "x", "data": 1 })),
    ];
    problems.extend(check(&api, rows, &mut seen).await);
    let a = api.get("/v1/poll?channel=x&timeout=0").await;
    if a.header("retry-after").is_none() {
        problems.push(format!(
            "store_unavailable without Retry-After: {:?}",
            a.headers
        ));
    }
    drop(api);

    // A one-message-per-second limit: the first batch (up to max_batch) passes, the next not.
    let api = Api::with(
        Backend::Kv,
        &[("publish_rate_limit", "1"), ("max_batch", "2")],
    );
    let ch = api.channel("rate");
    let ok = api
        .publish_body(&json!([{ "channel": ch, "data": 1 }, { "channel": ch, "data": 2 }]))
        .await;
    if ok.status != StatusCode::OK {
        problems.push(format!(
            "first batch under the limit: {} {}",
            ok.status, ok.text
        ));
    }
    problems.extend(
        check(
            &api,
            vec![
                row(
                    "over the publish rate",
                    "POST",
                    "/v1/publish",
                    429,
                    "rate_limited",
                )
                .auth()
                .json(json!([{ "channel": ch, "data": 3 }, { "channel": ch, "data": 4 }])),
            ],
            &mut seen,
        )
        .await,
    );
    let a = api.publish_body(&json!({ "channel": ch, "data": 5 })).await;
    if a.header("retry-after")
        .is_none_or(|v| v.parse::<u32>().is_err())
    {
        problems.push(format!("rate_limited without Retry-After: {:?}", a.headers));
    }
    // Refused publishes stored nothing.
    let stored = api.get(&format!("/v1/channels/{ch}")).await.json();
    if stored["last_seq"] != 2 {
        problems.push(format!("rate-limited publishes were stored: {stored}"));
    }
    drop(api);

    // An action target nobody listens on.
    let api = Api::with(
        Backend::Kv,
        &[
            ("client_actions", "*"),
            ("action_target", "http://127.0.0.1:1"),
        ],
    );
    problems.extend(
        check(
            &api,
            vec![
                row(
                    "action target down",
                    "POST",
                    "/v1/action/echo",
                    502,
                    "action_unavailable",
                )
                .json(json!({})),
            ],
            &mut seen,
        )
        .await,
    );
    drop(api);

    let api = Api::with(Backend::Kv, &[("max_channels", "0")]);
    let rows = vec![
        row(
            "poll, bad max_channels",
            "GET",
            "/v1/poll?channel=x&timeout=0",
            500,
            "bad_configuration",
        ),
        row(
            "publish, bad max_channels",
            "POST",
            "/v1/publish",
            500,
            "bad_configuration",
        )
        .auth()
        .json(json!({ "channel": "x", "data": 1 })),
        row(
            "history, bad max_channels",
            "GET",
            "/v1/history/x",
            500,
            "bad_configuration",
        ),
    ];
    problems.extend(check(&api, rows, &mut seen).await);
    let a = api.get("/v1/poll?channel=x&timeout=0").await;
    if !a.text.contains("max_channels") {
        problems.push(format!(
            "bad_configuration does not name the variable: {}",
            a.text
        ));
    }

    assert!(problems.is_empty(), "{}", problems.join("\n"));
    seen
}

impl Row {
    fn with(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }
}

/// Sends a publish whose body stops short of its Content-Length, half-closes, and reads the
/// answer's status and error code.
async fn broken_body(api: &Api) -> Result<(u16, String), String> {
    let addr = api
        .runner
        .base_url()
        .trim_start_matches("http://")
        .to_owned();
    let mut s = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| e.to_string())?;
    let head = format!(
        "POST /v1/publish HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"channel\""
    );
    s.write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    s.shutdown().await.map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .map_err(|_| "no answer within 10 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {text:?}"))?;
    let code = text
        .split("\"code\":\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .ok_or_else(|| format!("no code: {text:?}"))?
        .to_owned();
    Ok((status, code))
}
