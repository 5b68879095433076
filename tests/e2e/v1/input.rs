//! Input that used to be accepted wrongly: an empty `cursor=` hiding a valid `Last-Event-ID`
//! (the stream started from now and skipped what the client missed), `"id": null` silently
//! disabling de-duplication, and JSONP callbacks that are not valid JavaScript.

use super::*;

both!(
    an_empty_cursor_parameter_resumes_from_last_event_id,
    a_null_publish_id_is_refused,
    jsonp_callbacks_must_be_valid_javascript
);

async fn an_empty_cursor_parameter_resumes_from_last_event_id(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("empty-cursor");
    let before = api.cursor_now(&ch).await;
    for n in 1..=3 {
        api.publish(&ch, json!(n)).await;
    }
    for query in [
        format!("channel={ch}&cursor="),
        format!("channel={ch}&lastEventId="),
    ] {
        let mut sse = super::sse::open(&api, &query, Some(&before)).await;
        let mut got = Vec::new();
        while got.len() < 3 {
            let e = sse
                .next_event(Duration::from_secs(5))
                .await
                .unwrap_or_else(|| panic!("?{query}: stream ended after {got:?}"));
            if e.event.is_none() {
                got.push(e.json()["data"].clone());
            }
        }
        assert_eq!(got, [json!(1), json!(2), json!(3)], "?{query}");
    }
    let a = api
        .send(
            api.client
                .get(api.url(&format!("/v1/sse?channel={ch}&cursor=")))
                .header("Last-Event-ID", "garbage!"),
        )
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::BAD_REQUEST, "invalid_cursor".into())
    );
}

async fn a_null_publish_id_is_refused(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("null-id");
    for body in [
        json!({"channel": ch, "data": 1, "id": null}),
        json!([{"channel": ch, "data": 1, "id": null}]),
    ] {
        let a = api.publish_body(&body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        assert_eq!(a.code(), "invalid_json", "{body}");
        assert!(
            a.text.contains("string"),
            "says a string is expected: {}",
            a.text
        );
    }
    let history = api.get(&format!("/v1/history/{ch}")).await.json();
    assert_eq!(history["messages"], json!([]), "nothing was stored");
    // A present id still de-duplicates.
    let body = json!({"channel": ch, "data": 2, "id": "once"});
    assert_eq!(api.publish_body(&body).await.json()["duplicate"], false);
    assert_eq!(api.publish_body(&body).await.json()["duplicate"], true);
}

async fn jsonp_callbacks_must_be_valid_javascript(b: Backend) {
    let api = Api::start(b);
    let ch = api.channel("jsonp-cb");
    for bad in ["a.", ".a", "a..b", "a.1"] {
        let a = api
            .get(&format!("/v1/poll?channel={ch}&timeout=0&callback={bad}"))
            .await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::BAD_REQUEST, "invalid_callback".into()),
            "callback {bad:?}"
        );
    }
    let a = api
        .get(&format!(
            "/v1/poll?channel={ch}&timeout=0&callback=app.on_poll"
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(a.text.starts_with("/**/app.on_poll({"), "{}", a.text);
}
