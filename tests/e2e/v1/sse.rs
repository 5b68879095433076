//! `GET /v1/sse`: Server-Sent Events framing, ordering, `Last-Event-ID` resume, heartbeats,
//! clean end after `max_stream_seconds`, and no leaked waiters after disconnects.

use super::*;

both!(
    sse_sends_prelude_open_and_the_documented_headers,
    sse_delivers_concurrent_publishes_in_order_and_resumes_from_last_event_id,
    sse_heartbeats_when_quiet_and_ends_cleanly_after_max_stream_seconds,
    sse_stale_last_event_id_gets_reset_event,
    dropped_streams_and_polls_leave_no_waiters_behind,
);

/// One dispatched SSE event.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct SseEvent {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("data not JSON ({e}): {self:?}"))
    }
}

/// What an SSE reader saw next.
#[derive(Debug)]
pub(super) enum Sse {
    Event(SseEvent),
    Comment(String),
    Retry(String),
    End,
}

/// Parses an SSE body incrementally (WHATWG rules, the subset Comet uses).
pub(super) struct SseReader {
    lines: Lines,
    pending: SseEvent,
    has_fields: bool,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        Self {
            lines: Lines::new(resp),
            pending: SseEvent::default(),
            has_fields: false,
        }
    }

    /// The next event, comment or retry hint; `End` when the body ends.
    pub async fn next(&mut self, within: Duration) -> Sse {
        loop {
            let Some(line) = self.lines.next_line(within).await else {
                assert!(
                    !self.has_fields,
                    "body ended inside an event: {:?}",
                    self.pending
                );
                return Sse::End;
            };
            if line.is_empty() {
                if self.has_fields {
                    self.has_fields = false;
                    return Sse::Event(std::mem::take(&mut self.pending));
                }
                continue;
            }
            if let Some(comment) = line.strip_prefix(':') {
                return Sse::Comment(comment.to_owned());
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "retry" => return Sse::Retry(value),
                "event" => self.pending.event = Some(value),
                "id" => self.pending.id = Some(value),
                "data" => {
                    if !self.pending.data.is_empty() {
                        self.pending.data.push('\n');
                    }
                    self.pending.data.push_str(&value);
                }
                other => panic!("unexpected SSE field {other:?} in {line:?}"),
            }
            self.has_fields = true;
        }
    }

    /// The next event, skipping comments and retry hints; `None` at the end.
    pub async fn next_event(&mut self, within: Duration) -> Option<SseEvent> {
        loop {
            match self.next(within).await {
                Sse::Event(e) => return Some(e),
                Sse::End => return None,
                Sse::Comment(_) | Sse::Retry(_) => {}
            }
        }
    }
}

/// Opens `/v1/sse?query`, with `Last-Event-ID` if given; asserts 200.
pub(super) async fn open(api: &Api, query: &str, last_event_id: Option<&str>) -> SseReader {
    let mut req = api.client.get(api.url(&format!("/v1/sse?{query}")));
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id);
    }
    let resp = req.send().await.expect("GET /v1/sse");
    assert_eq!(resp.status(), StatusCode::OK, "sse ?{query}");
    SseReader::new(resp)
}

/// Reads the prelude (padding comment, retry) and the `open` event; returns its id.
async fn read_until_open(r: &mut SseReader) -> (Vec<SseEvent>, String) {
    let mut backlog = Vec::new();
    loop {
        let e = r
            .next_event(Duration::from_secs(5))
            .await
            .expect("stream ended before open");
        if e.event.as_deref() == Some("ready") {
            let id = e.id.clone().expect("open carries an id");
            assert_eq!(
                e.json()["cursor"],
                id.as_str(),
                "open data names the cursor"
            );
            return (backlog, id);
        }
        backlog.push(e);
    }
}

