//! Logging and metrics shared by every Bazaar server in a process:
//! `tracing` to stderr (human-readable or JSON), and the one Prometheus
//! recorder that the HTTP server, the gRPC server, the worker and anything
//! else in the process record into.
//!
//! # Example
//! ```
//! bazaar_telemetry::init("info", false);
//! // The recorder is installed on first use, before anything is recorded.
//! let metrics = bazaar_telemetry::prometheus();
//! metrics::counter!("example_total").increment(1);
//! assert!(metrics.render().contains("example_total 1"));
//! ```

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Installs the global subscriber with filter `level` (an `EnvFilter`
/// directive; `info` when it does not parse), writing JSON lines when
/// `json`, else human-readable lines (coloured on a terminal). Later calls
/// (a second server in one test process) leave the first in place.
pub fn init(level: &str, json: bool) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_span_events(FmtSpan::NONE);
    let _already_set = if json {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
}

/// Checks a log filter directive (`info`, `warn,bazaar=debug`).
///
/// # Errors
/// Why the directive does not parse.
pub fn check_filter(directive: &str) -> Result<(), String> {
    EnvFilter::try_new(directive).map(|_| ()).map_err(|e| e.to_string())
}

/// Request latency buckets in seconds. Buckets (a Prometheus histogram)
/// rather than the exporter's default summary, because histograms can be
/// summed across replicas and quantiles cannot.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The process-wide Prometheus recorder, installed on first use. The
/// `metrics` facade has one global recorder, so every server in a process
/// (`bazaar serve` runs HTTP, gRPC and the worker together) records into it
/// and any of them can render it on `/metrics`.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = || {
                PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".into()), LATENCY_BUCKETS)
                    .expect("non-empty buckets")
            };
            builder().install_recorder().unwrap_or_else(|_| {
                tracing::warn!("another metrics recorder was installed first; /metrics will not show Bazaar's metrics");
                builder().build_recorder().handle()
            })
        })
        .clone()
}
