//! `openapi.yaml` (repo root) against the running implementation: every documented operation
//! is served, nothing undocumented is, and the error-code enum is exactly what the bad-input
//! tables observe (with the same statuses).

use std::collections::{BTreeMap, BTreeSet};

use super::errors::{bad_request_codes, deployment_error_codes};
use super::*;

const METHODS: &[&str] = &["get", "post", "put", "delete", "patch"];

fn spec() -> Value {
    let path = workspace_root().join("openapi.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("openapi.yaml does not parse: {e}"))
}

/// Follows a local `$ref` (`#/a/b`) if `v` is one.
fn resolve<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => spec
            .pointer(
                r.strip_prefix('#')
                    .unwrap_or_else(|| panic!("non-local $ref {r}")),
            )
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => v,
    }
}

/// Every `$ref` in the document.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v.as_str().expect("$ref string").to_owned());
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn openapi_spec_is_3_1_and_every_ref_resolves() {
    let spec = spec();
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        spec["openapi"]
    );
    let mut all = Vec::new();
    refs(&spec, &mut all);
    assert!(!all.is_empty());
    for r in all {
        assert!(
            spec.pointer(r.trim_start_matches('#')).is_some(),
            "dangling $ref {r}"
        );
    }
    let paths = spec["paths"].as_object().expect("paths");
    assert!(
        paths.keys().all(|p| p.starts_with("/v1/")),
        "{:?}",
        paths.keys()
    );
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            assert!(
                METHODS.contains(&method.as_str()),
                "{path}: unexpected key {method}"
            );
            assert!(
                op["operationId"].is_string(),
                "{method} {path}: operationId"
            );
            assert!(
                op["responses"]["200"].is_object(),
                "{method} {path}: 200 response"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_paths_match_the_served_routes() {
    let spec = spec();
    let api = Api::with(
        Backend::Kv,
        &[("client_publish", "*"), ("client_actions", "*")],
    );
    let ch = api.channel("spec");
    api.publish(&ch, json!("x")).await;
    let paths = spec["paths"].as_object().expect("paths");
    let mut problems = Vec::new();
    for (path, item) in paths {
        let concrete = path.replace("{channel}", &ch).replace("{route}", "echo");
        for method in METHODS {
            let op = item.get(*method);
            let mut url = concrete.clone();
            let mut req_query = Vec::new();
            if let Some(op) = op {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let p = resolve(&spec, p);
                    if p["in"] == "query" && p["required"] == true {
                        assert_eq!(p["name"], "channel", "{path}: unexpected required param");
                        req_query.push(format!("channel={ch}"));
                    }
                }
                if concrete == "/v1/poll" {
                    req_query.push("timeout=0".into());
                }
            }
            if !req_query.is_empty() {
                url = format!("{url}?{}", req_query.join("&"));
            }
            let mut req = api.client.request(
                method.to_uppercase().parse().expect("method"),
                api.url(&url),
            );
            if *method == "post" {
                req = req
                    .bearer_auth(KEY)
                    .json(&json!({ "channel": ch, "data": 1 }));
            }
            let resp = req.send().await.expect("request");
            let status = resp.status();
            let content_type = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            // Streams never end on their own quickly: judge by the head, read only errors.
            let body = if status.is_success() {
                String::new()
            } else {
                resp.text().await.unwrap_or_default()
            };
            let label = format!("{} {url}", method.to_uppercase());
            match op {
                Some(op) => {
                    if status != StatusCode::OK {
                        problems.push(format!("{label}: documented, answered {status} {body}"));
                        continue;
                    }
                    let documented = op["responses"]["200"]["content"]
                        .as_object()
                        .map(|c| c.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default();
                    if !documented
                        .iter()
                        .any(|t| content_type.starts_with(t.as_str()))
                    {
                        problems.push(format!(
                            "{label}: content-type {content_type:?} not among documented {documented:?}"
                        ));
                    }
                }
                None => {
                    if status != StatusCode::METHOD_NOT_ALLOWED
                        || !body.contains("\"method_not_allowed\"")
                    {
                        problems.push(format!(
                            "{label}: undocumented method answered {status} {body}"
                        ));
                    }
                }
            }
        }
    }
    // Paths the spec does not document are not served.
    for path in [
        "/v1",
        "/v1/",
        "/v1/x",
        "/v1/polls",
        "/v1/poll/x",
        "/v1/sse/x",
        "/v1/publish/x",
        "/v1/history",
        "/v1/channels",
        "/v1/subscribe",
        "/v1/metrics",
    ] {
        for method in ["GET", "POST"] {
            let a = api
                .send(
                    api.client
                        .request(method.parse().expect("m"), api.url(path))
                        .bearer_auth(KEY),
                )
                .await;
            let documented = paths.keys().any(|p| p == path);
            if documented {
                continue;
            }
            if a.status != StatusCode::NOT_FOUND || !a.text.contains("\"route_not_found\"") {
                problems.push(format!(
                    "{method} {path}: undocumented, answered {} {}",
                    a.status, a.text
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "spec and routes disagree:\n{}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_error_codes_are_exactly_the_observed_ones() {
    let spec = spec();
    let code_schema = &spec["components"]["schemas"]["ErrorCode"];
    let documented: BTreeSet<String> = code_schema["enum"]
        .as_array()
        .expect("ErrorCode enum")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    let statuses: BTreeMap<String, u16> = code_schema["x-status"]
        .as_object()
        .expect("ErrorCode x-status")
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                u16::try_from(v.as_u64().expect("status")).expect("u16"),
            )
        })
        .collect();
    assert_eq!(
        statuses.keys().cloned().collect::<BTreeSet<_>>(),
        documented,
        "x-status names every code once"
    );
    let mut observed = bad_request_codes(Backend::Kv).await;
    observed.extend(deployment_error_codes().await);
    let observed_codes: BTreeSet<String> = observed.keys().cloned().collect();
    assert_eq!(
        documented.difference(&observed_codes).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented but never observed"
    );
    assert_eq!(
        observed_codes.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "observed but not documented"
    );
    assert_eq!(observed, statuses, "status per code");
    // Each status that a code uses is among the operation responses the spec lists.
    let listed: BTreeSet<u16> = spec["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|item| item.as_object().expect("item").values())
        .flat_map(|op| op["responses"].as_object().expect("responses").keys())
        .filter_map(|s| s.parse().ok())
        .collect();
    for (code, status) in &statuses {
        if *code != "route_not_found" {
            assert!(
                listed.contains(status),
                "{code}: status {status} listed by no operation"
            );
        }
    }
}
