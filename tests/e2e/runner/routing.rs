//! Routing: exact vs wildcard routes, unknown paths, the `spin-*` request headers.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn wildcard_route_serves_component() {
    let runner = start_probe();
    assert_eq!(
        get(&runner.url("/probe/hello")).await,
        (StatusCode::OK, "hello".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn spin_headers_describe_wildcard_match() {
    let runner = start_probe();
    let (status, body) = get(&runner.url("/probe/headers/extra/path?q=1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).expect("headers JSON");
    let h = &v["headers"];
    assert_eq!(
        h["spin-full-url"],
        json!(runner.url("/probe/headers/extra/path?q=1")),
        "{v:#}"
    );
    assert_eq!(h["spin-path-info"], json!("/headers/extra/path"), "{v:#}");
    assert_eq!(h["spin-matched-route"], json!("/probe/..."), "{v:#}");
    assert_eq!(h["spin-raw-component-route"], json!("/probe/..."), "{v:#}");
    assert_eq!(h["spin-component-route"], json!("/probe"), "{v:#}");
    assert_eq!(h["spin-base-path"], json!("/"), "{v:#}");
    let client_addr = h["spin-client-addr"].as_str().unwrap_or_default();
    assert!(
        client_addr.starts_with("127.0.0.1:"),
        "spin-client-addr {client_addr:?} in {v:#}"
    );
    let uri = v["uri"].as_str().unwrap_or_default();
    assert!(
        uri.ends_with("/probe/headers/extra/path?q=1"),
        "guest saw uri {uri:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exact_route_beats_overlapping_wildcard() {
    let runner = start_probe();
    let (status, body) = get(&runner.url("/probe/headers")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).expect("headers JSON");
    let h = &v["headers"];
    assert_eq!(h["spin-component-route"], json!("/probe/headers"), "{v:#}");
    assert_eq!(h["spin-matched-route"], json!("/probe/headers"), "{v:#}");
    assert_eq!(h["spin-path-info"], json!(""), "{v:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_route_is_404_with_json_error() {
    let runner = start_probe();
    let (status, body) = get(&runner.url("/no/such/route")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let v: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("404 body is not JSON ({e}): {body:?}"));
    assert!(v["error"]["code"].is_string(), "no error.code in {v}");
    assert!(v["error"]["message"].is_string(), "no error.message in {v}");
}
