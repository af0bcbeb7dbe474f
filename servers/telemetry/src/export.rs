//! Span export: a bounded queue in front of the OTLP exporter, drained by
//! one task on the process's runtime.
//!
//! The SDK's own batch processor counts the spans it drops only in a log
//! line at shutdown; an operator needs them as a metric while the collector
//! is down, so the queue is ours: a request only ever `try_send`s its span
//! (never waits), a full queue drops it and counts it in
//! `bazaar_trace_spans_dropped_total{reason="queue_full"}`, and a batch the
//! collector refused or did not answer in time is dropped and counted with
//! `reason="export_failed"`.

use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::{mpsc, oneshot};

/// Spans waiting for export at most; beyond, new spans are dropped.
pub const QUEUE_CAPACITY: usize = 4096;
/// Spans sent in one export request at most.
pub const MAX_BATCH: usize = 512;
/// How long a span waits for a batch to fill before it is sent anyway.
pub const SCHEDULED_DELAY: Duration = Duration::from_millis(500);
/// How long one export may take before its batch counts as failed.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The counter of spans that never reached the collector.
pub const DROPPED_METRIC: &str = "bazaar_trace_spans_dropped_total";
/// The counter of spans the collector accepted.
pub const EXPORTED_METRIC: &str = "bazaar_trace_spans_exported_total";

enum Message {
    Span(Box<SpanData>),
    Flush(oneshot::Sender<()>),
}

/// The span processor: hands finished spans to the export task.
#[derive(Debug)]
pub(crate) struct QueueProcessor {
    queue: mpsc::Sender<Message>,
}

/// The handle that flushes the queue (the servers' graceful shutdown).
#[derive(Debug, Clone)]
pub(crate) struct Flusher {
    queue: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Span(_) => "Span",
            Self::Flush(_) => "Flush",
        })
    }
}

/// Starts the export task on the current runtime.
///
/// # Panics
/// Outside a Tokio runtime.
pub(crate) fn start<E: SpanExporter + 'static>(exporter: E) -> (QueueProcessor, Flusher) {
    let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
    tokio::spawn(run(exporter, rx));
    (QueueProcessor { queue: queue.clone() }, Flusher { queue })
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.queue.try_send(Message::Span(Box::new(span))).is_err() {
            metrics::counter!(DROPPED_METRIC, "reason" => "queue_full").increment(1);
        }
    }

    /// Asks the task to export what it holds, without waiting: this is
    /// called from synchronous code, possibly on a runtime thread that the
    /// task needs. [`Flusher::flush`] is the waiting one.
    fn force_flush(&self) -> OTelSdkResult {
        let (done, _) = oneshot::channel();
        self.queue.try_send(Message::Flush(done)).map_err(|e| OTelSdkError::InternalFailure(e.to_string()))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.force_flush()
    }
}

impl Flusher {
    /// Exports every span queued so far; gives up after `timeout` (the
    /// collector is down: those spans are lost, and counted).
    pub(crate) async fn flush(&self, timeout: Duration) -> bool {
        let (done, finished) = oneshot::channel();
        let flushed = async { self.queue.send(Message::Flush(done)).await.is_ok() && finished.await.is_ok() };
        tokio::time::timeout(timeout, flushed).await.unwrap_or(false)
    }
}

async fn run<E: SpanExporter>(exporter: E, mut rx: mpsc::Receiver<Message>) {
    let mut batch: Vec<SpanData> = Vec::with_capacity(MAX_BATCH);
    let mut tick = tokio::time::interval(SCHEDULED_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Message::Span(span)) => {
                    batch.push(*span);
                    if batch.len() >= MAX_BATCH {
                        export(&exporter, &mut batch).await;
                    }
                }
                Some(Message::Flush(done)) => {
                    // Everything queued before the flush request is already in `batch`.
                    export(&exporter, &mut batch).await;
                    let _ = done.send(());
                }
                None => {
                    export(&exporter, &mut batch).await;
                    return;
                }
            },
            _ = tick.tick() => export(&exporter, &mut batch).await,
        }
    }
}

async fn export<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::replace(batch, Vec::with_capacity(MAX_BATCH));
    let count = spans.len() as u64;
    match tokio::time::timeout(EXPORT_TIMEOUT, exporter.export(spans)).await {
        Ok(Ok(())) => metrics::counter!(EXPORTED_METRIC).increment(count),
        outcome => {
            metrics::counter!(DROPPED_METRIC, "reason" => "export_failed").increment(count);
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {EXPORT_TIMEOUT:?}"),
            };
            // Debug, not warn: a collector that is down would otherwise
            // fill the logs at every batch; the counter is the signal.
            tracing::debug!(target: "bazaar_telemetry", spans = count, error = %why, "span export failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    use std::sync::{Arc, Mutex};

    use opentelemetry_sdk::trace::SdkTracerProvider;

    use super::*;

    /// Keeps the names of the spans it is given.
    #[derive(Debug, Clone, Default)]
    struct Names(Arc<Mutex<Vec<String>>>);

    impl SpanExporter for Names {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch.into_iter().map(|s| s.name.into_owned()));
            Ok(())
        }
    }

    #[tokio::test]
    async fn spans_are_exported_by_the_task_and_a_flush_waits_for_them() {
        let exporter = Names::default();
        let (processor, flusher) = start(exporter.clone());
        let provider = SdkTracerProvider::builder().with_span_processor(processor).build();
        let tracer = provider.tracer("test");
        tracer.in_span("one", |_| {});
        tracer.in_span("two", |_| {});
        assert!(flusher.flush(Duration::from_secs(5)).await);
        assert_eq!(*exporter.0.lock().unwrap(), ["one", "two"]);
    }

    /// An exporter that never answers (a collector that accepts the
    /// connection and hangs), so the queue fills.
    #[derive(Debug, Clone, Default)]
    struct Stuck;

    impl SpanExporter for Stuck {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_full_queue_drops_spans_instead_of_blocking_and_counts_them() {
        let metrics = crate::prometheus();
        let (processor, flusher) = start(Stuck);
        let provider = SdkTracerProvider::builder().with_span_processor(processor).build();
        let tracer = provider.tracer("test");
        // Far more than the queue holds: every call returns at once.
        for _ in 0..(QUEUE_CAPACITY + MAX_BATCH) * 2 {
            tracer.in_span("span", |_| {});
        }
        assert!(!flusher.flush(Duration::from_millis(50)).await, "the stuck exporter cannot flush");
        let rendered = metrics.render();
        assert!(rendered.contains(r#"bazaar_trace_spans_dropped_total{reason="queue_full"}"#), "{rendered}");
    }
}