async fn sse_sends_prelude_open_and_the_documented_headers(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("sse-head");
    let resp = api
        .client
        .get(api.url(&format!("/v1/sse?channel={ch}")))
        .send()
        .await
        .expect("GET /v1/sse");
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert!(
        get("content-type").is_some_and(|t| t.starts_with("text/event-stream")),
        "{h:?}"
    );
    assert_eq!(
        get("cache-control").as_deref(),
        Some("no-cache, no-transform")
    );
    assert_eq!(get("x-accel-buffering").as_deref(), Some("no"));
    assert_eq!(get("x-content-type-options").as_deref(), Some("nosniff"));
    let mut r = SseReader::new(resp);
    let within = Duration::from_secs(5);
    match r.next(within).await {
        Sse::Comment(c) => {
            assert_eq!(c.len(), 2048, "padding comment length");
            assert!(c.bytes().all(|b| b == b' '), "padding is spaces");
        }
        other => panic!("first item must be the padding comment, got {other:?}"),
    }
    match r.next(within).await {
        Sse::Retry(v) => assert_eq!(v, "2000"),
        other => panic!("second item must be retry: 2000, got {other:?}"),
    }
    let (backlog, id) = read_until_open(&mut r).await;
    assert!(
        backlog.is_empty(),
        "a new subscriber has no backlog: {backlog:?}"
    );
    // The open id is a cursor poll accepts.
    api.publish(&ch, json!("after-open")).await;
    let v = api
        .poll(&format!("channel={ch}&cursor={id}&timeout=1"))
        .await;
    assert_eq!(seqs(v["messages"].as_array().expect("m"), &ch), [1]);
    // And the live stream delivers the same message with an id that resumes after it.
    let e = r.next_event(within).await.expect("message event");
    assert_eq!(e.event, None, "plain messages have no event name");
    assert_eq!(e.json()["data"], "after-open");
    assert_envelope(&e.json());
    let v = api
        .poll(&format!(
            "channel={ch}&cursor={}&timeout=0",
            e.id.expect("id")
        ))
        .await;
    assert_eq!(v["messages"], json!([]));
}

async fn sse_delivers_concurrent_publishes_in_order_and_resumes_from_last_event_id(b: Backend) {
    let api = Api::start(b);
    let (a, c) = (api.channel("sse-a"), api.channel("sse-c"));
    let query = format!("channel={a}&channel={c}");
    let mut first = open(&api, &query, None).await;
    let (_, mut last_id) = read_until_open(&mut first).await;
    let mut reader = Some(first);

    let subscriber = async {
        let mut events: Vec<Value> = Vec::new();
        let mut reconnects = 0;
        let mut disconnected_once = false;
        let deadline = Instant::now() + Duration::from_secs(40);
        while seqs(&events, &a).len() < 60 || seqs(&events, &c).len() < 10 {
            assert!(Instant::now() < deadline, "gave up; got {events:?}");
            let Some(r) = reader.as_mut() else {
                // Disconnected: stay away a moment while publishers go on, then resume.
                tokio::time::sleep(Duration::from_millis(150)).await;
                reader = Some(open(&api, &query, Some(&last_id)).await);
                reconnects += 1;
                continue;
            };
            match r.next_event(Duration::from_secs(5)).await {
                Some(e) => {
                    if e.event.as_deref() == Some("ready") {
                        continue;
                    }
                    assert_eq!(e.event, None, "unexpected event {e:?}");
                    events.push(e.json());
                    last_id = e.id.expect("message events carry an id");
                    // Drop the connection mid-stream once, with the publishers still going.
                    if !disconnected_once && seqs(&events, &a).len() == 20 {
                        disconnected_once = true;
                        reader = None;
                    }
                }
                // max_stream_seconds passed: resume like EventSource does.
                None => reader = None,
            }
        }
        (events, reconnects)
    };
    let publishers = async {
        tokio::join!(
            publish_concurrently(&api, &a, 50, 4),
            publish_concurrently(&api, &c, 10, 1)
        );
        // While the subscriber may be between connections: 10 more.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for i in 50..60 {
            api.publish(&a, json!({ "i": i, "p": 9 })).await;
        }
    };
    let ((events, reconnects), ()) = tokio::join!(subscriber, publishers);
    assert!(reconnects >= 1);
    assert_complete_in_order(&events, &a, 60);
    assert_complete_in_order(&events, &c, 10);

    // Disconnect, publish while away, resume with `lastEventId` in the query this time.
    drop(reader);
    for i in 60..65 {
        api.publish(&a, json!({ "i": i, "p": 0 })).await;
    }
    let mut r = open(&api, &format!("{query}&lastEventId={last_id}"), None).await;
    let (backlog, _) = read_until_open(&mut r).await;
    let backlog: Vec<Value> = backlog.iter().map(SseEvent::json).collect();
    assert_eq!(seqs(&backlog, &a), [61, 62, 63, 64, 65], "{backlog:?}");
    assert!(seqs(&backlog, &c).is_empty());
}

