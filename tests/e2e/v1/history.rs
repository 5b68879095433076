//! `GET /v1/history/{channel}` and `GET /v1/channels/{channel}`.

use super::*;

both!(
    history_returns_retained_messages_since_and_limited,
    history_cursor_resumes_a_subscription,
    channel_info_reports_epoch_last_seq_and_retention,
);

async fn history_returns_retained_messages_since_and_limited(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("hist");
    let mut epoch = Value::Null;
    for i in 1..=10 {
        epoch = api.publish(&ch, json!({ "i": i })).await["epoch"].clone();
    }
    let v = api.get(&format!("/v1/history/{ch}")).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    let v = v.json();
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("obj")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["channel", "cursor", "epoch", "messages"], "{v}");
    assert_eq!(v["channel"], ch.as_str());
    assert_eq!(v["epoch"], epoch);
    let msgs = v["messages"].as_array().expect("m");
    assert_eq!(seqs(msgs, &ch), (1..=10).collect::<Vec<u64>>());
    msgs.iter().for_each(assert_envelope);
    assert_eq!(msgs[3]["data"], json!({ "i": 4 }));

    let since = api.get(&format!("/v1/history/{ch}?since=4")).await.json();
    assert_eq!(
        seqs(since["messages"].as_array().expect("m"), &ch),
        [5, 6, 7, 8, 9, 10]
    );
    let limited = api
        .get(&format!("/v1/history/{ch}?since=4&limit=2"))
        .await
        .json();
    assert_eq!(
        seqs(limited["messages"].as_array().expect("m"), &ch),
        [5, 6]
    );
    let limited = api.get(&format!("/v1/history/{ch}?limit=3")).await.json();
    assert_eq!(
        seqs(limited["messages"].as_array().expect("m"), &ch),
        [1, 2, 3]
    );
    let none = api.get(&format!("/v1/history/{ch}?since=10")).await.json();
    assert_eq!(none["messages"], json!([]));
    let zero = api.get(&format!("/v1/history/{ch}?limit=0")).await.json();
    assert_eq!(zero["messages"], json!([]));
    // An unknown channel has an empty history, not an error.
    let empty = api
        .get(&format!("/v1/history/{}", api.channel("never")))
        .await;
    assert_eq!(empty.status, StatusCode::OK, "{}", empty.text);
    assert_eq!(empty.json()["messages"], json!([]));
    // Percent-encoded names are decoded.
    let odd = format!("{ch}/x:y@z");
    api.publish(&odd, json!("odd")).await;
    let enc = api
        .get(&format!(
            "/v1/history/{}",
            odd.replace('/', "%2F")
                .replace(':', "%3A")
                .replace('@', "%40")
        ))
        .await
        .json();
    assert_eq!(enc["channel"], odd.as_str());
    assert_eq!(enc["messages"][0]["data"], "odd");
}

async fn history_cursor_resumes_a_subscription(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("hist-cur");
    for i in 1..=5 {
        api.publish(&ch, json!(i)).await;
    }
    let page = api.get(&format!("/v1/history/{ch}?limit=3")).await.json();
    let cursor = page["cursor"].as_str().expect("cursor");
    // The cursor sits after the last message returned: a poll gets the rest.
    let v = api
        .poll(&format!("channel={ch}&cursor={cursor}&timeout=0"))
        .await;
    assert_eq!(seqs(v["messages"].as_array().expect("m"), &ch), [4, 5]);
    let full = api.get(&format!("/v1/history/{ch}")).await.json();
    let v = api
        .poll(&format!(
            "channel={ch}&cursor={}&timeout=0",
            full["cursor"].as_str().expect("c")
        ))
        .await;
    assert_eq!(v["messages"], json!([]));
}

async fn channel_info_reports_epoch_last_seq_and_retention(b: Backend) {
    let api = Api::with(b, &[("retention_count", "5")]);
    let ch = api.channel("info");
    let mut last = Value::Null;
    for i in 1..=8 {
        last = api.publish(&ch, json!(i)).await;
    }
    let a = api.get(&format!("/v1/channels/{ch}")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        a.json(),
        json!({
            "channel": ch,
            "epoch": last["epoch"],
            "last_seq": 8,
            "retained_count": 5,
            "first_seq": 4,
        })
    );
    // History honours the same retention.
    let h = api.get(&format!("/v1/history/{ch}")).await.json();
    assert_eq!(
        seqs(h["messages"].as_array().expect("m"), &ch),
        [4, 5, 6, 7, 8]
    );
    // A channel nobody published to.
    let fresh = api.channel("info-none");
    let v = api.get(&format!("/v1/channels/{fresh}")).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    let v = v.json();
    assert_eq!(v["last_seq"], 0);
    assert_eq!(v["retained_count"], 0);
    assert_eq!(v["first_seq"], 1);
}
