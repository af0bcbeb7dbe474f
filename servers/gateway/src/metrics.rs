//! Prometheus metrics per route and per upstream instance: request counts,
//! errors, and latency summaries with P50 / P95 / P99.
//!
//! Each gateway owns its recorder (not the process-global one), so several
//! gateways in one process (tests, or a gateway next to an API server)
//! never mix their series. Handles are cached per label set, so the hot path
//! is a map lookup under a read lock and atomic updates.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use metrics::{Counter, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
use parking_lot::RwLock;

const METADATA: Metadata<'static> = Metadata::new("bazaar_gateway", Level::INFO, Some(module_path!()));

/// The series of one label set.
#[derive(Clone)]
struct Series {
    requests: Counter,
    errors: Counter,
    latency: Histogram,
}

/// The gateway's metrics.
pub struct GatewayMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    routes: RwLock<HashMap<String, Series>>,
    /// By pool, then instance: lookups borrow `&str`, no allocation.
    upstreams: RwLock<HashMap<String, HashMap<String, Series>>>,
    /// By route, then status.
    statuses: RwLock<HashMap<String, HashMap<u16, Counter>>>,
}

impl fmt::Debug for GatewayMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayMetrics").finish_non_exhaustive()
    }
}

impl Default for GatewayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayMetrics {
    /// A fresh recorder with P50 / P95 / P99 summaries.
    pub fn new() -> Self {
        let recorder = PrometheusBuilder::new()
            .set_quantiles(&[0.5, 0.95, 0.99])
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        Self { recorder, handle, routes: RwLock::default(), upstreams: RwLock::default(), statuses: RwLock::default() }
    }

    fn series(&self, prefix: &str, labels: Vec<Label>) -> Series {
        let key = |name: &str| Key::from_parts(format!("{prefix}_{name}"), labels.clone());
        Series {
            requests: self.recorder.register_counter(&key("requests_total"), &METADATA),
            errors: self.recorder.register_counter(&key("errors_total"), &METADATA),
            latency: self.recorder.register_histogram(&key("duration_seconds"), &METADATA),
        }
    }

    /// A request answered on `route` (or `"unmatched"`) with `status`.
    pub fn route(&self, route: &str, status: u16, elapsed: Duration) {
        let found = self.routes.read().get(route).cloned();
        let series = found.unwrap_or_else(|| {
            let s = self.series("gateway_route", vec![Label::new("route", route.to_owned())]);
            self.routes.write().entry(route.to_owned()).or_insert(s).clone()
        });
        series.requests.increment(1);
        if status >= 500 {
            series.errors.increment(1);
        }
        series.latency.record(elapsed.as_secs_f64());
        let counter = self.statuses.read().get(route).and_then(|m| m.get(&status)).cloned();
        let counter = counter.unwrap_or_else(|| {
            let labels = vec![Label::new("route", route.to_owned()), Label::new("status", status.to_string())];
            let c = self.recorder.register_counter(&Key::from_parts("gateway_responses_total", labels), &METADATA);
            self.statuses.write().entry(route.to_owned()).or_default().entry(status).or_insert(c).clone()
        });
        counter.increment(1);
    }

    /// One attempt sent to an instance; `failed` for connect errors,
    /// timeouts and gateway-class statuses (502, 503, 504).
    pub fn upstream(&self, pool: &str, instance: &str, failed: bool, elapsed: Duration) {
        let found = self.upstreams.read().get(pool).and_then(|m| m.get(instance)).cloned();
        let series = found.unwrap_or_else(|| {
            let labels = vec![Label::new("pool", pool.to_owned()), Label::new("instance", instance.to_owned())];
            let s = self.series("gateway_upstream", labels);
            self.upstreams.write().entry(pool.to_owned()).or_default().entry(instance.to_owned()).or_insert(s).clone()
        });
        series.requests.increment(1);
        if failed {
            series.errors.increment(1);
        }
        series.latency.record(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains summary windows so memory stays bounded; call periodically.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}
