//! `subscribe`: the held-request transports under `/v1`.
//!
//! - `GET /v1/poll`: long-poll JSON, or JSONP with `callback=`
//! - `GET /v1/sse`: Server-Sent Events, resumable by `Last-Event-ID`
//! - `GET /v1/stream`: chunked NDJSON
//!
//! Every response carries the cursor after its last event. All held requests of an instance
//! share one watcher (see `comet_edge::store`), and streams end cleanly after
//! `max_stream_seconds` so platforms that cap a request's life never cut one mid-event.

mod stream;

use std::time::Duration;

use comet_edge::access::{Access, now_secs};
use comet_edge::error::ApiError;
use comet_edge::framing;
use comet_edge::http::{self as h, Query, Resp};
use comet_edge::store::{SpinClock, instance};
use comet_edge::{Config, HeldGuard};
use comet_state::{Cursor, Start, Subscription};
use http::{Method, StatusCode};
use spin_sdk::http::Request;

#[spin_sdk::http_service]
async fn handle(req: Request) -> Resp {
    let (headers, config) = match h::begin(&req).await {
        Ok(ready) => ready,
        Err(answered) => return answered,
    };
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let callback = query.get("callback").map(str::to_string);
    let result = match (req.method(), path.as_str()) {
        (&Method::GET, "/v1/poll") => poll(&req, &query, &config).await,
        (&Method::GET, "/v1/sse") => stream::sse(&req, &query, &config).await,
        (&Method::GET, "/v1/stream") => stream::ndjson(&req, &query, &config).await,
        (_, "/v1/poll" | "/v1/sse" | "/v1/stream") => Err(h::method_not_allowed("GET")),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no endpoint {path}"),
        )),
    };
    let resp = match result {
        Ok(resp) => resp,
        // A JSONP caller cannot read a 4xx (the script tag just fails), so once the callback
        // is known to be safe, errors are delivered to it with 200.
        Err(e) => match callback.filter(|c| path == "/v1/poll" && framing::valid_callback(c)) {
            Some(cb) => h::full(
                StatusCode::OK,
                "application/javascript",
                framing::jsonp(&cb, &e.body()),
            ),
            None => h::error_response(&e),
        },
    };
    h::finish(resp, &headers, &config)
}

/// What every subscribe transport parses: channels and where to start in each.
pub(crate) struct SubscribeRequest {
    pub cursor: Cursor,
    pub subscriptions: Vec<Subscription>,
    /// When the subscribe token expires (Unix seconds): streams end then, and the client
    /// must come back with a fresh token.
    pub token_expires: Option<u64>,
}

/// Parses channels, the resume cursor and `from=start`.
pub(crate) fn parse_subscribe(
    req: &Request,
    query: &Query,
    config: &Config,
) -> Result<SubscribeRequest, ApiError> {
    let access = Access::from_request(query, req.headers(), config, now_secs());
    let channels = h::channels(query, config, &access)?;
    let cursor = h::cursor(query, req.headers())?;
    let from_start = match query.get("from") {
        None | Some("now") => false,
        Some("start") => true,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_from",
                format!("from={other:?}: use \"start\" or \"now\""),
            ));
        }
    };
    let mut subscriptions = Subscription::from_cursor(&channels, cursor.as_ref());
    if from_start {
        for s in &mut subscriptions {
            if s.start == Start::Now {
                s.start = Start::Beginning;
            }
        }
    }
    Ok(SubscribeRequest {
        cursor: cursor.unwrap_or_default(),
        subscriptions,
        // Only private channels depend on the token.
        token_expires: channels
            .iter()
            .any(|c| comet_edge::access::is_private(c, config))
            .then(|| access.valid_until())
            .flatten(),
    })
}

/// Parses a duration in seconds (`timeout=25`, `timeout=0.2`).
fn seconds(
    query: &Query,
    name: &'static str,
    default: Duration,
    max: Duration,
) -> Result<Duration, ApiError> {
    match query.get(name) {
        None => Ok(default),
        Some(v) => match v.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 && s <= max.as_secs_f64() => {
                Ok(Duration::from_secs_f64(s))
            }
            _ => Err(ApiError::bad_request(
                "invalid_timeout",
                format!("{name}={v:?}: seconds from 0 to {}", max.as_secs()),
            )),
        },
    }
}

/// `GET /v1/poll`: answers at once if anything is newer than the cursor, else waits.
async fn poll(req: &Request, query: &Query, config: &Config) -> Result<Resp, ApiError> {
    let callback = query.get("callback");
    if let Some(cb) = callback
        && !framing::valid_callback(cb)
    {
        return Err(ApiError::bad_request(
            "invalid_callback",
            "callback must match ^[A-Za-z_$][\\w$.]{0,63}$",
        ));
    }
    let sub = parse_subscribe(req, query, config)?;
    let timeout = seconds(
        query,
        "timeout",
        config.poll_timeout_default,
        config.poll_timeout_max,
    )?;
    let inst = instance(config).await?;
    let _held = HeldGuard::acquire(config)?;
    let batch = inst
        .watcher
        .wait(
            &inst.log,
            &SpinClock,
            &sub.subscriptions,
            config.read_limit,
            timeout,
        )
        .await?;
    let mut body = String::with_capacity(256);
    body.push_str("{\"messages\":[");
    for (i, event) in batch.events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&event.to_json());
    }
    body.push_str("],\"cursor\":\"");
    body.push_str(&batch.cursor().encode());
    body.push_str("\"}");
    Ok(match callback {
        Some(cb) => h::full(
            StatusCode::OK,
            "application/javascript",
            framing::jsonp(cb, &body),
        ),
        None => h::json(StatusCode::OK, body),
    })
}
