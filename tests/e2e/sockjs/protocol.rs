//! The SockJS protocol on the test services: pages, framing per transport, escaping,
//! heartbeats, response limits, session conflicts, closes, timeouts and bad input.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{Sock, messages_of, read_until, session_id, test_services};
use crate::v1::{Backend, both};

#[tokio::test(flavor = "multi_thread")]
async fn greeting_info_and_iframe() {
    let api = test_services(
        Backend::Kv,
        &[("sockjs_url", "http://assets.test/sockjs.min.js")],
    );
    let a = api.get("/echo").await;
    assert_eq!(
        (a.status, a.text.as_str()),
        (StatusCode::OK, "Welcome to SockJS!\n")
    );
    assert_eq!(api.get("/echo/").await.text, "Welcome to SockJS!\n");

    let a = api.get("/echo/info").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.header("content-type"),
        Some("application/json; charset=UTF-8")
    );
    assert_eq!(
        a.header("cache-control"),
        Some("no-store, no-cache, no-transform, must-revalidate, max-age=0")
    );
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    let info = a.json();
    assert_eq!(info["websocket"], false);
    assert_eq!(info["cookie_needed"], false);
    assert_eq!(info["origins"], serde_json::json!(["*:*"]));
    assert!(info["entropy"].is_u64(), "{info}");
    let again = api.get("/echo/info").await.json();
    assert_ne!(info["entropy"], again["entropy"], "entropy is random");
    assert_eq!(
        api.get("/cookie_needed_echo/info").await.json()["cookie_needed"],
        true
    );

    let a = api
        .send(
            api.client
                .get(api.url("/echo/info"))
                .header("origin", "http://page.example"),
        )
        .await;
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("http://page.example")
    );
    assert_eq!(a.header("access-control-allow-credentials"), Some("true"));

    let a = api
        .send(
            api.client
                .request(reqwest::Method::OPTIONS, api.url("/echo/info"))
                .header("origin", "http://page.example")
                .header("access-control-request-headers", "x-foo"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(
        a.header("access-control-allow-methods"),
        Some("OPTIONS, GET")
    );
    assert_eq!(a.header("access-control-allow-headers"), Some("x-foo"));
    assert_eq!(a.header("access-control-max-age"), Some("31536000"));
    assert_eq!(a.header("cache-control"), Some("public, max-age=31536000"));
    assert!(a.header("expires").is_some_and(|e| e.ends_with(" GMT")));

    let a = api.send(api.client.post(api.url("/echo/info"))).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.header("allow"), Some("OPTIONS, GET"));

    let a = api.get("/echo/iframe.html").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.header("content-type"), Some("text/html; charset=UTF-8"));
    assert_eq!(a.header("cache-control"), Some("public, max-age=31536000"));
    assert!(
        a.text
            .contains("<script src=\"http://assets.test/sockjs.min.js\"></script>")
    );
    assert!(a.text.contains("SockJS.bootstrap_iframe();"));
    let etag = a.header("etag").expect("etag").to_owned();
    let a = api
        .send(
            api.client
                .get(api.url("/echo/iframe.html"))
                .header("if-none-match", &etag),
        )
        .await;
    assert_eq!((a.status, a.text.as_str()), (StatusCode::NOT_MODIFIED, ""));
    assert_eq!(
        api.get("/echo/iframe-1.6.1.html").await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.get("/echo/iframe-X.html").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn xhr_polling_echo_in_order(backend: Backend) {
    let api = test_services(backend, &[]);
    let s = Sock::new(&api, "/echo");
    s.open().await;
    s.send(&["a", "b"]).await;
    assert_eq!(s.xhr().await, "a[\"a\",\"b\"]\n");
    // Sent while no receiver waits: kept, then delivered together, in order.
    s.send(&["1"]).await;
    s.send(&["2", "3"]).await;
    s.send(&[]).await;
    s.send(&["4"]).await;
    assert_eq!(s.collect(4).await, ["1", "2", "3", "4"]);
    // SockJS's escaping on the wire, and the text intact after decoding.
    let tricky = "q\"\\ \u{2028}\u{200d} \u{1F600} é </script> %";
    s.send(&[tricky]).await;
    let body = s.xhr().await;
    assert_eq!(
        body,
        "a[\"q\\\"\\\\ \\u2028\\u200d \\ud83d\\ude00 é </script> %\"]\n"
    );
    assert_eq!(messages_of(&body), [tricky]);
}

async fn xhr_streaming_and_a_second_receiver(backend: Backend) {
    let api = test_services(backend, &[]);
    let s = Sock::new(&api, "/echo");
    let mut stream = s.stream("xhr_streaming").await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream.headers()["content-type"],
        "application/javascript; charset=UTF-8"
    );
    let mut text = String::new();
    let prelude = format!("{}\n", "h".repeat(2048));
    read_until(
        &mut stream,
        Duration::from_secs(10),
        |t| t.len() >= 2051,
        &mut text,
    )
    .await;
    assert_eq!(text, format!("{prelude}o\n"));

    // A second receiver while the stream holds the session.
    let a = s.post("xhr", "").await;
    assert_eq!(a.text, "c[2010,\"Another connection still open\"]\n");
    let mut second = s.stream("xhr_streaming").await;
    let mut second_text = String::new();
    let ended = read_until(
        &mut second,
        Duration::from_secs(10),
        |t| t.ends_with("still open\"]\n"),
        &mut second_text,
    )
    .await;
    assert!(!ended || second_text.ends_with("still open\"]\n"));
    assert_eq!(
        second_text,
        format!("{prelude}c[2010,\"Another connection still open\"]\n")
    );

    // The first stream still delivers.
    s.send(&["x", "y"]).await;
    text.clear();
    read_until(
        &mut stream,
        Duration::from_secs(10),
        |t| t.contains('\n'),
        &mut text,
    )
    .await;
    assert_eq!(text, "a[\"x\",\"y\"]\n");
}

