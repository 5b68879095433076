//! Receiving requests: open or find the session, take its receive lease, deliver what waits
//! in its own queue and subscribed channels, then wait for more (polling answers once,
//! streaming keeps going until its byte or time limit).
//!
//! Positions are advanced in the store only after a frame was handed to the transport, so a
//! receiver that dies mid-way leaves its messages for the next one.

use std::rc::Rc;
use std::time::Duration;

use comet_edge::HeldGuard;
use comet_edge::access::now_secs;
use comet_edge::error::ApiError;
use comet_edge::http::{Resp, full};
use comet_edge::store::SpinClock;
use comet_state::{Channel, Clock, Event, Log, Opened, SessionId, Start, Subscription};
use futures::SinkExt;
use http::{HeaderValue, StatusCode, header};
use spin_sdk::http::body::stream as body_stream;

use crate::Ctx;
use crate::frame;
use crate::jii;
use crate::store::{Queued, enqueue};
use crate::transport::Transport;

/// A receive lease outlives one heartbeat wait by this much, so a crashed receiver blocks
/// its session only briefly.
const LEASE_SLACK: Duration = Duration::from_secs(15);

/// Where frames go: a streaming body, or a buffer answered at the end.
pub(crate) trait Out {
    /// Writes bytes; `false` when the client is gone.
    async fn write(&mut self, bytes: String) -> bool;
}

impl Out for String {
    async fn write(&mut self, bytes: String) -> bool {
        self.push_str(&bytes);
        true
    }
}

struct SinkOut<S>(S);

impl<S: futures::Sink<String> + Unpin> Out for SinkOut<S> {
    async fn write(&mut self, bytes: String) -> bool {
        self.0.send(bytes).await.is_ok()
    }
}

async fn write_frame<O: Out>(out: &mut O, transport: &Transport, frame: &str) -> bool {
    out.write(transport.wrap(frame)).await
}

