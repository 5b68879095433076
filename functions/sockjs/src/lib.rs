//! `sockjs`: SockJS 0.3.3's HTTP transports and the Jii-comet protocol, from stateless
//! functions.
//!
//! Mounted at a route prefix (`/comet/...` in the app; the SockJS test services in
//! `tests/sockjs/spin.toml`). Every request finds its session in the store ([`store`]), so
//! consecutive requests of one session may land on different instances or processes:
//!
//! - `GET /`, `GET|OPTIONS /info`, `GET /iframe*.html`: [`pages`]
//! - `POST …/{server}/{session}/xhr|xhr_streaming`, `GET …/eventsource|htmlfile|jsonp`:
//!   receiving, [`receive`] (framing in [`transport`] and [`frame`])
//! - `POST …/xhr_send|jsonp_send`: [`send`] into the session's [`app::App`] (Jii commands in
//!   [`jii`], actions in [`action`])
//!
//! The wire formats (frames, escaping, bodies, Jii commands) live in `comet-sockjs-protocol`.
//! - `POST /v1/sessions/{id}/send|close` (publish key): server-to-session sends, [`api`]
//! - `POST /v1/send`, `POST /v1/action/{route}`: the browser's native writes, [`client_api`]

pub mod action;
pub mod api;
pub mod app;
pub mod client_api;
pub mod pages;
mod receive;
pub mod respond;
pub mod send;
pub mod settings;
pub mod store;

pub use comet_sockjs_protocol::{frame, jii, transport};

use std::cell::RefCell;
use std::rc::Rc;

use comet_edge::Config;
use comet_edge::error::ApiError;
use comet_edge::http::{Query, Resp};
use comet_edge::store::{Instance, instance, reset_instance};
use comet_state::SessionId;
use http::{HeaderValue, Method, StatusCode, header};
use spin_sdk::http::Request;

use crate::app::App;
use crate::respond::{Caching, RequestMeta, finish, not_found, preflight, text_error};
use crate::settings::{NAMES, Settings};
use crate::store::{SessionStore, reset_sessions, sessions};
use crate::transport::{HTMLFILE_CALLBACK_MAX, JSONP_CALLBACK_MAX, Transport, valid_callback};
use comet_sockjs_protocol::body::SendKind;

/// What a request handler needs: configuration, the instance's log and session store, and
/// the session application of this route.
pub struct Ctx {
    /// Comet's shared configuration.
    pub config: Config,
    /// SockJS/Jii settings.
    pub settings: Settings,
    /// The instance's log and watcher.
    pub inst: Rc<Instance>,
    /// The instance's session store.
    pub sessions: Rc<SessionStore>,
    /// What runs in sessions of this route.
    pub app: App,
}

thread_local! {
    static SETTINGS: RefCell<Option<Settings>> = const { RefCell::new(None) };
}

async fn load_settings() -> Result<Settings, String> {
    if let Some(s) = SETTINGS.with(|s| s.borrow().clone()) {
        return Ok(s);
    }
    let mut values = std::collections::HashMap::new();
    for name in NAMES {
        if let Ok(v) = spin_sdk::variables::get(name).await
            && !v.is_empty()
        {
            values.insert(*name, v);
        }
    }
    let loaded = Settings::from_lookup(|n| values.get(n).cloned()).map_err(|e| e.0)?;
    SETTINGS.with(|s| *s.borrow_mut() = Some(loaded.clone()));
    Ok(loaded)
}

/// The route prefix this request came through and the path below it.
fn split_route(req: &Request) -> (String, String) {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match (header("spin-component-route"), header("spin-path-info")) {
        (Some(prefix), Some(rest)) => (prefix.trim_end_matches('/').to_owned(), rest),
        _ => (String::new(), req.uri().path().to_owned()),
    }
}

#[spin_sdk::http_service]
async fn handle(req: Request) -> Resp {
    let (prefix, path) = split_route(&req);
    let config = match comet_edge::config().await {
        Ok(c) => c,
        Err(e) => {
            return comet_edge::http::finish_unconfigured(comet_edge::http::error_response(&e));
        }
    };
    let settings = match load_settings().await {
        Ok(s) => s,
        Err(reason) => {
            let e = ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "bad_configuration",
                reason,
            );
            return comet_edge::http::finish_unconfigured(comet_edge::http::error_response(&e));
        }
    };
    if req.uri().path().starts_with("/v1/") {
        return api::handle(req, &config, &settings).await;
    }
    let app = App::for_prefix(&settings.app, &prefix);
    let cookie_needed = settings.cookie_needed || prefix.ends_with("/cookie_needed_echo");
    let meta = RequestMeta::new(req.headers(), &config, cookie_needed);
    match route(req, &path, &config, settings, app, &meta, cookie_needed).await {
        Ok(resp) => resp,
        Err(e) => finish(api_error(&e), &meta, Caching::None, false),
    }
}

/// A Comet error on a SockJS route: JSON body, with the code also in `Comet-Error`.
fn api_error(e: &ApiError) -> Resp {
    let mut resp = comet_edge::http::error_response(e);
    if let Ok(v) = HeaderValue::from_str(e.code) {
        resp.headers_mut().insert("comet-error", v);
    }
    resp
}