async fn eventsource_htmlfile_and_jsonp_framing(backend: Backend) {
    let api = test_services(backend, &[]);

    let s = Sock::new(&api, "/echo");
    let mut es = s.stream("eventsource").await;
    assert_eq!(
        es.headers()["content-type"],
        "text/event-stream; charset=UTF-8"
    );
    let mut text = String::new();
    read_until(
        &mut es,
        Duration::from_secs(10),
        |t| t.len() >= 13,
        &mut text,
    )
    .await;
    assert_eq!(text, "\r\ndata: o\r\n\r\n");
    s.send(&["50%\r\n"]).await;
    text.clear();
    read_until(
        &mut es,
        Duration::from_secs(10),
        |t| t.ends_with("\r\n\r\n"),
        &mut text,
    )
    .await;
    assert_eq!(text, "data: a[\"50%25\\r\\n\"]\r\n\r\n");

    let s = Sock::new(&api, "/echo");
    let mut html = s.stream("htmlfile?c=_jp.abc").await;
    assert_eq!(html.headers()["content-type"], "text/html; charset=UTF-8");
    let mut text = String::new();
    read_until(
        &mut html,
        Duration::from_secs(10),
        |t| t.contains("p(\"o\")"),
        &mut text,
    )
    .await;
    assert!(text.contains("var c = parent._jp.abc;"), "{text}");
    assert!(
        text.ends_with("<script>\np(\"o\");\n</script>\r\n"),
        "{text}"
    );
    let head = text.split("<script>\np(").next().expect("head");
    assert!(head.len() > 1024, "htmlfile head is padded: {}", head.len());
    s.send(&["</script><b>"]).await;
    text.clear();
    read_until(
        &mut html,
        Duration::from_secs(10),
        |t| t.ends_with("\r\n"),
        &mut text,
    )
    .await;
    assert_eq!(
        text,
        "<script>\np(\"a[\\\"\\u003c/script>\\u003cb>\\\"]\");\n</script>\r\n"
    );

    let s = Sock::new(&api, "/echo");
    let a = s.get("jsonp?c=cb").await;
    assert_eq!(
        a.header("content-type"),
        Some("application/javascript; charset=UTF-8")
    );
    assert_eq!(a.text, "/**/cb(\"o\");\r\n");
    let api2 = s.apis[0];
    let form = api2
        .send(
            api2.client
                .post(api2.url(&format!("{}/jsonp_send", s.base)))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("d=%5B%22x%20y%22%5D"),
        )
        .await;
    assert_eq!((form.status, form.text.as_str()), (StatusCode::OK, "ok"));
    let raw = s.post("jsonp_send", "[\"z\"]").await;
    assert_eq!((raw.status, raw.text.as_str()), (StatusCode::OK, "ok"));
    assert_eq!(
        s.get("jsonp?callback=cb").await.text,
        "/**/cb(\"a[\\\"x y\\\",\\\"z\\\"]\");\r\n"
    );
}

