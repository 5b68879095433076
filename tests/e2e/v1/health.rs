//! The admin listener's readiness (`/healthz`) and liveness (`/livez`): readiness follows the
//! store the functions use, so a balancer stops routing to an instance whose Redis is gone.

use super::*;

async fn admin_get(api: &Api, path: &str) -> Answer {
    let url = format!("{}{path}", api.runner.admin_url());
    api.send(api.client.get(url)).await
}

both!(ready_when_the_store_answers);

async fn ready_when_the_store_answers(backend: Backend) {
    let api = Api::start(backend);
    let a = admin_get(&api, "/healthz").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let report = a.json();
    assert_eq!(report["status"], "ready", "{report}");
    let checks = report["checks"].as_array().expect("checks");
    assert!(
        checks
            .iter()
            .any(|c| c["name"] == "key-value store default"),
        "the embedded store is checked: {report}"
    );
    let redis_checked = checks
        .iter()
        .any(|c| c["name"].as_str().is_some_and(|n| n.starts_with("redis ")));
    assert_eq!(redis_checked, backend == Backend::Redis, "{report}");
    assert!(checks.iter().all(|c| c["ok"] == true), "{report}");
    assert_eq!(admin_get(&api, "/livez").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn unready_but_alive_while_redis_is_unreachable() {
    let opts = opts(Backend::Redis, &[]).env(
        "SPIN_VARIABLE_REDIS_URL",
        "redis://default:hunter2@127.0.0.1:1",
    );
    let api = Api {
        runner: Runner::start(&manifest(), opts),
        client: client(),
    };
    let a = admin_get(&api, "/healthz").await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text);
    let report = a.json();
    assert_eq!(report["status"], "unavailable", "{report}");
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "only Redis is down: {report}");
    assert_eq!(
        failed[0]["name"], "redis redis://***@127.0.0.1:1",
        "{report}"
    );
    assert!(failed[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(!a.text.contains("hunter2"), "password leaked: {}", a.text);
    let live = admin_get(&api, "/livez").await;
    assert_eq!((live.status, live.text.as_str()), (StatusCode::OK, "ok\n"));
}
