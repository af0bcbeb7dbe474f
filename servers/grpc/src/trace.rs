//! The `rpc` span of every call: it continues the caller's W3C trace
//! context (`traceparent` / `tracestate` metadata) when there is one, with
//! the RPC semantic-convention attributes, and runs the call with the
//! span's context current, so events the call causes carry it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bazaar_core::events::{TraceContext, continue_trace, propagator};
use tonic::codegen::http;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument as _;

/// The layer that wraps each call in its `rpc` span.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = Traced<S>;
    fn layer(&self, inner: S) -> Traced<S> {
        Traced { inner }
    }
}

/// A service whose calls run in their `rpc` span.
#[derive(Debug, Clone)]
pub struct Traced<S> {
    inner: S,
}

/// The caller's trace context from the call's metadata, when valid.
pub fn incoming_trace(headers: &http::HeaderMap) -> Option<TraceContext> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    TraceContext::parse(header("traceparent")?, header("tracestate"))
}

impl<S, B, R> Service<http::Request<B>> for Traced<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // `/bazaar.v1.OrderService/PlaceOrder`
        let path = request.uri().path();
        let (service, method) = path.trim_start_matches('/').split_once('/').unwrap_or((path, ""));
        let span = tracing::info_span!(
            "rpc",
            otel.name = path.trim_start_matches('/'),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        let caller = incoming_trace(request.headers());
        let context = continue_trace(&span, &caller.iter().collect::<Vec<_>>());
        if let Some(context) = &context {
            span.record("trace_id", context.trace_id());
        }
        // Only the propagator's context is the span's own; without one the
        // caller's is handed on unchanged.
        let context = if propagator().is_some() { context } else { caller };
        let call = self.inner.call(request);
        let recorder = span.clone();
        Box::pin(
            TraceContext::maybe_scope(context, async move {
                let response = call.await;
                if let Ok(response) = &response {
                    // Unary errors travel in the headers; trailers (streams) are not seen here.
                    let status = response.headers().get("grpc-status").and_then(|v| v.to_str().ok());
                    recorder.record("rpc.grpc.status_code", status.and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
                }
                response
            })
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    /// Answers each call with the trace context current while its future
    /// runs (where a tonic handler does its work).
    #[derive(Clone)]
    struct Seen;

    impl Service<http::Request<()>> for Seen {
        type Response = http::Response<Option<TraceContext>>;
        type Error = Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            Box::pin(async { Ok(http::Response::new(TraceContext::current())) })
        }
    }

    fn call(headers: &[(&str, &str)]) -> http::Request<()> {
        let mut request = http::Request::builder().uri("/bazaar.v1.OrderService/PlaceOrder");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap()
    }

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[tokio::test]
    async fn a_call_runs_in_its_callers_trace_context() {
        let mut traced = TraceLayer.layer(Seen);
        // This process installs no propagator: the caller's context is handed on unchanged.
        let seen = traced.call(call(&[("traceparent", PARENT), ("tracestate", "vendor=x")])).await.unwrap();
        let seen = seen.into_body().expect("the caller's context inside the call");
        assert_eq!((seen.traceparent(), seen.tracestate()), (PARENT, Some("vendor=x")));
    }

    #[tokio::test]
    async fn a_call_without_a_valid_traceparent_starts_no_foreign_trace() {
        let mut traced = TraceLayer.layer(Seen);
        assert_eq!(traced.call(call(&[])).await.unwrap().into_body(), None);
        let garbled = [("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")];
        assert_eq!(traced.call(call(&garbled)).await.unwrap().into_body(), None, "an all-zero trace id is invalid");
        assert_eq!(incoming_trace(call(&[("traceparent", "not a header")]).headers()), None);
    }
}
