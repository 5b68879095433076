//! CORS preflights and headers, and `nosniff` on every answer.

use super::*;

both!(
    any_origin_gets_preflight_and_wildcard_allow_origin,
    allow_list_echoes_listed_origins_and_ignores_others,
);

/// Paths of every endpoint, one per component route.
fn paths(ch: &str) -> Vec<String> {
    vec![
        format!("/v1/poll?channel={ch}&timeout=0"),
        format!("/v1/publish"),
        format!("/v1/history/{ch}"),
        format!("/v1/channels/{ch}"),
        format!("/v1/sse?channel={ch}"),
        format!("/v1/stream?channel={ch}"),
    ]
}

async fn preflight(api: &Api, path: &str, origin: &str) -> Answer {
    api.send(
        api.client
            .request(reqwest::Method::OPTIONS, api.url(path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            ),
    )
    .await
}

async fn any_origin_gets_preflight_and_wildcard_allow_origin(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("cors");
    for path in paths(&ch) {
        let a = preflight(&api, &path, "https://app.example").await;
        assert_eq!(
            a.status,
            StatusCode::NO_CONTENT,
            "OPTIONS {path}: {}",
            a.text
        );
        assert_eq!(a.header("access-control-allow-origin"), Some("*"), "{path}");
        let methods = a
            .header("access-control-allow-methods")
            .unwrap_or_default()
            .to_owned();
        for m in ["GET", "POST"] {
            assert!(
                methods.contains(m),
                "OPTIONS {path}: allow-methods {methods:?}"
            );
        }
        let allowed = a
            .header("access-control-allow-headers")
            .unwrap_or_default()
            .to_lowercase();
        for h in ["authorization", "content-type", "last-event-id"] {
            assert!(
                allowed.contains(h),
                "OPTIONS {path}: allow-headers {allowed:?}"
            );
        }
        assert_eq!(
            a.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
    // Actual answers (success and error) carry the allow-origin header and nosniff.
    let published = api
        .send(
            api.client
                .post(api.url("/v1/publish"))
                .header("origin", "https://app.example")
                .bearer_auth(KEY)
                .json(&json!({ "channel": ch, "data": 1 })),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK);
    assert_eq!(published.header("access-control-allow-origin"), Some("*"));
    for path in [
        format!("/v1/poll?channel={ch}&timeout=0"),
        format!("/v1/history/{ch}"),
        format!("/v1/channels/{ch}"),
        "/v1/poll".to_owned(),
        "/v1/nope".to_owned(),
    ] {
        let a = api
            .send(
                api.client
                    .get(api.url(&path))
                    .header("origin", "https://app.example"),
            )
            .await;
        assert_eq!(
            a.header("access-control-allow-origin"),
            Some("*"),
            "GET {path}: {:?}",
            a.headers
        );
        assert_eq!(
            a.header("x-content-type-options"),
            Some("nosniff"),
            "GET {path}"
        );
    }
    let resp = api
        .client
        .get(api.url(&format!("/v1/sse?channel={ch}")))
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("sse");
    assert_eq!(
        resp.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*"),
        "sse: {:?}",
        resp.headers()
    );
    // Without an Origin header there is no CORS header, but still nosniff.
    let a = api.get(&format!("/v1/channels/{ch}")).await;
    assert_eq!(a.header("access-control-allow-origin"), None);
    assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
}

async fn allow_list_echoes_listed_origins_and_ignores_others(b: Backend) {
    let api = Api::with(
        b,
        &[("cors_origins", "https://a.example, https://b.example/")],
    );
    let ch = api.channel("cors-list");
    for origin in ["https://a.example", "https://b.example"] {
        for path in paths(&ch) {
            let a = preflight(&api, &path, origin).await;
            assert_eq!(a.status, StatusCode::NO_CONTENT);
            assert_eq!(
                a.header("access-control-allow-origin"),
                Some(origin),
                "{path}"
            );
            assert!(a.header("access-control-allow-methods").is_some(), "{path}");
            assert!(
                a.header("vary").is_some_and(|v| v.contains("Origin")),
                "{path}: {:?}",
                a.headers
            );
        }
        let a = api
            .send(
                api.client
                    .get(api.url(&format!("/v1/poll?channel={ch}&timeout=0")))
                    .header("origin", origin),
            )
            .await;
        assert_eq!(a.header("access-control-allow-origin"), Some(origin));
    }
    for origin in ["https://evil.example", "https://a.example.evil", "null"] {
        let a = preflight(&api, "/v1/publish", origin).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT);
        assert_eq!(a.header("access-control-allow-origin"), None, "{origin}");
        assert_eq!(a.header("access-control-allow-methods"), None, "{origin}");
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        let a = api
            .send(
                api.client
                    .get(api.url(&format!("/v1/channels/{ch}")))
                    .header("origin", origin),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "the request itself is served");
        assert_eq!(a.header("access-control-allow-origin"), None, "{origin}");
    }
}
