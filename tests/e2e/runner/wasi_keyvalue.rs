//! `wasi:keyvalue` atomics and batch, on the embedded store and across runners on Redis.

use super::*;

/// Fires `count` concurrent `incr` requests at `runner` and returns how many succeeded.
async fn increments(runner: &Runner, key: &str, count: usize) -> usize {
    let client = client();
    let url = runner.url(&format!("/probe/wkv/incr/{key}?delta=1"));
    let requests = (0..count).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            let resp = client.post(&url).send().await.ok()?;
            (resp.status() == StatusCode::OK).then_some(())
        })
    });
    futures::future::join_all(requests)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Some(()))))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn atomic_increments_from_two_runners_are_exact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = redis_runtime_config(dir.path());
    let a = Runner::start(&probe_manifest(), probe_opts().runtime_config(&config));
    let b = Runner::start(&probe_manifest(), probe_opts().runtime_config(&config));
    let key = unique("counter");

    let (ok_a, ok_b) = tokio::join!(increments(&a, &key, 200), increments(&b, &key, 200));
    assert_eq!((ok_a, ok_b), (200, 200), "failed increments");
    let (status, total) = post(&a.url(&format!("/probe/wkv/incr/{key}?delta=0")), "").await;
    assert_eq!((status, total.as_str()), (StatusCode::OK, "400"));
}

#[tokio::test(flavor = "multi_thread")]
async fn atomic_increments_on_embedded_store_are_exact() {
    let runner = start_probe();
    assert_eq!(
        increments(&runner, "counter", 300).await,
        300,
        "failed increments"
    );
    let (status, total) = post(&runner.url("/probe/wkv/incr/counter?delta=0"), "").await;
    assert_eq!((status, total.as_str()), (StatusCode::OK, "300"));
    let (status, total) = post(&runner.url("/probe/wkv/incr/counter?delta=-5"), "").await;
    assert_eq!((status, total.as_str()), (StatusCode::OK, "295"));
}

#[tokio::test(flavor = "multi_thread")]
async fn compare_and_swap_detects_conflicts() {
    let runner = start_probe();
    let cas = |query: &str| runner.url(&format!("/probe/wkv/cas/slot{query}"));

    // Absent key, expected absent: swaps.
    assert_eq!(
        post(&cas(""), "v1").await,
        (StatusCode::OK, "swapped".into())
    );
    // Expected absent but present: conflict seen through the CAS handle.
    let resp = client().post(cas("")).body("v2").send().await.expect("cas");
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(resp.headers()["x-probe-conflict"], "current");
    // Another write between taking the handle and swapping: the host must refuse the swap.
    let resp = client()
        .post(cas("?expect=v1&interfere=sneaky"))
        .body("v3")
        .send()
        .await
        .expect("cas");
    assert_eq!(
        resp.status(),
        StatusCode::CONFLICT,
        "host swapped over a concurrent write"
    );
    assert_eq!(resp.headers()["x-probe-conflict"], "swap");
    assert_eq!(
        get(&runner.url("/probe/wkv/slot")).await,
        (StatusCode::OK, "sneaky".into())
    );
    // Right expectation: swaps.
    assert_eq!(
        post(&cas("?expect=sneaky"), "v4").await,
        (StatusCode::OK, "swapped".into())
    );
    assert_eq!(
        get(&runner.url("/probe/wkv/slot")).await,
        (StatusCode::OK, "v4".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_compare_and_swap_loses_no_update() {
    const TASKS: usize = 20;
    const EACH: usize = 5;
    let runner = start_probe();
    let (value_url, cas_url) = (
        runner.url("/probe/wkv/casctr"),
        runner.url("/probe/wkv/cas/casctr"),
    );
    let tasks = (0..TASKS).map(|_| {
        let (value_url, cas_url, client) = (value_url.clone(), cas_url.clone(), client());
        tokio::spawn(async move {
            let mut done = 0;
            for _attempt in 0..2000 {
                if done == EACH {
                    break;
                }
                let resp = client.get(&value_url).send().await.expect("get");
                let current = match resp.status() {
                    StatusCode::NOT_FOUND => None,
                    StatusCode::OK => Some(resp.text().await.expect("value")),
                    other => panic!("GET value: {other}"),
                };
                let next = current
                    .as_deref()
                    .map_or(0, |v| v.parse::<u64>().expect("number"))
                    + 1;
                let url = match &current {
                    Some(v) => format!("{cas_url}?expect={v}"),
                    None => cas_url.clone(),
                };
                let resp = client
                    .post(&url)
                    .body(next.to_string())
                    .send()
                    .await
                    .expect("cas");
                match resp.status() {
                    StatusCode::OK => done += 1,
                    StatusCode::CONFLICT => {}
                    other => panic!("cas: {other} {}", resp.text().await.unwrap_or_default()),
                }
            }
            done
        })
    });
    let done: usize = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .sum();
    assert_eq!(done, TASKS * EACH, "some tasks ran out of attempts");
    assert_eq!(
        get(&value_url).await,
        (StatusCode::OK, (TASKS * EACH).to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_sets_gets_and_deletes_many() {
    let runner = start_probe();
    let set = post(
        &runner.url("/probe/wkv/set-many"),
        json!({"a": "1", "b": "2"}).to_string(),
    )
    .await;
    assert_eq!(set, (StatusCode::OK, "ok".into()));
    let (status, body) = post(
        &runner.url("/probe/wkv/get-many"),
        json!(["a", "b", "c"]).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        json!({"a": "1", "b": "2", "c": null})
    );
    let del = post(
        &runner.url("/probe/wkv/delete-many"),
        json!(["a"]).to_string(),
    )
    .await;
    assert_eq!(del, (StatusCode::OK, "ok".into()));
    let (_, body) = post(
        &runner.url("/probe/wkv/get-many"),
        json!(["a", "b"]).to_string(),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        json!({"a": null, "b": "2"})
    );
    // The batch wrote through to the same store as spin:key-value's default.
    assert_eq!(
        get(&runner.url("/probe/kv/b")).await,
        (StatusCode::OK, "2".into())
    );
}
