//! Logging, traces and metrics shared by every Bazaar server in a process:
//! `tracing` to stderr (human-readable or JSON, with `trace_id`/`span_id`
//! when traces are exported), OpenTelemetry trace export over OTLP
//! ([`init_with_traces`], configured by the standard `OTEL_*` variables,
//! off without an endpoint), and the one Prometheus recorder that the HTTP
//! server, the gRPC server, the worker and anything else in the process
//! record into.
//!
//! # Example
//! ```
//! bazaar_telemetry::init("info", false);
//! // The recorder is installed on first use, before anything is recorded.
//! let metrics = bazaar_telemetry::prometheus();
//! metrics::counter!("example_total").increment(1);
//! assert!(metrics.render().contains("example_total 1"));
//! ```

mod export;
mod propagation;
mod settings;

use std::io::IsTerminal as _;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::KeyValue;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter as _};
use tracing_subscriber::fmt::format::{FmtSpan, Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

pub use crate::export::{DROPPED_METRIC, EXPORT_TIMEOUT, EXPORTED_METRIC, MAX_BATCH, QUEUE_CAPACITY, SCHEDULED_DELAY};
pub use crate::propagation::{OtelPropagator, span_context, trace_context};
pub use crate::settings::{Protocol, RawTraceSettings, Sampler, SettingError, TraceSettings};

/// Installs the global subscriber with filter `level` (an `EnvFilter`
/// directive; `info` when it does not parse), writing JSON lines when
/// `json`, else human-readable lines (coloured on a terminal). Later calls
/// (a second server in one test process) leave the first in place.
pub fn init(level: &str, json: bool) {
    install(level, json, None);
}

/// What a process keeps while it runs when it exports traces: dropping it
/// stops nothing, [`TelemetryGuard::shutdown`] sends what is queued.
#[derive(Debug, Default)]
#[must_use = "shut it down at the end so queued spans are sent"]
pub struct TelemetryGuard {
    traces: Option<(SdkTracerProvider, export::Flusher)>,
}

impl TelemetryGuard {
    /// Whether spans are exported.
    pub fn is_exporting(&self) -> bool {
        self.traces.is_some()
    }

    /// Sends the spans still queued, waiting at most `timeout` (a
    /// collector that is down must not hold a stopping process), then
    /// closes the tracer provider.
    pub async fn shutdown(self, timeout: Duration) {
        if let Some((provider, flusher)) = self.traces {
            if !flusher.flush(timeout).await {
                tracing::warn!("the trace collector did not take the last spans in time; they are lost");
            }
            let _ = provider.shutdown();
        }
    }
}

/// [`init`], plus OpenTelemetry trace export when `traces` is set: spans go
/// to the collector in batches through a bounded queue (full: dropped and
/// counted in [`DROPPED_METRIC`], never waited for), the process's spans
/// carry the resource `service.name` (`role` unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` name it), `service.version` and
/// `bazaar.role`, and [`OtelPropagator`] is installed so events continue
/// the traces of the requests that caused them. Without `traces` nothing
/// of OpenTelemetry is installed: spans cost what they cost before.
///
/// # Errors
/// When the exporter cannot be built from the settings (named as the
/// variable it comes from).
///
/// # Panics
/// With `traces`, outside a Tokio runtime (the export task runs on it).
pub fn init_with_traces(
    level: &str,
    json: bool,
    traces: Option<&TraceSettings>,
    role: &str,
) -> Result<TelemetryGuard, SettingError> {
    let Some(settings) = traces else {
        install(level, json, None);
        return Ok(TelemetryGuard::default());
    };
    let resource = resource(settings, role);
    let mut exporter = exporter(settings)?;
    exporter.set_resource(&resource);
    let (processor, flusher) = export::start(exporter);
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(sampler(settings.sampler))
        .with_resource(resource)
        .build();
    install(level, json, Some(provider.tracer("bazaar")));
    bazaar_core::events::install_propagator(Box::new(OtelPropagator));
    Ok(TelemetryGuard { traces: Some((provider, flusher)) })
}

fn resource(settings: &TraceSettings, role: &str) -> Resource {
    // Later entries win: the role's name, then OTEL_RESOURCE_ATTRIBUTES,
    // then OTEL_SERVICE_NAME, as the specification orders them.
    let mut attributes: Vec<(String, String)> = vec![
        ("service.name".into(), role.into()),
        ("service.version".into(), env!("CARGO_PKG_VERSION").into()),
        ("bazaar.role".into(), role.into()),
    ];
    attributes.extend(settings.resource_attributes.iter().cloned());
    if let Some(name) = &settings.service_name {
        attributes.push(("service.name".into(), name.clone()));
    }
    let mut unique: Vec<(String, String)> = Vec::new();
    for (key, value) in attributes {
        unique.retain(|(k, _)| *k != key);
        unique.push((key, value));
    }
    Resource::builder_empty().with_attributes(unique.into_iter().map(|(k, v)| KeyValue::new(k, v))).build()
}

fn exporter(settings: &TraceSettings) -> Result<opentelemetry_otlp::SpanExporter, SettingError> {
    let built = match settings.protocol {
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", settings.endpoint.trim_end_matches('/')))
            .with_timeout(export::EXPORT_TIMEOUT)
            .with_headers(Default::default())
            .build(),
        Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(settings.endpoint.clone())
            .with_timeout(export::EXPORT_TIMEOUT)
            .build(),
    };
    built.map_err(|e| SettingError { setting: "OTEL_EXPORTER_OTLP_ENDPOINT", reason: e.to_string() })
}

fn sampler(sampler: Sampler) -> opentelemetry_sdk::trace::Sampler {
    use opentelemetry_sdk::trace::Sampler as S;
    match sampler {
        Sampler::AlwaysOn => S::AlwaysOn,
        Sampler::AlwaysOff => S::AlwaysOff,
        Sampler::TraceIdRatio(ratio) => S::TraceIdRatioBased(ratio),
        Sampler::ParentBasedAlwaysOn => S::ParentBased(Box::new(S::AlwaysOn)),
        Sampler::ParentBasedAlwaysOff => S::ParentBased(Box::new(S::AlwaysOff)),
        Sampler::ParentBasedTraceIdRatio(ratio) => S::ParentBased(Box::new(S::TraceIdRatioBased(ratio))),
    }
}

fn install(level: &str, json: bool, tracer: Option<opentelemetry_sdk::trace::SdkTracer>) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let traced = tracer.is_some();
    let otel = tracer.map(|tracer| {
        tracing_opentelemetry::layer().with_tracer(tracer).with_tracked_inactivity(false).with_threads(false)
    });
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_span_events(FmtSpan::NONE);
    let _already_set = if json {
        let format = Format::default().json().with_current_span(true).with_span_list(false);
        registry
            .with(fmt.fmt_fields(JsonFields::new()).event_format(WithTraceIds { inner: format, traced }).boxed())
            .try_init()
    } else {
        registry.with(fmt.with_ansi(std::io::stderr().is_terminal()).boxed()).try_init()
    };
}

/// The JSON line format with the `trace_id` and `span_id` of the event's
/// span first, so a log line leads to its trace.
struct WithTraceIds {
    inner: Format<Json>,
    traced: bool,
}

impl<S, N> FormatEvent<S, N> for WithTraceIds
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let ids = if self.traced { ctx.parent_span().and_then(|span| ids_of(&span.id())) } else { None };
        let Some((trace_id, span_id)) = ids else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}

fn ids_of(span: &tracing::span::Id) -> Option<(String, String)> {
    // The global dispatcher (the subscriber installed above) answers even
    // from inside its own event callback.
    let context = tracing::dispatcher::get_default(|dispatch| tracing_opentelemetry::get_otel_context(span, dispatch))?;
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| (span_context.trace_id().to_string(), span_context.span_id().to_string()))
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
