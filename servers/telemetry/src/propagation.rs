//! The OpenTelemetry side of [`bazaar_core::events::Propagator`]: W3C
//! contexts (plain strings in the core) become remote parents and links of
//! `tracing` spans, and spans' contexts become strings again.

use std::str::FromStr as _;

use bazaar_core::events::{Propagator, TraceContext};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The propagator of a process that exports traces.
#[derive(Debug, Clone, Copy, Default)]
pub struct OtelPropagator;

/// The OpenTelemetry span context of a W3C context.
pub fn span_context(context: &TraceContext) -> Option<SpanContext> {
    let trace_id = TraceId::from_hex(context.trace_id()).ok()?;
    let span_id = SpanId::from_hex(context.span_id()).ok()?;
    let flags = if context.sampled() { TraceFlags::SAMPLED } else { TraceFlags::default() };
    let state = context.tracestate().and_then(|s| TraceState::from_str(s).ok()).unwrap_or_default();
    Some(SpanContext::new(trace_id, span_id, flags, true, state))
}

/// The W3C context of an OpenTelemetry span context; `None` when invalid.
pub fn trace_context(span: &SpanContext) -> Option<TraceContext> {
    if !span.is_valid() {
        return None;
    }
    let traceparent = format!("00-{}-{}-{:02x}", span.trace_id(), span.span_id(), span.trace_flags().to_u8());
    let tracestate = span.trace_state().header();
    TraceContext::parse(&traceparent, Some(&tracestate))
}

impl Propagator for OtelPropagator {
    fn set_parent(&self, span: &tracing::Span, parent: &TraceContext) {
        if let Some(remote) = span_context(parent) {
            // Fails only for a span that has already started (entered);
            // callers set the parent right after creating it.
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        }
    }

    fn add_link(&self, span: &tracing::Span, linked: &TraceContext) {
        if let Some(linked) = span_context(linked) {
            span.add_link(linked);
        }
    }

    fn context_of(&self, span: &tracing::Span) -> Option<TraceContext> {
        trace_context(&span.context().span().span_context().clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn w3c_strings_and_span_contexts_round_trip() {
        let context =
            TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Some("k=v")).unwrap();
        let span = span_context(&context).unwrap();
        assert!(span.is_remote() && span.is_sampled());
        assert_eq!(trace_context(&span), Some(context));
        assert_eq!(trace_context(&SpanContext::empty_context()), None);
    }
}
