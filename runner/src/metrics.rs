//! Prometheus metrics for the admin listener (`/metrics`).
//!
//! A handful of counters kept with atomics and a small map; rendering the text format by hand
//! keeps a metrics registry crate out of the hot path and the build.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    in_flight: AtomicI64,
    instances_live: AtomicI64,
    instances_created: AtomicU64,
    connections_live: AtomicI64,
    responses: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Metrics {
    /// A request entered a component.
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request left a component (response head produced or failed).
    pub fn request_finished(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Records the status a component answered with.
    pub fn count_response(&self, component: &str, status: u16) {
        if let Ok(mut map) = self.responses.lock() {
            *map.entry((component.to_string(), status)).or_default() += 1;
        }
    }

    /// A guest instance was created.
    pub fn instance_created(&self) {
        self.instances_created.fetch_add(1, Ordering::Relaxed);
        self.instances_live.fetch_add(1, Ordering::Relaxed);
    }

    /// A guest instance was dropped.
    pub fn instance_dropped(&self) {
        self.instances_live.fetch_sub(1, Ordering::Relaxed);
    }

    /// A client connection opened (`+1`) or closed (`-1`).
    pub fn connection(&self, delta: i64) {
        self.connections_live.fetch_add(delta, Ordering::Relaxed);
    }

    /// Requests currently inside components.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            &mut out,
            "comet_requests_in_flight",
            "Requests waiting for a component's response head.",
            self.in_flight(),
        );
        gauge(
            &mut out,
            "comet_instances",
            "Live guest instances.",
            self.instances_live.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "comet_connections",
            "Open client connections.",
            self.connections_live.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP comet_instances_created_total Guest instances created.\n# TYPE comet_instances_created_total counter\ncomet_instances_created_total {}",
            self.instances_created.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP comet_kv_ops_total Key-value store operations issued by guests.\n# TYPE comet_kv_ops_total counter\ncomet_kv_ops_total {}",
            crate::kv::KV_OPS.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP comet_requests_total Responses by component and status.\n# TYPE comet_requests_total counter"
        );
        if let Ok(map) = self.responses.lock() {
            for ((component, status), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "comet_requests_total{{component=\"{component}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_in_prometheus_text_format() {
        let m = Metrics::default();
        m.count_response("api", 200);
        m.count_response("api", 200);
        m.request_started();
        let text = m.render();
        assert!(
            text.contains("comet_requests_total{component=\"api\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(text.contains("comet_requests_in_flight 1"), "{text}");
    }
}