async fn close_service_closes_with_go_away(backend: Backend) {
    let api = test_services(backend, &[]);
    let s = Sock::new(&api, "/close");
    assert_eq!(s.xhr().await, "o\n");
    assert_eq!(s.xhr().await, "c[3000,\"Go away!\"]\n");
    assert_eq!(
        s.xhr().await,
        "c[3000,\"Go away!\"]\n",
        "repeated to late receivers"
    );
    // Sends to a closing session are taken and dropped, as in sockjs-node.
    s.send(&["ignored"]).await;

    let s = Sock::new(&api, "/close");
    let mut stream = s.stream("xhr_streaming").await;
    let mut text = String::new();
    let ended = read_until(&mut stream, Duration::from_secs(10), |_| false, &mut text).await;
    assert!(ended);
    assert_eq!(
        text,
        format!("{}\no\nc[3000,\"Go away!\"]\n", "h".repeat(2048))
    );
}

async fn heartbeats_and_response_limit(backend: Backend) {
    let api = test_services(
        backend,
        &[
            ("sockjs_heartbeat_seconds", "1"),
            ("sockjs_response_limit", "4096"),
        ],
    );
    let s = Sock::new(&api, "/echo");
    s.open().await;
    let started = Instant::now();
    assert_eq!(s.xhr().await, "h\n");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "heartbeat after {waited:?}"
    );

    // A streaming response ends after the limit; the rest waits for the next one.
    let big = "x".repeat(1000);
    let wanted: Vec<String> = (0..10).map(|i| format!("{i}{big}")).collect();
    let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
    s.send(&refs).await;
    let mut got = Vec::new();
    let mut responses = 0;
    while got.len() < wanted.len() {
        responses += 1;
        assert!(responses < 20, "too many responses; got {}", got.len());
        let mut stream = s.stream("xhr_streaming").await;
        let mut text = String::new();
        let ended = read_until(&mut stream, Duration::from_secs(10), |_| false, &mut text).await;
        assert!(ended);
        for line in text.lines().skip(1) {
            if line.starts_with('a') {
                got.extend(messages_of(line));
            }
        }
    }
    assert_eq!(got, wanted);
    assert!(responses >= 1);

    let s = Sock::new(&api, "/echo");
    let mut stream = s.stream("xhr_streaming").await;
    let mut text = String::new();
    read_until(
        &mut stream,
        Duration::from_secs(5),
        |t| t.ends_with("o\nh\n"),
        &mut text,
    )
    .await;
}

both!(
    xhr_polling_echo_in_order,
    xhr_streaming_and_a_second_receiver,
    eventsource_htmlfile_and_jsonp_framing,
    close_service_closes_with_go_away,
    heartbeats_and_response_limit,
);

