//! `GET /v1/poll`: long-poll JSON and JSONP, cursors, held-request timeouts, resets.

use super::*;

both!(
    poll_delivers_concurrent_publishes_in_order_and_resumes_after_disconnect,
    poll_without_cursor_starts_now_and_from_start_replays_retained,
    held_poll_wakes_when_a_message_is_published,
    held_poll_ends_cleanly_at_its_timeout,
    jsonp_wraps_the_answer_and_errors_in_the_callback,
    stale_cursor_beyond_retention_gets_reset_then_messages,
    cursor_taken_before_channel_existed_gets_reset_when_retention_dropped_messages,
);

/// Polls with `cursor` until `want` returns true for what was collected (or 30 s pass).
async fn collect(
    api: &Api,
    channels: &str,
    mut cursor: String,
    want: impl Fn(&[Value]) -> bool,
) -> (Vec<Value>, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events = Vec::new();
    while !want(&events) {
        assert!(
            Instant::now() < deadline,
            "gave up collecting after 30 s; got {} events: {events:?}",
            events.len()
        );
        let v = api
            .poll(&format!("channel={channels}&cursor={cursor}&timeout=0.3"))
            .await;
        events.extend(v["messages"].as_array().expect("messages").iter().cloned());
        cursor = v["cursor"].as_str().expect("cursor").to_owned();
    }
    (events, cursor)
}

async fn poll_delivers_concurrent_publishes_in_order_and_resumes_after_disconnect(b: Backend) {
    let api = Api::start(b);
    let (a, c) = (api.channel("poll-a"), api.channel("poll-c"));
    let both = format!("{a},{c}");
    let cursor = api.cursor_now(&both).await;

    let counts = |ev: &[Value]| (seqs(ev, &a).len(), seqs(ev, &c).len());
    let subscriber = collect(&api, &both, cursor, |ev| counts(ev) == (50, 10));
    let publishers = async {
        tokio::join!(
            publish_concurrently(&api, &a, 50, 4),
            publish_concurrently(&api, &c, 10, 1)
        )
    };
    let ((events, cursor), _) = tokio::join!(subscriber, publishers);
    assert_complete_in_order(&events, &a, 50);
    assert_complete_in_order(&events, &c, 10);
    assert!(
        events.iter().all(|e| e.get("type").is_none()),
        "no reset expected: {events:?}"
    );

    // A held poll whose client goes away mid-wait, then messages published meanwhile.
    let held = api
        .client
        .get(api.url(&format!(
            "/v1/poll?channel={both}&cursor={cursor}&timeout=10"
        )))
        .send();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), held)
            .await
            .is_err(),
        "a poll with nothing new must be held"
    );
    let mut more = Vec::new();
    for i in 50..60 {
        more.push(api.publish(&a, json!({ "i": i, "p": 0 })).await["seq"].clone());
    }
    let (events, _) = collect(&api, &both, cursor, |ev| !ev.is_empty()).await;
    assert_eq!(
        seqs(&events, &a),
        (51..=60).collect::<Vec<u64>>(),
        "resumed: {events:?}"
    );
    assert!(
        seqs(&events, &c).is_empty(),
        "nothing new on {c}: {events:?}"
    );
    assert_eq!(more, (51..=60).map(Value::from).collect::<Vec<_>>());
}

