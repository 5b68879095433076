//! Private channels and subscribe tokens on every transport: the attack table (missing,
//! forged, `alg: none`, expired, not-yet-valid, wrong channel, wrong secret) and the paths
//! that must work (query token, bearer header, prefix grants, `private_channels` patterns,
//! resume with a cursor, SockJS `subscribe <ch> <token>`), and streams ending with their token.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use comet_token::{Claims, mint};

use super::*;

/// The `token_secret` the token tests run with.
pub(crate) const SECRET: &str = "e2e-token-secret";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A token for `channels` expiring `ttl` seconds from now (negative: in the past).
pub(crate) fn token(channels: &[&str], ttl: i64) -> String {
    token_with(SECRET, channels, ttl, None)
}

fn token_with(secret: &str, channels: &[&str], ttl: i64, nbf: Option<u64>) -> String {
    let claims = Claims {
        sub: Some("e2e".into()),
        channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        exp: now().saturating_add_signed(ttl),
        nbf,
    };
    mint(secret.as_bytes(), &claims).expect("mint")
}

/// A token whose signature was made with another key.
pub(crate) fn forged(channels: &[&str]) -> String {
    token_with("not-the-secret", channels, 3600, None)
}

/// `alg: none` with the real claims and no signature.
fn unsigned(channels: &[&str]) -> String {
    let good = token(channels, 3600);
    let body = good.split('.').nth(1).expect("claims");
    format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    )
}

fn app(backend: Backend) -> Api {
    Api::with(
        backend,
        &[
            ("token_secret", SECRET),
            ("private_channels", "vip-*"),
            ("sockjs_heartbeat_seconds", "1"),
        ],
    )
}

