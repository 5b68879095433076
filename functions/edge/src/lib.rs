//! What every Comet function shares.
//!
//! Function crates are thin: they parse a request with [`http`], call the state engine
//! through the instance's [`store::Instance`], and frame the answer with [`framing`].
//! [`config`] reads Spin variables; [`error`] is the one place errors become responses.

#![deny(missing_docs)]

pub mod access;
pub mod auth;
pub mod config;
pub mod error;
pub mod framing;
pub mod http;
pub mod rate;
pub mod store;

use std::cell::RefCell;

pub use config::Config;
pub use error::ApiError;

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
}

/// The configuration, read from Spin variables once per instance (they cannot change while
/// an instance lives).
///
/// # Errors
/// 500 `bad_configuration` naming the variable.
pub async fn config() -> Result<Config, ApiError> {
    if let Some(c) = CONFIG.with(|c| c.borrow().clone()) {
        return Ok(c);
    }
    let loaded = Config::load().await.map_err(|e| {
        ApiError::new(
            ::http::StatusCode::INTERNAL_SERVER_ERROR,
            "bad_configuration",
            e.to_string(),
        )
    })?;
    CONFIG.with(|c| *c.borrow_mut() = Some(loaded.clone()));
    Ok(loaded)
}

/// Counts held requests of this instance and refuses more than the configured cap, so a
/// flood of subscribers degrades into 503s instead of exhausting memory.
pub struct HeldGuard(());

thread_local! {
    static HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl HeldGuard {
    /// Takes a slot.
    ///
    /// # Errors
    /// 503 `too_many_held_requests` with `Retry-After` when the instance is full.
    pub fn acquire(config: &Config) -> Result<Self, ApiError> {
        HELD.with(|h| {
            if h.get() >= config.max_held_requests {
                return Err(ApiError::new(
                    ::http::StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_held_requests",
                    "this instance holds its maximum of waiting requests; retry shortly",
                )
                .retry_after(2));
            }
            h.set(h.get() + 1);
            Ok(HeldGuard(()))
        })
    }

    /// Requests held right now.
    pub fn count() -> usize {
        HELD.with(std::cell::Cell::get)
    }
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        HELD.with(|h| h.set(h.get().saturating_sub(1)));
    }
}
