//! `spin:redis` against the real Redis, and its `allowed_outbound_hosts` check.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn outbound_redis_runs_commands_on_real_redis() {
    let redis = redis_url();
    let runner = start_probe();
    let key = unique("outbound");
    let execute = |body: Value| {
        let url = runner.url(&format!("/probe/redis/execute?addr={redis}"));
        async move {
            let (status, text) = post(&url, body.to_string()).await;
            assert_eq!(status, StatusCode::OK, "{text}");
            serde_json::from_str::<Value>(&text).expect("results JSON")
        }
    };

    assert_eq!(
        execute(json!(["SET", key, "v"])).await,
        json!([{"status": "OK"}])
    );
    assert_eq!(execute(json!(["GET", key])).await, json!([{"binary": "v"}]));
    let mut conn = redis_conn().await;
    let direct: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert_eq!(direct, "v");

    let counter = format!("{key}:n");
    assert_eq!(
        execute(json!(["INCR", counter])).await,
        json!([{"int64": 1}])
    );
    let (status, n) = post(
        &runner.url(&format!("/probe/redis/incr?key={counter}&addr={redis}")),
        "",
    )
    .await;
    assert_eq!((status, n.as_str()), (StatusCode::OK, "2"));
    assert_eq!(
        execute(json!(["INCRBY", counter, 40])).await,
        json!([{"int64": 42}])
    );
    assert_eq!(
        execute(json!(["DEL", key, counter])).await,
        json!([{"int64": 2}])
    );
    assert_eq!(execute(json!(["GET", key])).await, json!([null]));
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_redis_publish_reaches_subscribers() {
    let redis = redis_url();
    let runner = start_probe();
    let channel = unique("probe-channel");
    let mut pubsub = redis::Client::open(redis)
        .expect("redis url")
        .get_async_pubsub()
        .await
        .expect("pubsub connection");
    pubsub.subscribe(&channel).await.expect("subscribe");
    let url = runner.url(&format!(
        "/probe/redis/publish?channel={channel}&addr={redis}"
    ));
    assert_eq!(
        post(&url, "ping from guest").await,
        (StatusCode::OK, "ok".into())
    );
    let mut messages = pubsub.on_message();
    let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
        .await
        .expect("no message within 5 s")
        .expect("pubsub stream ended");
    assert_eq!(
        message.get_payload::<String>().expect("payload"),
        "ping from guest"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_redis_to_address_not_allowed_is_refused() {
    let runner = start_probe();
    let url = runner.url("/probe/redis/execute?addr=redis://127.0.0.1:1");
    let (status, body) = post(&url, r#"["PING"]"#).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_GATEWAY, "invalid_address")
    );
}