async fn poll_without_cursor_starts_now_and_from_start_replays_retained(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("poll-start");
    for i in 0..3 {
        api.publish(&ch, json!(i)).await;
    }
    let now = api.poll(&format!("channel={ch}&timeout=0")).await;
    assert_eq!(now["messages"], json!([]), "without cursor: live only");
    let start = api
        .poll(&format!("channel={ch}&from=start&timeout=0"))
        .await;
    let msgs = start["messages"].as_array().expect("messages");
    assert_eq!(seqs(msgs, &ch), [1, 2, 3]);
    assert_eq!(
        msgs.iter().map(|m| m["data"].clone()).collect::<Vec<_>>(),
        [json!(0), json!(1), json!(2)]
    );
    for m in msgs {
        assert_envelope(m);
    }
    // The "now" cursor sees the next message, and only it.
    api.publish(&ch, json!("next")).await;
    let cursor = now["cursor"].as_str().expect("cursor");
    let next = api
        .poll(&format!("channel={ch}&cursor={cursor}&timeout=1"))
        .await;
    assert_eq!(
        seqs(next["messages"].as_array().expect("messages"), &ch),
        [4]
    );
    // `from=start` does not override a cursor's position.
    let with_cursor = api
        .poll(&format!(
            "channel={ch}&cursor={}&from=start&timeout=0",
            next["cursor"].as_str().expect("c")
        ))
        .await;
    assert_eq!(with_cursor["messages"], json!([]));
}

async fn held_poll_wakes_when_a_message_is_published(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("poll-wake");
    let cursor = api.cursor_now(&ch).await;
    let started = Instant::now();
    let query = format!("channel={ch}&cursor={cursor}&timeout=20");
    let (answer, ()) = tokio::join!(api.poll(&query), async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        api.publish(&ch, json!({ "hello": "world" })).await;
    });
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350),
        "answered before the publish: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "woke only after {took:?}");
    let msgs = answer["messages"].as_array().expect("messages");
    assert_eq!(seqs(msgs, &ch), [1]);
    assert_eq!(msgs[0]["data"], json!({ "hello": "world" }));
}

async fn held_poll_ends_cleanly_at_its_timeout(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("poll-timeout");
    api.publish(&ch, json!(1)).await;
    let cursor = api
        .poll(&format!("channel={ch}&from=start&timeout=0"))
        .await["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let started = Instant::now();
    let a = api
        .get(&format!(
            "/v1/poll?channel={ch}&cursor={cursor}&timeout=0.3"
        ))
        .await;
    let took = started.elapsed();
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(
        a.header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );
    let v = a.json();
    assert_eq!(v["messages"], json!([]));
    assert!(
        took >= Duration::from_millis(280),
        "returned after {took:?}, before timeout=0.3"
    );
    assert!(took < Duration::from_secs(3), "timeout=0.3 took {took:?}");
    // The returned cursor still resumes at the same place.
    api.publish(&ch, json!(2)).await;
    let next = api
        .poll(&format!(
            "channel={ch}&cursor={}&timeout=1",
            v["cursor"].as_str().expect("c")
        ))
        .await;
    assert_eq!(seqs(next["messages"].as_array().expect("m"), &ch), [2]);
    // Without `timeout`, poll_timeout_default (1 s in these tests) applies.
    let started = Instant::now();
    let v = api
        .poll(&format!(
            "channel={ch}&cursor={}",
            next["cursor"].as_str().expect("c")
        ))
        .await;
    let took = started.elapsed();
    assert_eq!(v["messages"], json!([]));
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&took),
        "default timeout 1 s took {took:?}"
    );
}

async fn jsonp_wraps_the_answer_and_errors_in_the_callback(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("jsonp");
    api.publish(&ch, json!({ "x": "</script>" })).await;
    let a = api
        .get(&format!(
            "/v1/poll?channel={ch}&from=start&timeout=0&callback=my.cb_1"
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.header("content-type")
            .is_some_and(|t| t.starts_with("application/javascript")),
        "{:?}",
        a.headers
    );
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
    let inner = a
        .text
        .strip_prefix("/**/my.cb_1(")
        .and_then(|t| t.strip_suffix(");"))
        .unwrap_or_else(|| panic!("not JSONP: {:?}", a.text));
    let v: Value = serde_json::from_str(inner).expect("JSONP payload is JSON");
    assert_eq!(seqs(v["messages"].as_array().expect("m"), &ch), [1]);
    assert!(v["cursor"].as_str().is_some());

    // Errors after a valid callback reach the callback with 200.
    let a = api.get("/v1/poll?callback=cb&timeout=0").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let inner = a
        .text
        .strip_prefix("/**/cb(")
        .and_then(|t| t.strip_suffix(");"))
        .unwrap_or_else(|| panic!("not JSONP: {:?}", a.text));
    let v: Value = serde_json::from_str(inner).expect("JSON");
    assert_eq!(v["error"]["code"], "missing_channel");
    // An unsafe callback is never echoed.
    let a = api
        .get(&format!(
            "/v1/poll?channel={ch}&timeout=0&callback=alert(1)//"
        ))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.code(), "invalid_callback");
    assert!(!a.text.contains("alert(1)"), "callback echoed: {}", a.text);
}