async fn sse_heartbeats_when_quiet_and_ends_cleanly_after_max_stream_seconds(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("sse-hb");
    let started = Instant::now();
    let mut r = open(&api, &format!("channel={ch}"), None).await;
    let (_, _) = read_until_open(&mut r).await;
    let mut heartbeats = 0;
    loop {
        match r.next(Duration::from_secs(3)).await {
            Sse::Comment(c) => {
                assert_eq!(c, "hb");
                heartbeats += 1;
            }
            Sse::End => break,
            other => panic!("quiet stream sent {other:?}"),
        }
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

async fn sse_stale_last_event_id_gets_reset_event(b: Backend) {
    let api = Api::with(b, &[("retention_count", "5")]);
    let ch = api.channel("sse-reset");
    let mut r = open(&api, &format!("channel={ch}"), None).await;
    let (_, _) = read_until_open(&mut r).await;
    api.publish(&ch, json!(1)).await;
    let first = r.next_event(Duration::from_secs(5)).await.expect("event");
    drop(r);
    for i in 2..=10 {
        api.publish(&ch, json!(i)).await;
    }
    let mut r = open(&api, &format!("channel={ch}"), first.id.as_deref()).await;
    let (backlog, _) = read_until_open(&mut r).await;
    assert_eq!(backlog[0].event.as_deref(), Some("reset"), "{backlog:?}");
    let reset = backlog[0].json();
    assert_eq!(reset["type"], "reset");
    assert_eq!(reset["seq"], 6);
    let msgs: Vec<Value> = backlog[1..].iter().map(SseEvent::json).collect();
    assert_eq!(seqs(&msgs, &ch), [6, 7, 8, 9, 10]);
    // The reset's id resumes at the first message after the gap.
    let v = api
        .poll(&format!(
            "channel={ch}&cursor={}&timeout=0",
            backlog[0].id.as_deref().expect("id")
        ))
        .await;
    assert_eq!(
        seqs(v["messages"].as_array().expect("m"), &ch),
        [6, 7, 8, 9, 10]
    );
}

async fn dropped_streams_and_polls_leave_no_waiters_behind(b: Backend) {
    // Long streams, so only a disconnect can end them; 20 held requests at most.
    let api = Api::with(
        b,
        &[("max_stream_seconds", "60"), ("max_held_requests", "20")],
    );
    let ch = api.channel("leak");
    for round in 0..2 {
        let mut streams = Vec::new();
        for _ in 0..10 {
            let mut r = open(&api, &format!("channel={ch}"), None).await;
            read_until_open(&mut r).await;
            streams.push(r);
        }
        let mut polls = Vec::new();
        for _ in 0..10 {
            let mut req = Box::pin(
                api.client
                    .get(api.url(&format!("/v1/poll?channel={ch}&timeout=3")))
                    .send(),
            );
            // Held, not answered.
            assert!(
                tokio::time::timeout(Duration::from_millis(100), &mut req)
                    .await
                    .is_err(),
                "round {round}: poll answered at once (503 from leaked slots?)"
            );
            polls.push(req);
        }
        let m = api.metrics().await;
        assert_eq!(
            metric(&m, "comet_requests_in_flight"),
            Some(10),
            "10 polls held:\n{m}"
        );
        drop(streams);
        drop(polls);
        // Streams end as soon as their client is gone. A long-poll's guest cannot see its
        // client leave: it ends at its own timeout (3 s here), which frees its held slot;
        // the runner cancels it only after `--cancel-grace`. Past that, everything drains.
        tokio::time::sleep(Duration::from_millis(3500)).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let m = api.metrics().await;
            let in_flight = metric(&m, "comet_requests_in_flight");
            let instances = metric(&m, "comet_instances").unwrap_or(0);
            if in_flight == Some(0) && instances <= 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: 10 s after the clients left: in_flight={in_flight:?} \
                 instances={instances}\n{m}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Still serving: a held poll wakes on a publish.
    let cursor = api.cursor_now(&ch).await;
    let query = format!("channel={ch}&cursor={cursor}&timeout=10");
    let (v, _) = tokio::join!(api.poll(&query), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        api.publish(&ch, json!("alive")).await
    });
    assert_eq!(seqs(v["messages"].as_array().expect("m"), &ch), [1]);
}
