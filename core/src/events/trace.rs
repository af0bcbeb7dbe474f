//! W3C trace context carried by events (the CloudEvents distributed-tracing
//! extension: `traceparent`, `tracestate`), as plain strings.
//!
//! The core does not trace: the transport that starts a unit of work (an
//! HTTP or gRPC request) runs it inside [`TraceContext::scope`], and every
//! [`Event`](super::Event) created inside carries that context, so the
//! process that later handles the event continues the same trace. What
//! turns a context into spans is a [`Propagator`] that the process installs
//! once ([`install_propagator`]); without one, contexts pass through
//! untouched (a process that does not trace still forwards the caller's
//! trace).
//!
//! # Example
//! ```
//! # futures::executor::block_on(async {
//! use bazaar_core::events::TraceContext;
//!
//! let parent = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", None).unwrap();
//! assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! let seen = TraceContext::scope(parent.clone(), async { TraceContext::current() }).await;
//! assert_eq!(seen, Some(parent));
//! assert_eq!(TraceContext::current(), None);
//! # });
//! ```

use std::future::Future;
use std::sync::OnceLock;

/// A W3C `traceparent` (checked) with its optional `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
    tracestate: Option<String>,
}

/// The longest `tracestate` kept: the W3C limit is 32 members of at most
/// 256 characters; anything longer is dropped rather than stored per event.
const MAX_TRACESTATE_LEN: usize = 8192;

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// Checks a `traceparent` header (`00-<32 hex trace id>-<16 hex span
    /// id>-<2 hex flags>`, ids not all zero; later versions are read by
    /// their first four fields, as the spec asks) and keeps `tracestate`
    /// when it is printable ASCII of a sane length. `None` when the
    /// `traceparent` is not one: the caller then starts a new trace.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let traceparent = traceparent.trim();
        let mut parts = traceparent.split('-');
        let (version, trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let lower_hex =
            |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        let valid = lower_hex(version, 2)
            && version != "ff"
            && (version != "00" || parts.next().is_none())
            && lower_hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && lower_hex(span_id, 16)
            && span_id.bytes().any(|b| b != b'0')
            && lower_hex(flags, 2);
        if !valid {
            return None;
        }
        let tracestate = tracestate
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE_LEN && s.bytes().all(|b| (0x20..0x7f).contains(&b)))
            .map(str::to_owned);
        Some(Self { traceparent: format!("00-{trace_id}-{span_id}-{flags}"), tracestate })
    }

    /// The `traceparent` value (version `00`).
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` value, when there is one.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The 32 hex digits of the trace id.
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The 16 hex digits of the parent span id.
    pub fn span_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// Whether the caller sampled this trace (flag `01`).
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.traceparent[53..55], 16).is_ok_and(|flags| flags & 1 == 1)
    }

    /// Runs `work` with `context` as the current one (what [`Event`](super::Event)s
    /// created inside carry).
    pub async fn scope<F: Future>(context: TraceContext, work: F) -> F::Output {
        CURRENT.scope(context, work).await
    }

    /// Runs `work` inside `context` when there is one, else as it is.
    pub async fn maybe_scope<F: Future>(context: Option<TraceContext>, work: F) -> F::Output {
        match context {
            Some(context) => Self::scope(context, work).await,
            None => work.await,
        }
    }

    /// The context of the work running now, if any.
    pub fn current() -> Option<TraceContext> {
        CURRENT.try_with(Clone::clone).ok()
    }
}

/// What turns trace contexts into spans: the process's tracing backend
/// (OpenTelemetry in the servers), installed once with
/// [`install_propagator`]. Spans stay `tracing` spans; the propagator only
/// links them to contexts that crossed a process boundary.
pub trait Propagator: Send + Sync + std::fmt::Debug {
    /// Makes `span` a child of the remote `parent`.
    fn set_parent(&self, span: &tracing::Span, parent: &TraceContext);
    /// Links `span` to a context it handles but is not a child of (the
    /// other events of a batch).
    fn add_link(&self, span: &tracing::Span, linked: &TraceContext);
    /// The context of `span`, to hand on; `None` when it is not traced.
    fn context_of(&self, span: &tracing::Span) -> Option<TraceContext>;
}

static PROPAGATOR: OnceLock<Box<dyn Propagator>> = OnceLock::new();

/// Installs the process's propagator; a second call keeps the first (one
/// tracing backend per process). Returns whether this one was installed.
pub fn install_propagator(propagator: Box<dyn Propagator>) -> bool {
    PROPAGATOR.set(propagator).is_ok()
}

/// The installed propagator, if any.
pub fn propagator() -> Option<&'static dyn Propagator> {
    PROPAGATOR.get().map(|p| &**p)
}

/// The context an outbound call made in `span` sends along (`traceparent`
/// on an HTTP request, a mail header): the span's own when this process
/// traces, else the current work's context unchanged, so a caller's trace
/// still reaches the other side.
pub fn outbound_context(span: &tracing::Span) -> Option<TraceContext> {
    match propagator() {
        Some(propagator) => propagator.context_of(span),
        None => TraceContext::current(),
    }
}

/// Makes `span` continue `parents` (the first is the parent, the others
/// links) and returns the context that work inside `span` hands on: the
/// span's own when traced, else the first parent unchanged.
pub fn continue_trace(span: &tracing::Span, parents: &[&TraceContext]) -> Option<TraceContext> {
    let Some(propagator) = propagator() else {
        return parents.first().map(|&p| p.clone());
    };
    if let Some((first, rest)) = parents.split_first() {
        propagator.set_parent(span, first);
        for linked in rest.iter().filter(|l| l.trace_id() != first.trace_id()) {
            propagator.add_link(span, linked);
        }
    }
    propagator.context_of(span).or_else(|| parents.first().map(|&p| p.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read_and_its_parts_are_exposed() {
        let c = TraceContext::parse(VALID, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(c.traceparent(), VALID);
        assert_eq!(c.tracestate(), Some("congo=t61rcWkgMzE"));
        assert_eq!(c.span_id(), "00f067aa0ba902b7");
        assert!(c.sampled());
        assert!(
            !TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", None).unwrap().sampled()
        );
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let c = TraceContext::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what", None).unwrap();
        assert_eq!(c.traceparent(), VALID);
    }

    #[test]
    fn an_unprintable_tracestate_is_dropped_not_the_context() {
        let c = TraceContext::parse(VALID, Some("a=\u{7}")).unwrap();
        assert_eq!(c.tracestate(), None);
    }
}