/// Serves a receiving request.
pub(crate) async fn receive(
    ctx: Rc<Ctx>,
    transport: Transport,
    id: SessionId,
) -> Result<Resp, ApiError> {
    let held = HeldGuard::acquire(&ctx.config)?;
    if !transport.streams() {
        let mut out = String::new();
        run(&ctx, &transport, &id, &mut out).await?;
        drop(held);
        return Ok(full(StatusCode::OK, transport.content_type(), out));
    }
    let (tx, body) = body_stream::<String>();
    let content_type = transport.content_type();
    spin_sdk::wasip3::spawn(async move {
        let _held = held;
        let mut out = SinkOut(tx);
        if !out.write(transport.prelude()).await {
            return;
        }
        if let Err(e) = run(&ctx, &transport, &id, &mut out).await {
            // The session itself lives in the store, so a store blip must not close it: end
            // this response and sockjs-client re-polls the same session (the next request
            // reconnects to the store). Positions only advance after writes: nothing is lost.
            eprintln!("sockjs: session {}: {}", id.as_str(), e.message);
            crate::forget_on_store_error(&e);
        }
    });
    let mut resp = http::Response::new(spin_sdk::http::box_body(body));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

async fn run<O: Out>(
    ctx: &Ctx,
    transport: &Transport,
    id: &SessionId,
    out: &mut O,
) -> Result<(), ApiError> {
    let sessions = &ctx.sessions;
    match sessions.open(id, &[]).await? {
        Opened::Closed(code, reason) => {
            write_frame(out, transport, &frame::close(code, &reason)).await;
            return Ok(());
        }
        Opened::Created(_) => {
            // Start the own queue at its head: a reused id must not replay old messages.
            let own = id.queue_channel();
            let info = ctx.inst.log.info(&own).await?;
            let head = comet_state::Position {
                epoch: info.epoch,
                seq: info.last_seq,
            };
            sessions.subscribe(id, &[(own, head)]).await?;
            ctx.app.on_open(ctx, id).await?;
            if !write_frame(out, transport, frame::OPEN).await || !transport.streams() {
                sessions.touch(id).await?;
                return Ok(());
            }
        }
        Opened::Existing(_) => {}
    }
    let holder = random_holder();
    let ttl = ctx.settings.heartbeat + LEASE_SLACK;
    if !sessions.acquire_lease(id, &holder, ttl).await? {
        write_frame(out, transport, &frame::another_connection()).await;
        return Ok(());
    }
    let result = pump(ctx, transport, id, &holder, out).await;
    // Best effort: an expired lease and an old `seen` end the session by themselves.
    let _ = sessions.release_lease(id, &holder).await;
    let _ = sessions.touch(id).await;
    result
}

async fn pump<O: Out>(
    ctx: &Ctx,
    transport: &Transport,
    id: &SessionId,
    holder: &str,
    out: &mut O,
) -> Result<(), ApiError> {
    let clock = SpinClock;
    let sessions = &ctx.sessions;
    let own = id.queue_channel();
    let ttl = ctx.settings.heartbeat + LEASE_SLACK;
    let started = clock.now_ms();
    let deadline = started.saturating_add(millis(ctx.config.max_stream));
    let mut renewed = started;
    let mut written = 0usize;
    // The record is re-read only when it may have changed: at the start, after own-queue
    // entries (subscription changes and closes enqueue one), when a token lapses, and with
    // each lease renewal. In between, positions advance from the batches themselves.
    let mut refresh = true;
    let mut subscriptions: Vec<Subscription> = Vec::new();
    let mut next_expiry: Option<u64> = None;
    loop {
        let now_s = now_secs();
        if refresh || next_expiry.is_some_and(|t| t <= now_s) {
            let record = match sessions.get(id).await? {
                Some(r) if !r.closed => r,
                gone => {
                    let (code, reason) = gone
                        .and_then(|r| r.close)
                        .unwrap_or_else(|| (3000, "Go away!".to_owned()));
                    write_frame(out, transport, &frame::close(code, &reason)).await;
                    return Ok(());
                }
            };
            // Private subscriptions end with their token; the client hears why.
            let lapsed: Vec<Channel> = record
                .token_expiry
                .iter()
                .filter(|(_, until)| **until <= now_s)
                .filter_map(|(name, _)| Channel::new(name).ok())
                .collect();
            if !lapsed.is_empty() {
                sessions.unsubscribe(id, &lapsed).await?;
                let notices: Vec<Queued> = lapsed.iter().map(token_expired_notice).collect();
                enqueue(&ctx.inst.log, id, &notices).await?;
                continue;
            }
            next_expiry = record.token_expiry.values().min().copied();
            subscriptions = record
                .positions()
                .into_iter()
                .map(|(channel, pos)| Subscription {
                    channel,
                    start: Start::After(pos),
                })
                .collect();
            refresh = false;
        }
        let now = clock.now_ms();
        let mut wait = if transport.streams() {
            ctx.settings
                .heartbeat
                .min(Duration::from_millis(deadline.saturating_sub(now)))
        } else {
            ctx.settings.heartbeat
        };
        if let Some(until) = next_expiry {
            wait = wait.min(Duration::from_secs(until.saturating_sub(now_s)));
        }
        let batch = ctx
            .inst
            .watcher
            .wait(
                &ctx.inst.log,
                &clock,
                &subscriptions,
                ctx.config.read_limit,
                wait,
            )
            .await?;
        let texts = render(&batch.events, &own);
        let frame = if !texts.is_empty() {
            Some(frame::messages(&texts))
        } else if batch.events.is_empty() && !batch.more {
            Some(frame::HEARTBEAT.to_owned())
        } else {
            None
        };
        if let Some(f) = &frame {
            if !write_frame(out, transport, f).await {
                return Ok(());
            }
            written += f.len();
        }
        if !batch.events.is_empty() {
            sessions.advance(id, &batch.positions).await?;
            refresh |= batch
                .events
                .iter()
                .any(|e| matches!(e, Event::Message(m) if m.channel == own));
        }
        subscriptions = batch.next_subscriptions();
        if !transport.streams() && frame.is_some() {
            return Ok(());
        }
        let now = clock.now_ms();
        if transport.streams() && (written >= ctx.settings.response_limit || now >= deadline) {
            return Ok(());
        }
        if now.saturating_sub(renewed) >= millis(ttl) / 3 {
            if !sessions.acquire_lease(id, holder, ttl).await? {
                // Taken over after our lease lapsed: the newer receiver owns the session.
                return Ok(());
            }
            renewed = now;
            refresh = true;
        }
    }
}

/// The message telling the client a private subscription ended with its token.
fn token_expired_notice(channel: &Channel) -> Queued {
    Queued::Message(format!(
        "error {}",
        serde_json::json!({
            "command": "subscribe",
            "code": "token_expired",
            "message": format!(
                "the token for {} expired; subscribe again with a fresh one",
                channel.as_str()
            ),
        })
    ))
}

/// The SockJS messages for a batch: the own queue's messages as they are, channel messages
/// as Jii `channel` pushes; wake-ups and resets carry nothing for the client.
fn render(events: &[Event], own: &Channel) -> Vec<String> {
    let mut texts = Vec::new();
    for event in events {
        let Event::Message(envelope) = event else {
            continue;
        };
        if envelope.channel == *own {
            if let Some(Queued::Message(text)) = Queued::parse(envelope) {
                texts.push(text);
            }
        } else {
            texts.push(jii::channel_push(envelope.channel.as_str(), &envelope.data));
        }
    }
    texts
}

fn random_holder() -> String {
    let mut bytes = [0u8; 12];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
