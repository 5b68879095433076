//! The publish rate limit: a token bucket per instance, counted in messages.
//!
//! One publish key means one bucket (client publishes through `/v1/send` share it); it refills
//! at `publish_rate_limit` messages per second and holds at most one second's worth (or one
//! maximal batch, whichever is larger, so every valid batch can pass). Like
//! `max_held_requests` it is per instance: a deployment's limit is this times its instances.
//! Memory: two numbers.

use std::cell::Cell;

use http::StatusCode;

use crate::config::Config;
use crate::error::ApiError;

thread_local! {
    static BUCKET: Cell<(f64, u64)> = const { Cell::new((f64::NAN, 0)) };
}

/// Takes `n` messages' worth from the bucket at `now_ms`, or says how many whole seconds
/// until they would fit. `rate` 0 disables the limit.
pub fn take(n: usize, rate: u64, max_batch: usize, now_ms: u64) -> Result<(), u32> {
    if rate == 0 {
        return Ok(());
    }
    let rate = rate as f64;
    let capacity = rate.max(max_batch as f64);
    BUCKET.with(|b| {
        let (tokens, last) = b.get();
        let tokens = if tokens.is_nan() {
            capacity
        } else {
            let elapsed = now_ms.saturating_sub(last) as f64 / 1000.0;
            (tokens + elapsed * rate).min(capacity)
        };
        let wanted = n as f64;
        if tokens >= wanted {
            b.set((tokens - wanted, now_ms));
            Ok(())
        } else {
            b.set((tokens, now_ms));
            let wait = ((wanted - tokens) / rate).ceil();
            Err(if wait < 1.0 {
                1
            } else {
                wait.min(3600.0) as u32
            })
        }
    })
}

/// Admits `n` messages under the configured rate at `now_ms`.
///
/// # Errors
/// 429 `rate_limited` with `Retry-After`.
pub fn admit(n: usize, config: &Config, now_ms: u64) -> Result<(), ApiError> {
    take(n, config.publish_rate_limit, config.max_batch, now_ms).map_err(|wait| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this instance takes at most {} messages per second",
                config.publish_rate_limit
            ),
        )
        .retry_after(wait)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_and_caps_the_burst() {
        // Fresh bucket: capacity max(rate, max_batch) = 10.
        assert_eq!(take(10, 5, 10, 0), Ok(()));
        assert_eq!(take(1, 5, 10, 0), Err(1));
        // 1 s later: 5 more.
        assert_eq!(take(5, 5, 10, 1000), Ok(()));
        assert_eq!(take(5, 5, 10, 1000), Err(1));
        // A long pause refills only to capacity; 20 needs 2 s at 5/s beyond the 10 there.
        assert_eq!(take(20, 5, 10, 100_000), Err(2));
        assert_eq!(take(10, 5, 10, 100_000), Ok(()));
        assert_eq!(take(1_000_000, 0, 10, 0), Ok(()), "0 disables the limit");
    }
}
