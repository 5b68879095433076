//! Which channels this runner is holding responses open for, for the operator page.
//!
//! Every application request that names channels with the `channel` query parameter (repeated
//! or comma-separated, as Comet's subscribe endpoints take them) counts under each of them from
//! the moment it is routed until its response body ends — a held long-poll, an SSE or NDJSON
//! stream, a SockJS receiver. It is this process's view only: other runners and Spin instances
//! keep their own, and the store knows nothing of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use percent_encoding::percent_decode_str;

/// Longest channel list one request may add (larger ones count their first channels only).
const MAX_CHANNELS_PER_REQUEST: usize = 100;

/// Open responses by channel.
#[derive(Default)]
pub struct Occupancy {
    open: Mutex<HashMap<String, usize>>,
}

/// Counts one response under its channels until dropped.
pub struct Hold {
    occupancy: Arc<Occupancy>,
    channels: Vec<String>,
}

impl Occupancy {
    /// Starts counting a request with this query string; `None` when it names no channel.
    pub fn hold(self: &Arc<Self>, query: Option<&str>) -> Option<Hold> {
        let channels = channels_of(query?);
        if channels.is_empty() {
            return None;
        }
        let mut open = self.lock();
        for ch in &channels {
            *open.entry(ch.clone()).or_default() += 1;
        }
        Some(Hold {
            occupancy: self.clone(),
            channels,
        })
    }

    /// `(channel, open responses)`, most occupied first (ties by name), at most `limit`.
    pub fn top(&self, limit: usize) -> Vec<(String, usize)> {
        let mut all: Vec<(String, usize)> =
            self.lock().iter().map(|(c, n)| (c.clone(), *n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(limit);
        all
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut open = self.occupancy.lock();
        for ch in &self.channels {
            if let Some(n) = open.get_mut(ch) {
                *n -= 1;
                if *n == 0 {
                    open.remove(ch);
                }
            }
        }
    }
}

/// The distinct channel names of a query string's `channel` parameters.
fn channels_of(query: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for pair in query.split('&') {
        let Some(value) = pair.strip_prefix("channel=") else {
            continue;
        };
        let value = value.replace('+', " ");
        let decoded = percent_decode_str(&value).decode_utf8_lossy();
        for name in decoded.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if out.len() < MAX_CHANNELS_PER_REQUEST && !out.iter().any(|c| c == name) {
                out.push(name.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_each_channel_of_a_request_until_its_hold_ends() {
        let occupancy = Arc::new(Occupancy::default());
        let a = occupancy.hold(Some("channel=a,b&timeout=5&channel=c%2Fd"));
        let b = occupancy.hold(Some("channel=a&channel=a"));
        assert!(occupancy.hold(Some("timeout=5")).is_none());
        assert!(occupancy.hold(None).is_none());
        assert_eq!(
            occupancy.top(10),
            [("a".into(), 2), ("b".into(), 1), ("c/d".into(), 1)]
        );
        drop(a);
        assert_eq!(occupancy.top(10), [("a".into(), 1)]);
        drop(b);
        assert!(occupancy.top(10).is_empty());
    }
}