async fn every_transport_checks_tokens(backend: Backend) {
    let api = app(backend);
    let ch = format!("private-{}", api.channel("t"));
    let vip = format!("vip-{}", api.channel("v"));
    api.publish(&ch, json!("secret")).await;
    let good = token(&[&ch], 600);
    let attacks: Vec<(&str, String, u16, &str)> = vec![
        ("no token", String::new(), 403, "token_required"),
        ("forged", forged(&[&ch]), 401, "invalid_token"),
        ("alg none", unsigned(&[&ch]), 401, "invalid_token"),
        ("garbage", "x.y.z".into(), 401, "invalid_token"),
        ("expired", token(&[&ch], -3600), 401, "token_expired"),
        (
            "not yet valid",
            token_with(SECRET, &[&ch], 7200, Some(now() + 3600)),
            401,
            "invalid_token",
        ),
        (
            "other channel",
            token(&["private-other"], 600),
            403,
            "channel_not_allowed",
        ),
        (
            "prefix of another",
            token(&["private-zz*"], 600),
            403,
            "channel_not_allowed",
        ),
    ];
    let endpoints = [
        format!("/v1/poll?channel={ch}&timeout=0&from=start"),
        format!("/v1/sse?channel={ch}"),
        format!("/v1/stream?channel={ch}"),
        format!("/v1/history/{ch}"),
        format!("/v1/channels/{ch}"),
    ];
    for endpoint in &endpoints {
        for (what, t, status, code) in &attacks {
            let url = if t.is_empty() {
                endpoint.clone()
            } else {
                format!(
                    "{endpoint}{}token={t}",
                    if endpoint.contains('?') { '&' } else { '?' }
                )
            };
            let a = api.get(&url).await;
            assert_eq!(
                a.status.as_u16(),
                *status,
                "{what} on {endpoint}: {}",
                a.text
            );
            assert_eq!(a.code(), *code, "{what} on {endpoint}");
            assert!(!a.text.contains(SECRET) && (t.is_empty() || !a.text.contains(t.as_str())));
        }
    }
    // JSONP gets its error through the callback (a script tag cannot read a 4xx).
    let a = api
        .get(&format!(
            "/v1/poll?channel={ch}&timeout=0&callback=cb&token={}",
            forged(&[&ch])
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.text.starts_with("/**/cb(") && a.text.contains("invalid_token"),
        "{}",
        a.text
    );

    // The right token opens every endpoint, as a query parameter or a bearer header.
    let v = api
        .poll(&format!("channel={ch}&timeout=0&from=start&token={good}"))
        .await;
    assert_eq!(v["messages"][0]["data"], "secret");
    let cursor = v["cursor"].as_str().expect("cursor").to_owned();
    let a = api
        .send(
            api.client
                .get(api.url(&format!("/v1/history/{ch}")))
                .bearer_auth(&good),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let wide = token(&["private-*", "vip-*"], 600);
    let a = api.get(&format!("/v1/channels/{vip}?token={wide}")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        api.get(&format!("/v1/channels/{vip}")).await.code(),
        "token_required"
    );
    // Resuming is subscribing again: the cursor alone opens nothing.
    let a = api
        .get(&format!("/v1/poll?channel={ch}&timeout=0&cursor={cursor}"))
        .await;
    assert_eq!(
        (a.status.as_u16(), a.code()),
        (403, "token_required".into())
    );
    // Public channels ignore tokens, even bad ones.
    let public = api.channel("pub");
    let a = api
        .get(&format!(
            "/v1/poll?channel={public}&timeout=0&token=garbage"
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}

async fn streams_end_when_their_token_does(backend: Backend) {
    let api = Api::with(
        backend,
        &[("token_secret", SECRET), ("max_stream_seconds", "60")],
    );
    let ch = format!("private-{}", api.channel("exp"));
    // Valid for about 3 more seconds (expired 27 s ago; 30 s leeway).
    let short = token(&[&ch], -27);
    let started = Instant::now();
    let resp = api
        .client
        .get(api.url(&format!("/v1/stream?channel={ch}&token={short}")))
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status(), StatusCode::OK);
    let body = tokio::time::timeout(Duration::from_secs(20), resp.text())
        .await
        .expect("the stream ends by itself")
        .expect("body");
    let lasted = started.elapsed();
    assert!(
        lasted < Duration::from_secs(15) && lasted > Duration::from_secs(1),
        "stream lasted {lasted:?}: {body}"
    );
    assert!(body.contains("\"ready\""), "{body}");
}

async fn sockjs_subscriptions_need_and_keep_to_tokens(backend: Backend) {
    let api = app(backend);
    let ch = format!("private-{}", api.channel("s"));
    let session = format!(
        "/comet/000/{}",
        crate::support::unique("tk").replace(['.', ':'], "_")
    );
    let post = |t: &str, body: &str| {
        api.send(
            api.client
                .post(api.url(&format!("{session}/{t}")))
                .body(body.to_owned()),
        )
    };
    assert_eq!(post("xhr", "").await.text, "o\n");
    let cmds = serde_json::to_string(&[
        format!("subscribe {ch}"),
        format!("subscribe {ch} {}", forged(&[&ch])),
        format!("subscribe {ch} {}", token(&[&ch], -3600)),
        format!("subscribe {ch} {}", token(&["private-other"], 600)),
        // Valid for about 3 more seconds.
        format!("subscribe {ch} {}", token(&[&ch], -27)),
    ])
    .expect("json");
    assert_eq!(post("xhr_send", &cmds).await.status, StatusCode::NO_CONTENT);
    let mut codes = Vec::new();
    let mut pushes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    api.publish(&ch, json!("for subscribers")).await;
    while codes.len() < 5 && Instant::now() < deadline {
        let body = post("xhr", "").await.text;
        if let Some(frame) = body.strip_prefix('a') {
            let msgs: Vec<String> = serde_json::from_str(frame.trim_end()).expect("frame");
            for m in msgs {
                if let Some(e) = m.strip_prefix("error ") {
                    let v: Value = serde_json::from_str(e).expect("error json");
                    codes.push(v["code"].as_str().expect("code").to_owned());
                } else {
                    pushes.push(m);
                }
            }
        }
    }
    assert_eq!(
        codes,
        [
            "token_required",
            "invalid_token",
            "token_expired",
            "channel_not_allowed",
            "token_expired"
        ],
        "the last one is the valid subscription ending with its token"
    );
    assert_eq!(pushes, [format!("channel {ch} for subscribers")]);
    // After the token lapsed, nothing more arrives.
    api.publish(&ch, json!("too late")).await;
    assert_eq!(post("xhr", "").await.text, "h\n");
}

both!(
    every_transport_checks_tokens,
    streams_end_when_their_token_does,
    sockjs_subscriptions_need_and_keep_to_tokens,
);

#[test]
fn comet_token_mints_what_the_functions_accept() {
    let out = crate::support::run_comet(
        &[
            "token",
            "--secret",
            SECRET,
            "--channel",
            "private-a,private-b*",
            "--ttl",
            "120",
            "--sub",
            "user-1",
        ],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let t = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let claims = comet_token::verify(SECRET.as_bytes(), &t, now()).expect("verifies");
    assert_eq!(claims.channels, ["private-a", "private-b*"]);
    assert_eq!(claims.sub.as_deref(), Some("user-1"));
    assert!(claims.exp >= now() + 110 && claims.exp <= now() + 121);
    let bad = crate::support::run_comet(&["token", "--secret", "", "--channel", "x"], &[]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("must not be empty"));
}
