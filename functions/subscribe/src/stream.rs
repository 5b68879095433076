//! The streaming transports: SSE and NDJSON share one pump and differ only in framing.

use std::rc::Rc;
use std::time::Duration;

use comet_edge::error::ApiError;
use comet_edge::framing;
use comet_edge::http::{Query, Resp};
use comet_edge::store::{Instance, SpinClock, instance};
use comet_edge::{Config, HeldGuard};
use comet_state::{Clock, Cursor, Event, Log, Subscription};
use futures::SinkExt;
use http::{HeaderValue, StatusCode, header};
use spin_sdk::http::Request;
use spin_sdk::http::body::stream as body_stream;

use crate::parse_subscribe;

/// What the pump hands a framer.
enum Frame<'a> {
    /// An event and the cursor after it.
    Event(&'a Event, &'a str),
    /// The stream is positioned (sent once, after the backlog): the current cursor. Named
    /// `ready`, not `open`, which would collide with `EventSource`'s own `open` event.
    Ready(&'a str),
    /// Nothing happened for a heartbeat interval.
    Heartbeat(&'a str),
    /// The stream ends because of an error.
    Error(&'a ApiError),
}

type Framer = fn(Frame<'_>) -> String;

fn sse_frame(frame: Frame<'_>) -> String {
    match frame {
        Frame::Event(e, cursor) => {
            framing::sse_event(framing::sse_event_name(e), Some(cursor), &e.to_json())
        }
        Frame::Ready(cursor) => framing::sse_event(
            Some("ready"),
            Some(cursor),
            &format!("{{\"cursor\":\"{cursor}\"}}"),
        ),
        Frame::Heartbeat(_) => framing::sse_heartbeat().to_string(),
        Frame::Error(e) => framing::sse_event(Some("error"), None, &e.body()),
    }
}

fn ndjson_frame(frame: Frame<'_>) -> String {
    match frame {
        Frame::Event(e, cursor) => framing::ndjson_event(e, cursor),
        Frame::Ready(cursor) => framing::ndjson_control("ready", cursor),
        Frame::Heartbeat(cursor) => framing::ndjson_control("heartbeat", cursor),
        Frame::Error(e) => format!("{}\n", e.body()),
    }
}

/// `GET /v1/sse`.
pub(crate) async fn sse(req: &Request, query: &Query, config: &Config) -> Result<Resp, ApiError> {
    start(
        req,
        query,
        config,
        sse_frame,
        Some(framing::sse_prelude(2000)),
        "text/event-stream",
    )
    .await
}

/// `GET /v1/stream`.
pub(crate) async fn ndjson(
    req: &Request,
    query: &Query,
    config: &Config,
) -> Result<Resp, ApiError> {
    start(
        req,
        query,
        config,
        ndjson_frame,
        None,
        "application/x-ndjson",
    )
    .await
}

async fn start(
    req: &Request,
    query: &Query,
    config: &Config,
    framer: Framer,
    prelude: Option<String>,
    content_type: &'static str,
) -> Result<Resp, ApiError> {
    let sub = parse_subscribe(req, query, config)?;
    let inst = instance(config).await?;
    let held = HeldGuard::acquire(config)?;
    let (mut tx, body) = body_stream::<String>();
    let config = config.clone();
    spin_sdk::wasip3::spawn(async move {
        let _held = held;
        if let Some(p) = prelude
            && tx.send(p).await.is_err()
        {
            return;
        }
        if let Err(e) = pump(
            &inst,
            &config,
            sub.subscriptions,
            sub.cursor,
            sub.token_expires,
            framer,
            &mut tx,
        )
        .await
        {
            let _ = tx.send(framer(Frame::Error(&e))).await;
        }
    });
    let mut resp = http::Response::new(spin_sdk::http::box_body(body));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-transform"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

/// Sends the backlog, an `open` frame, then news as it lands, heartbeats when quiet, until
/// the client leaves or `max_stream` passes. Returns `Ok` on a clean end.
async fn pump<S>(
    inst: &Rc<Instance>,
    config: &Config,
    subs: Vec<Subscription>,
    mut before: Cursor,
    token_expires: Option<u64>,
    framer: Framer,
    out: &mut S,
) -> Result<(), ApiError>
where
    S: futures::Sink<String> + Unpin,
{
    let clock = SpinClock;
    let mut deadline = clock.now_ms() + millis(config.max_stream);
    if let Some(exp) = token_expires {
        // A stream never outlives its token: the client reconnects with a fresh one.
        deadline = deadline.min(exp.saturating_mul(1000));
    }
    let mut opened = false;
    let mut last: Option<comet_state::Batch> = None;
    loop {
        let now = clock.now_ms();
        if now >= deadline {
            return Ok(());
        }
        let wait = if opened {
            config.heartbeat.min(Duration::from_millis(deadline - now))
        } else {
            Duration::ZERO
        };
        let batch = match &last {
            // What was just sent tells the watcher where this stream stands: no re-read.
            Some(last) => {
                inst.watcher
                    .wait_after(&inst.log, &clock, last, config.read_limit, wait)
                    .await?
            }
            None => inst.log.read(&subs, config.read_limit).await?,
        };
        let cursors = framing::event_cursors(&before, &batch.positions, &batch.events);
        let mut chunk = String::new();
        for (event, cursor) in batch.events.iter().zip(&cursors) {
            chunk.push_str(&framer(Frame::Event(event, cursor)));
        }
        before = batch.cursor();
        let current = before.encode();
        if !opened {
            chunk.push_str(&framer(Frame::Ready(&current)));
            opened = true;
        } else if batch.events.is_empty() {
            chunk.push_str(&framer(Frame::Heartbeat(&current)));
        }
        if out.send(chunk).await.is_err() {
            // The client went away: a normal end, not an error.
            return Ok(());
        }
        // Positions only: a held stream keeps no payloads. `more` makes the next wait read
        // the rest of a backlog at once.
        last = Some(comet_state::Batch {
            events: Vec::new(),
            positions: batch.positions,
            more: batch.more,
        });
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
