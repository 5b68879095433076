//! `spin:key-value`: operations, store separation and grants, durability, Redis backing.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn key_value_sets_gets_and_deletes() {
    let runner = start_probe();
    let url = runner.url("/probe/kv/greeting");
    assert_eq!(get(&url).await.0, StatusCode::NOT_FOUND);
    assert_eq!(put(&url, "bonjour").await, (StatusCode::OK, "ok".into()));
    assert_eq!(get(&url).await, (StatusCode::OK, "bonjour".into()));
    assert_eq!(put(&url, "hola").await.0, StatusCode::OK);
    assert_eq!(get(&url).await, (StatusCode::OK, "hola".into()));
    assert_eq!(
        send(reqwest::Method::DELETE, &url, "").await,
        (StatusCode::OK, "ok".into())
    );
    assert_eq!(get(&url).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_stores_are_separate() {
    let runner = start_probe();
    put(&runner.url("/probe/kv/k?store=default"), "in-default").await;
    put(&runner.url("/probe/kv/k?store=other"), "in-other").await;
    assert_eq!(
        get(&runner.url("/probe/kv/k")).await,
        (StatusCode::OK, "in-default".into())
    );
    assert_eq!(
        get(&runner.url("/probe/kv/k?store=other")).await,
        (StatusCode::OK, "in-other".into())
    );
    put(&runner.url("/probe/kv/only-other?store=other"), "x").await;
    assert_eq!(
        get(&runner.url("/probe/kv/only-other")).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, keys) = get(&runner.url("/probe/kv-keys?store=other")).await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    assert_eq!(
        serde_json::from_str::<Value>(&keys).expect("keys JSON"),
        json!(["k", "only-other"])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_store_not_granted_is_access_denied() {
    let runner = start_probe();
    assert_eq!(
        get(&runner.url("/probe/kv-open?store=other")).await,
        (StatusCode::OK, "ok".into())
    );
    let (status, body) = get(&runner.url("/probe/kv-open?store=forbidden")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::FORBIDDEN, "access_denied")
    );
    // Data operations on an ungranted label are refused the same way.
    let (status, body) = get(&runner.url("/probe/kv/x?store=secret")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::FORBIDDEN, "access_denied")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_survives_runner_restart() {
    let state = tempfile::tempdir().expect("state dir");
    let runner = Runner::start(&probe_manifest(), probe_opts().state_dir(state.path()));
    assert_eq!(
        put(&runner.url("/probe/kv/durable"), "still here").await.0,
        StatusCode::OK
    );
    assert_eq!(
        put(&runner.url("/probe/kv/durable?store=other"), "me too")
            .await
            .0,
        StatusCode::OK
    );
    let status = runner.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "graceful stop exited with {status:?}"
    );

    let runner = Runner::start(&probe_manifest(), probe_opts().state_dir(state.path()));
    assert_eq!(
        get(&runner.url("/probe/kv/durable")).await,
        (StatusCode::OK, "still here".into())
    );
    assert_eq!(
        get(&runner.url("/probe/kv/durable?store=other")).await,
        (StatusCode::OK, "me too".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn key_value_write_survives_kill9() {
    let state = tempfile::tempdir().expect("state dir");
    let runner = Runner::start(&probe_manifest(), probe_opts().state_dir(state.path()));
    assert_eq!(
        put(&runner.url("/probe/kv/acked"), "durable").await.0,
        StatusCode::OK
    );
    // No drain, no clean shutdown: an acknowledged write must already be on disk.
    runner.kill9();
    let runner = Runner::start(&probe_manifest(), probe_opts().state_dir(state.path()));
    assert_eq!(
        get(&runner.url("/probe/kv/acked")).await,
        (StatusCode::OK, "durable".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_key_value_is_shared_between_runners() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = redis_runtime_config(dir.path());
    let a = Runner::start(&probe_manifest(), probe_opts().runtime_config(&config));
    let b = Runner::start(&probe_manifest(), probe_opts().runtime_config(&config));
    let key = unique("kv-shared");

    assert_eq!(
        put(&a.url(&format!("/probe/kv/{key}")), "from-a").await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&b.url(&format!("/probe/kv/{key}"))).await,
        (StatusCode::OK, "from-a".into())
    );
    assert_eq!(
        get(&b.url(&format!("/probe/kv/{key}?store=other"))).await.0,
        StatusCode::NOT_FOUND
    );

    // It really is in Redis (layout not asserted beyond "some key names it").
    let mut conn = redis_conn().await;
    let found: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{key}*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    assert!(!found.is_empty(), "no Redis key mentions {key}");

    assert_eq!(
        send(
            reqwest::Method::DELETE,
            &b.url(&format!("/probe/kv/{key}")),
            ""
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        get(&a.url(&format!("/probe/kv/{key}"))).await.0,
        StatusCode::NOT_FOUND
    );
}
