//! `POST /v1/publish`: single and batch publishing, idempotency ids, concurrent publishers.

use super::*;

both!(
    publish_returns_seq_epoch_time_and_assigns_consecutive_seqs,
    publishing_the_same_id_again_is_a_duplicate_with_the_same_seq,
    batch_publish_returns_results_in_order_across_channels,
    concurrent_publishers_get_unique_gapless_seqs,
);

async fn publish_returns_seq_epoch_time_and_assigns_consecutive_seqs(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("pub");
    let a = api
        .publish_body(&json!({ "channel": ch, "data": { "n": 1, "s": "é\"\n" } }))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(
        a.header("content-type")
            .is_some_and(|t| t.starts_with("application/json"))
    );
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
    let r = a.json();
    let mut keys: Vec<&str> = r
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["channel", "duplicate", "epoch", "seq", "time"],
        "{r}"
    );
    assert_eq!(r["channel"], ch.as_str());
    assert_eq!(r["seq"], 1);
    assert_eq!(r["duplicate"], false);
    let epoch = r["epoch"].as_str().expect("epoch").to_owned();
    assert!(!epoch.is_empty());
    let r2 = api.publish(&ch, json!(null)).await;
    assert_eq!(
        (r2["seq"].clone(), r2["epoch"].clone()),
        (json!(2), json!(epoch))
    );
    // Any JSON value round-trips byte-equivalent through a subscriber.
    let v = api
        .poll(&format!("channel={ch}&from=start&timeout=0"))
        .await;
    let msgs = v["messages"].as_array().expect("m");
    assert_eq!(msgs[0]["data"], json!({ "n": 1, "s": "é\"\n" }));
    assert_eq!(msgs[0]["time"], r["time"]);
    assert_eq!(msgs[1]["data"], Value::Null);
}

async fn publishing_the_same_id_again_is_a_duplicate_with_the_same_seq(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("idem");
    api.publish(&ch, json!("before")).await;
    let body = json!({ "channel": ch, "data": "once", "id": "order-17" });
    let first = api.publish_body(&body).await.json();
    assert_eq!(
        (first["seq"].clone(), first["duplicate"].clone()),
        (json!(2), json!(false))
    );
    let again = api.publish_body(&body).await.json();
    assert_eq!(again["seq"], 2, "retry keeps the original seq: {again}");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["time"], first["time"]);
    assert_eq!(again["epoch"], first["epoch"]);
    // Inside a batch too, and a different id is a new message.
    let a = api
        .publish_body(&json!([
            { "channel": ch, "data": "once", "id": "order-17" },
            { "channel": ch, "data": "twice", "id": "order-18" },
            { "channel": ch, "data": "twice", "id": "order-18" },
        ]))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let results = a.json()["results"].clone();
    let got: Vec<(Value, Value)> = results
        .as_array()
        .expect("results")
        .iter()
        .map(|r| (r["seq"].clone(), r["duplicate"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (json!(2), json!(true)),
            (json!(3), json!(false)),
            (json!(3), json!(true))
        ]
    );
    let v = api
        .poll(&format!("channel={ch}&from=start&timeout=0"))
        .await;
    let data: Vec<Value> = v["messages"]
        .as_array()
        .expect("m")
        .iter()
        .map(|m| m["data"].clone())
        .collect();
    assert_eq!(
        data,
        [json!("before"), json!("once"), json!("twice")],
        "stored once each"
    );
}

async fn batch_publish_returns_results_in_order_across_channels(b: Backend) {
    let api = Api::start(b);
    let (x, y) = (api.channel("batch-x"), api.channel("batch-y"));
    api.publish(&y, json!(0)).await;
    let a = api
        .publish_body(&json!([
            { "channel": x, "data": 1 },
            { "channel": y, "data": 2 },
            { "channel": x, "data": 3 },
            { "channel": y, "data": 4 },
            { "channel": x, "data": 5 },
        ]))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = a.json();
    assert_eq!(v.as_object().expect("obj").len(), 1, "only results: {v}");
    let results = v["results"].as_array().expect("results");
    let got: Vec<(String, u64)> = results
        .iter()
        .map(|r| {
            (
                r["channel"].as_str().expect("ch").to_owned(),
                r["seq"].as_u64().expect("seq"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (x.clone(), 1),
            (y.clone(), 2),
            (x.clone(), 2),
            (y.clone(), 3),
            (x.clone(), 3)
        ]
    );
    let v = api
        .poll(&format!("channel={x},{y}&from=start&timeout=0"))
        .await;
    let msgs = v["messages"].as_array().expect("m");
    let xs: Vec<Value> = msgs
        .iter()
        .filter(|m| m["channel"] == x.as_str())
        .map(|m| m["data"].clone())
        .collect();
    assert_eq!(xs, [json!(1), json!(3), json!(5)]);
    assert_eq!(seqs(msgs, &y), [1, 2, 3]);
    // A one-element batch still answers with `results`.
    let one = api.publish_batch(&x, [json!("solo")]).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["seq"], 4);
}

async fn concurrent_publishers_get_unique_gapless_seqs(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("conc");
    let mut tasks = Vec::new();
    for p in 0..8 {
        let client = api.client.clone();
        let url = api.url("/v1/publish");
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..10 {
                let r: Value = client
                    .post(&url)
                    .bearer_auth(KEY)
                    .json(&json!({ "channel": ch, "data": [p, i] }))
                    .send()
                    .await
                    .expect("publish")
                    .json()
                    .await
                    .expect("json");
                seqs.push(r["seq"].as_u64().unwrap_or_else(|| panic!("no seq: {r}")));
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = t.await.expect("task");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one publisher's seqs increase: {seqs:?}"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=80).collect::<Vec<u64>>());
    let info = api.get(&format!("/v1/channels/{ch}")).await.json();
    assert_eq!(info["last_seq"], 80);
    assert_eq!(info["retained_count"], 80);
}
