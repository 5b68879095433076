//! `GET /v1/stream`: chunked NDJSON with per-line cursors, heartbeats, clean end, resume.

use super::*;

both!(
    ndjson_delivers_concurrent_publishes_in_order_and_resumes_from_cursor,
    ndjson_heartbeats_when_quiet_and_ends_cleanly_after_max_stream_seconds,
    ndjson_backlog_after_stale_cursor_starts_with_reset,
);

/// Opens `/v1/stream?query`; asserts 200 and the streaming headers.
async fn open(api: &Api, query: &str) -> Lines {
    let resp = api
        .client
        .get(api.url(&format!("/v1/stream?{query}")))
        .send()
        .await
        .expect("GET /v1/stream");
    assert_eq!(resp.status(), StatusCode::OK, "stream ?{query}");
    let h = resp.headers();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert!(
        get("content-type").is_some_and(|t| t.starts_with("application/x-ndjson")),
        "{h:?}"
    );
    assert_eq!(
        get("cache-control").as_deref(),
        Some("no-cache, no-transform")
    );
    assert_eq!(get("x-accel-buffering").as_deref(), Some("no"));
    assert_eq!(get("x-content-type-options").as_deref(), Some("nosniff"));
    Lines::new(resp)
}

/// The next NDJSON object, `None` at the end of the body.
async fn next(lines: &mut Lines) -> Option<Value> {
    let line = lines.next_line(Duration::from_secs(5)).await?;
    Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("line not JSON ({e}): {line:?}")))
}

/// Lines up to and including `open`: (backlog, open cursor).
async fn until_open(lines: &mut Lines) -> (Vec<Value>, String) {
    let mut backlog = Vec::new();
    loop {
        let v = next(lines).await.expect("ended before open");
        if v["type"] == "ready" {
            return (
                backlog,
                v["cursor"].as_str().expect("open cursor").to_owned(),
            );
        }
        backlog.push(v);
    }
}

/// The envelope part of a line (without `cursor`).
fn envelope(v: &Value) -> Value {
    let mut v = v.clone();
    v.as_object_mut()
        .expect("object")
        .remove("cursor")
        .expect("line carries a cursor");
    v
}

async fn ndjson_delivers_concurrent_publishes_in_order_and_resumes_from_cursor(b: Backend) {
    let api = Api::start(b);
    let (a, c) = (api.channel("nd-a"), api.channel("nd-c"));
    let query = format!("channel={a},{c}");
    let mut first = open(&api, &query).await;
    let (backlog, mut cursor) = until_open(&mut first).await;
    assert!(backlog.is_empty());
    let mut reader = Some(first);

    let subscriber = async {
        let mut events = Vec::new();
        let mut disconnected_once = false;
        let deadline = Instant::now() + Duration::from_secs(40);
        while seqs(&events, &a).len() < 60 || seqs(&events, &c).len() < 10 {
            assert!(Instant::now() < deadline, "gave up; got {events:?}");
            let Some(r) = reader.as_mut() else {
                tokio::time::sleep(Duration::from_millis(150)).await;
                reader = Some(open(&api, &format!("{query}&cursor={cursor}")).await);
                continue;
            };
            match next(r).await {
                None => reader = None,
                Some(v) => {
                    cursor = v["cursor"]
                        .as_str()
                        .expect("every line has a cursor")
                        .to_owned();
                    match v["type"].as_str() {
                        Some("ready" | "heartbeat") => {}
                        Some(other) => panic!("unexpected line type {other}: {v}"),
                        None => {
                            let e = envelope(&v);
                            assert_envelope(&e);
                            events.push(e);
                            if !disconnected_once && seqs(&events, &a).len() == 20 {
                                disconnected_once = true;
                                reader = None;
                            }
                        }
                    }
                }
            }
        }
        events
    };
    let publishers = async {
        tokio::join!(
            publish_concurrently(&api, &a, 50, 4),
            publish_concurrently(&api, &c, 10, 1)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        for i in 50..60 {
            api.publish(&a, json!({ "i": i, "p": 9 })).await;
        }
    };
    let (events, ()) = tokio::join!(subscriber, publishers);
    assert_complete_in_order(&events, &a, 60);
    assert_complete_in_order(&events, &c, 10);

    drop(reader);
    for i in 60..63 {
        api.publish(&c, json!({ "i": i, "p": 0 })).await;
    }
    let mut r = open(&api, &format!("{query}&cursor={cursor}")).await;
    let (backlog, _) = until_open(&mut r).await;
    assert_eq!(seqs(&backlog, &c), [11, 12, 13], "{backlog:?}");
    assert!(seqs(&backlog, &a).is_empty(), "{backlog:?}");
}

async fn ndjson_heartbeats_when_quiet_and_ends_cleanly_after_max_stream_seconds(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("nd-hb");
    let started = Instant::now();
    let mut r = open(&api, &format!("channel={ch}")).await;
    let (_, open_cursor) = until_open(&mut r).await;
    let mut heartbeats = 0;
    while let Some(v) = next(&mut r).await {
        assert_eq!(v["type"], "heartbeat", "quiet stream sent {v}");
        assert_eq!(
            v["cursor"],
            open_cursor.as_str(),
            "nothing happened: same cursor"
        );
        heartbeats += 1;
    }
    let took = started.elapsed();
    assert!(
        heartbeats >= 1,
        "no heartbeat in {took:?} with heartbeat_seconds=1"
    );
    assert!(
        (Duration::from_millis(2500)..Duration::from_secs(8)).contains(&took),
        "max_stream_seconds=3 stream lasted {took:?}"
    );
}

async fn ndjson_backlog_after_stale_cursor_starts_with_reset(b: Backend) {
    let api = Api::with(b, &[("retention_count", "5")]);
    let ch = api.channel("nd-reset");
    let first = api.publish(&ch, json!(1)).await;
    let (backlog, cursor) =
        until_open(&mut open(&api, &format!("channel={ch}&from=start")).await).await;
    assert_eq!(seqs(&backlog, &ch), [1]);
    for i in 2..=12 {
        api.publish(&ch, json!(i)).await;
    }
    let (backlog, _) =
        until_open(&mut open(&api, &format!("channel={ch}&cursor={cursor}")).await).await;
    let mut reset = backlog[0].clone();
    reset.as_object_mut().expect("obj").remove("cursor");
    assert_eq!(
        reset,
        json!({ "type": "reset", "channel": ch, "epoch": first["epoch"], "seq": 8 }),
        "{backlog:?}"
    );
    assert_eq!(seqs(&backlog, &ch), [8, 9, 10, 11, 12]);
}
