//! Logging and metrics for every Bazaar process: `tracing` to stderr,
//! human-readable on a terminal and JSON otherwise (or as configured), and
//! the one Prometheus recorder that the HTTP server, the worker and anything
//! else in the process record into.

use std::io::IsTerminal;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogFormat;

/// Installs the global subscriber; later calls (a second server in one
/// test process) leave the first in place.
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_span_events(FmtSpan::NONE);
    let _already_set = if json {
        builder.json().with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).try_init()
    };
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