#[tokio::test(flavor = "multi_thread")]
async fn cookies_and_cors_on_transports() {
    let api = test_services(Backend::Kv, &[]);
    let s = Sock::new(&api, "/cookie_needed_echo");
    let a = s.post("xhr", "").await;
    assert_eq!(a.header("set-cookie"), Some("JSESSIONID=dummy; path=/"));
    let a = api
        .send(
            api.client
                .post(api.url(&format!("{}/xhr", s.base)))
                .header("cookie", "JSESSIONID=abc"),
        )
        .await;
    assert_eq!(a.header("set-cookie"), Some("JSESSIONID=abc; path=/"));
    let plain = Sock::new(&api, "/echo");
    assert_eq!(plain.post("xhr", "").await.header("set-cookie"), None);

    let a = api
        .send(
            api.client
                .post(api.url(&format!("{}/xhr", plain.base)))
                .header("origin", "http://page.example"),
        )
        .await;
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("http://page.example")
    );
    assert_eq!(a.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(
        a.header("cache-control"),
        Some("no-store, no-cache, no-transform, must-revalidate, max-age=0")
    );
    let a = api
        .send(
            api.client
                .request(
                    reqwest::Method::OPTIONS,
                    api.url(&format!("{}/xhr_send", plain.base)),
                )
                .header("origin", "http://page.example")
                .header("access-control-request-headers", "content-type"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(
        a.header("access-control-allow-methods"),
        Some("OPTIONS, POST")
    );
    assert_eq!(
        a.header("access-control-allow-headers"),
        Some("content-type")
    );
    assert_eq!(a.header("access-control-allow-credentials"), Some("true"));
}

/// One bad-input row: method, path, content type, body, status, body text, `Comet-Error`.
type Case<'a> = (
    &'a str,
    String,
    &'a str,
    &'a str,
    u16,
    &'a str,
    Option<&'a str>,
);

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_sockjs_answers() {
    let api = test_services(Backend::Kv, &[("max_message_bytes", "100")]);
    let live = Sock::new(&api, "/echo");
    live.open().await;
    let unknown = format!("/echo/000/{}", session_id());
    let l = &live.base;
    let long_cb = "c".repeat(33);
    // (method, path, content type, body, status, body text, Comet-Error code)
    let cases: Vec<Case> = vec![
        (
            "POST",
            format!("{unknown}/xhr_send"),
            "text/plain",
            "[\"x\"]",
            404,
            "404 Error: Page not found\n",
            Some("not_found"),
        ),
        (
            "POST",
            format!("{l}/xhr_send"),
            "text/plain",
            "",
            500,
            "Payload expected.",
            Some("payload_expected"),
        ),
        (
            "POST",
            format!("{l}/xhr_send"),
            "text/plain",
            "[\"x",
            500,
            "Broken JSON encoding.",
            Some("broken_json"),
        ),
        (
            "POST",
            format!("{l}/xhr_send"),
            "text/plain",
            "{}",
            500,
            "Payload expected.",
            Some("payload_expected"),
        ),
        (
            "POST",
            format!("{l}/xhr_send"),
            "image/png",
            "[\"x\"]",
            500,
            "Payload expected.",
            Some("payload_expected"),
        ),
        (
            "POST",
            format!("{l}/jsonp_send"),
            "application/x-www-form-urlencoded",
            "e=1",
            500,
            "Payload expected.",
            Some("payload_expected"),
        ),
        (
            "POST",
            format!("{l}/jsonp_send"),
            "application/x-www-form-urlencoded",
            "d=%5B",
            500,
            "Broken JSON encoding.",
            Some("broken_json"),
        ),
        (
            "GET",
            format!("{l}/jsonp"),
            "",
            "",
            500,
            "\"callback\" parameter required",
            Some("callback_required"),
        ),
        (
            "GET",
            format!("{l}/jsonp?c=a(b)"),
            "",
            "",
            500,
            "invalid \"callback\" parameter",
            Some("invalid_callback"),
        ),
        (
            "GET",
            format!("{l}/jsonp?c={long_cb}"),
            "",
            "",
            500,
            "invalid \"callback\" parameter",
            Some("invalid_callback"),
        ),
        (
            "GET",
            format!("{l}/htmlfile?c=x;alert(1)"),
            "",
            "",
            500,
            "invalid \"callback\" parameter",
            Some("invalid_callback"),
        ),
        (
            "GET",
            format!("{l}/htmlfile?c=%3C/script%3E"),
            "",
            "",
            500,
            "invalid \"callback\" parameter",
            Some("invalid_callback"),
        ),
        (
            "POST",
            "/echo/000/a.b/xhr".into(),
            "",
            "",
            404,
            "404 Error: Page not found\n",
            Some("not_found"),
        ),
        (
            "POST",
            "/echo/0.0/ab/xhr".into(),
            "",
            "",
            404,
            "404 Error: Page not found\n",
            Some("not_found"),
        ),
        (
            "POST",
            "/echo/000//xhr".into(),
            "",
            "",
            404,
            "404 Error: Page not found\n",
            Some("not_found"),
        ),
        (
            "POST",
            format!("/echo/000/{}/xhr", "s".repeat(65)),
            "",
            "",
            404,
            "404 Error: Page not found\n",
            Some("not_found"),
        ),
        (
            "POST",
            "/echo/000/a%7Bb/xhr".into(),
            "",
            "",
            404,
            "404 Error: Page not found\n",
            Some("not_found"),
        ),
        (
            "POST",
            "/echo/a/b/c/d".into(),
            "",
            "",
            404,
            "404 Error: Page not found\n",
            Some("not_found"),
        ),
        (
            "POST",
            format!("{l}/unknown"),
            "",
            "",
            404,
            "404 Error: Page not found\n",
            Some("not_found"),
        ),
        (
            "GET",
            format!("{l}/websocket"),
            "",
            "",
            404,
            "404 Error: Page not found\n",
            Some("not_found"),
        ),
        (
            "GET",
            format!("{l}/xhr"),
            "",
            "",
            405,
            "",
            Some("method_not_allowed"),
        ),
        (
            "POST",
            format!("{l}/jsonp"),
            "",
            "",
            405,
            "",
            Some("method_not_allowed"),
        ),
        (
            "POST",
            format!("{l}/xhr_send"),
            "text/plain",
            "[\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"]",
            413,
            "Message too large.",
            Some("message_too_large"),
        ),
    ];
    for (method, path, content_type, body, status, text, code) in cases {
        let mut req = api
            .client
            .request(method.parse().expect("method"), api.url(&path))
            .body(body.to_owned());
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        let a = api.send(req).await;
        assert_eq!(a.status.as_u16(), status, "{method} {path}: {}", a.text);
        assert_eq!(a.text, text, "{method} {path}");
        assert_eq!(a.header("comet-error"), code, "{method} {path}");
    }
    // The live session is unharmed by all of it.
    live.send(&["still here"]).await;
    assert_eq!(live.collect(1).await, ["still here"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_time_out_after_the_disconnect_delay() {
    let api = test_services(Backend::Kv, &[("sockjs_disconnect_delay_seconds", "0.5")]);
    let s = Sock::new(&api, "/echo");
    s.open().await;
    s.send(&["kept"]).await;
    // Disconnect delay 0.5 s plus the store's 5 s grace for clock skew.
    tokio::time::sleep(Duration::from_millis(6000)).await;
    let a = s.post("xhr_send", "[\"late\"]").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert_eq!(s.xhr().await, "o\n", "a receive starts a new session");
    s.send(&["fresh"]).await;
    assert_eq!(
        s.collect(1).await,
        ["fresh"],
        "the new session starts empty"
    );
}