async fn stale_cursor_beyond_retention_gets_reset_then_messages(b: Backend) {
    let api = Api::with(b, &[("retention_count", "5")]);
    let ch = api.channel("reset-retention");
    let first = api.publish(&ch, json!(1)).await;
    let cursor = api
        .poll(&format!("channel={ch}&from=start&timeout=0"))
        .await["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    for i in 2..=11 {
        api.publish(&ch, json!(i)).await;
    }
    let v = api
        .poll(&format!("channel={ch}&cursor={cursor}&timeout=0"))
        .await;
    let msgs = v["messages"].as_array().expect("messages");
    assert_eq!(
        msgs[0],
        json!({ "type": "reset", "channel": ch, "epoch": first["epoch"], "seq": 7 }),
        "first event: {msgs:?}"
    );
    assert_eq!(seqs(msgs, &ch), [7, 8, 9, 10, 11], "{msgs:?}");
    assert_eq!(msgs.len(), 6);
    // Resuming from there is quiet: no second reset.
    let v = api
        .poll(&format!(
            "channel={ch}&cursor={}&timeout=0",
            v["cursor"].as_str().expect("c")
        ))
        .await;
    assert_eq!(v["messages"], json!([]));
}

async fn cursor_taken_before_channel_existed_gets_reset_when_retention_dropped_messages(
    b: Backend,
) {
    let api = Api::with(b, &[("retention_count", "5")]);
    let ch = api.channel("reset-new");
    let cursor = api.cursor_now(&ch).await;
    for i in 1..=8 {
        api.publish(&ch, json!(i)).await;
    }
    let v = api
        .poll(&format!("channel={ch}&cursor={cursor}&timeout=0"))
        .await;
    let msgs = v["messages"].as_array().expect("messages");
    assert_eq!(
        msgs[0]["type"], "reset",
        "messages 1..3 were lost silently: {msgs:?}"
    );
    assert_eq!(msgs[0]["seq"], 4);
    assert_eq!(seqs(msgs, &ch), [4, 5, 6, 7, 8]);
}

#[tokio::test(flavor = "multi_thread")]
async fn epoch_change_gives_reset_redis() {
    let api = Api::start(Backend::Redis);
    let ch = api.channel("reset-epoch");
    let old = api.publish(&ch, json!("old")).await;
    api.publish(&ch, json!("old2")).await;
    let cursor = api
        .poll(&format!("channel={ch}&from=start&timeout=0"))
        .await["cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    // Flush the channel's keys: its log is recreated with a new epoch on the next publish.
    let mut redis = crate::support::redis_conn().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("comet:{{{ch}}}:*"))
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    assert!(!keys.is_empty(), "no Redis keys for {ch}");
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .expect("DEL");
    let new = api.publish(&ch, json!("new")).await;
    assert_eq!(new["seq"], 1);
    assert_ne!(
        new["epoch"], old["epoch"],
        "a recreated log has a new epoch"
    );
    let v = api
        .poll(&format!("channel={ch}&cursor={cursor}&timeout=0"))
        .await;
    let msgs = v["messages"].as_array().expect("messages");
    assert_eq!(
        msgs.first(),
        Some(&json!({ "type": "reset", "channel": ch, "epoch": new["epoch"], "seq": 1 })),
        "{msgs:?}"
    );
    assert_eq!(seqs(msgs, &ch), [1]);
    assert_eq!(msgs[1]["epoch"], new["epoch"]);
}