fn method_not_allowed(meta: &RequestMeta, allow: &'static str) -> Resp {
    let mut resp = comet_edge::http::full(
        StatusCode::METHOD_NOT_ALLOWED,
        "text/plain; charset=UTF-8",
        "",
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp.headers_mut().insert(
        "comet-error",
        HeaderValue::from_static("method_not_allowed"),
    );
    finish(resp, meta, Caching::None, false)
}

async fn route(
    req: Request,
    path: &str,
    config: &Config,
    settings: Settings,
    app: App,
    meta: &RequestMeta,
    cookie_needed: bool,
) -> Result<Resp, ApiError> {
    let method = req.method().clone();
    let trimmed = path.strip_suffix('/').unwrap_or(path);
    if trimmed.is_empty() {
        return Ok(match method {
            Method::GET => pages::greeting(meta),
            _ => method_not_allowed(meta, "GET"),
        });
    }
    if trimmed == "/info" {
        return Ok(match method {
            Method::GET => pages::info(meta, cookie_needed),
            Method::OPTIONS => preflight(meta, "OPTIONS, GET"),
            _ => method_not_allowed(meta, "OPTIONS, GET"),
        });
    }
    if pages::is_iframe_path(trimmed) {
        return Ok(match method {
            Method::GET => pages::iframe(meta, req.headers(), &settings.sockjs_url),
            _ => method_not_allowed(meta, "GET"),
        });
    }
    let parts: Vec<&str> = trimmed.trim_start_matches('/').split('/').collect();
    let [server, session, name] = parts.as_slice() else {
        return Ok(finish(not_found(), meta, Caching::None, false));
    };
    let ids_ok = !server.is_empty()
        && !server.contains('.')
        && !session.contains('.')
        && session.len() >= settings.min_session_id;
    let Some(id) = ids_ok
        .then(|| SessionId::from_client(session).ok())
        .flatten()
    else {
        return Ok(finish(not_found(), meta, Caching::None, false));
    };
    let takes = match *name {
        "xhr" | "xhr_streaming" | "xhr_send" | "jsonp_send" => Method::POST,
        "eventsource" | "htmlfile" | "jsonp" => Method::GET,
        _ => return Ok(finish(not_found(), meta, Caching::Year, false)),
    };
    if takes == Method::POST && method == Method::OPTIONS {
        return Ok(preflight(meta, "OPTIONS, POST"));
    }
    if method != takes {
        let allow = if takes == Method::GET {
            "GET"
        } else {
            "POST, OPTIONS"
        };
        return Ok(method_not_allowed(meta, allow));
    }
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let op = match *name {
        "xhr" => SessionOp::Receive(Transport::XhrPolling),
        "xhr_streaming" => SessionOp::Receive(Transport::XhrStreaming),
        "eventsource" => SessionOp::Receive(Transport::EventSource),
        "htmlfile" | "jsonp" => {
            let jsonp = *name == "jsonp";
            let max = if jsonp {
                JSONP_CALLBACK_MAX
            } else {
                HTMLFILE_CALLBACK_MAX
            };
            let callback = match callback(&query, max) {
                Ok(c) => c,
                Err((code, text)) => {
                    let refused = text_error(StatusCode::INTERNAL_SERVER_ERROR, code, text);
                    return Ok(finish(refused, meta, Caching::None, true));
                }
            };
            SessionOp::Receive(if jsonp {
                Transport::Jsonp { callback }
            } else {
                Transport::HtmlFile { callback }
            })
        }
        "xhr_send" => SessionOp::Send(SendKind::Xhr),
        _ => SessionOp::Send(SendKind::Jsonp),
    };
    let ctx = Rc::new(context(config, settings, app).await?);
    let resp = match op {
        SessionOp::Receive(transport) => receive::receive(ctx, transport, id)
            .await
            .inspect_err(forget_on_store_error)?,
        SessionOp::Send(kind) => send::send(&ctx, kind, &id, req).await,
    };
    Ok(finish(resp, meta, Caching::None, true))
}

/// What a session URL asks for.
enum SessionOp {
    /// A receiving request on this transport.
    Receive(Transport),
    /// `xhr_send` or `jsonp_send`.
    Send(SendKind),
}

/// The `c=` (or `callback=`) name of an htmlfile/jsonp request, or SockJS's refusal (code,
/// text).
fn callback(query: &Query, max: usize) -> Result<String, (&'static str, &'static str)> {
    let Some(callback) = query.get("c").or_else(|| query.get("callback")) else {
        return Err(("callback_required", "\"callback\" parameter required"));
    };
    if !valid_callback(callback, max) {
        return Err(("invalid_callback", "invalid \"callback\" parameter"));
    }
    Ok(callback.to_owned())
}

async fn context(config: &Config, settings: Settings, app: App) -> Result<Ctx, ApiError> {
    let inst = instance(config).await?;
    let sessions = sessions(config, settings.disconnect_delay).await?;
    Ok(Ctx {
        config: config.clone(),
        settings,
        inst,
        sessions,
        app,
    })
}

/// After a store failure, the next request reconnects.
pub(crate) fn forget_on_store_error(e: &ApiError) {
    if e.status == StatusCode::SERVICE_UNAVAILABLE && e.code != "too_many_held_requests" {
        reset_instance();
        reset_sessions();
    }
}
