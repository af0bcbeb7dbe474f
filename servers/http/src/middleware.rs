//! Cross-cutting request handling: the request span, request metrics, the
//! client address and the auth routes' sign-in quota, and the JSON 404.
//!
//! The layers themselves are assembled in [`crate::router`]; this module
//! holds the pieces that are ours rather than tower-http's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::trace::MakeSpan;

use axum::http::HeaderValue;
use bazaar_core::auth::client_ip::TrustedProxies;
use bazaar_core::events::{TraceContext, continue_trace, propagator};

use crate::error::{ApiError, REQUEST_ID};

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C vendor trace state header.
pub const TRACESTATE: &str = "tracestate";
use crate::state::AppState;

/// The route label of requests that matched no route: one label for all of
/// them, so scanners probing random URLs cannot blow up metric cardinality.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The route template a request matched (`/v1/products/{id}`), never the
/// raw URI, so ids do not become label values.
fn route_of<B>(request: &axum::http::Request<B>) -> &str {
    request.extensions().get::<MatchedPath>().map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
}

/// Makes the `http_request` span of each request: method, matched route,
/// request id (set by `SetRequestIdLayer`, which runs first) and the trace
/// id, so every log line of a request can be tied to the id the client saw
/// and to its trace. The span continues the caller's trace when the request
/// carries a valid W3C `traceparent` (a new trace starts otherwise), with
/// the HTTP server semantic-convention attributes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> tracing::Span {
        let request_id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let route = route_of(request);
        let span = tracing::info_span!(
            "http_request",
            method = %request.method(),
            route,
            request_id,
            trace_id = tracing::field::Empty,
            otel.name = format!("{} {route}", request.method()),
            otel.kind = "server",
            http.request.method = %request.method(),
            http.route = route,
            http.response.status_code = tracing::field::Empty,
        );
        let caller = incoming_trace(request.headers());
        let context = continue_trace(&span, &caller.iter().collect::<Vec<_>>());
        if let Some(context) = &context {
            span.record("trace_id", context.trace_id());
        }
        span
    }
}

/// The caller's W3C trace context, when its `traceparent` is valid.
pub fn incoming_trace(headers: &axum::http::HeaderMap) -> Option<TraceContext> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    TraceContext::parse(header(TRACEPARENT)?, header(TRACESTATE))
}

/// Middleware, inside the request span: runs the request with the span's
/// trace context current (the events it causes carry it), answers with
/// the `traceparent` of the request span so a client (or a user's error
/// report) can name the trace, and records the status on the span.
pub async fn trace_context(request: Request, next: Next) -> Response {
    let span = tracing::Span::current();
    let context = match propagator() {
        Some(propagator) => propagator.context_of(&span),
        // Not tracing here: the caller's trace is still handed on.
        None => incoming_trace(request.headers()),
    };
    let mut response = TraceContext::maybe_scope(context.clone(), next.run(request)).await;
    span.record("http.response.status_code", response.status().as_u16());
    if let Some(value) = context.and_then(|c| HeaderValue::from_str(c.traceparent()).ok()) {
        response.headers_mut().insert(TRACEPARENT, value);
    }
    response
}

/// Middleware: counts every response in `http_requests_total` and times it
/// in `http_request_duration_seconds`, both labelled `{method, route, status}`.
pub async fn track_metrics(request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = route_of(&request).to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [("method", method), ("route", route), ("status", response.status().as_u16().to_string())];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

/// The JSON 404 of unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// The client's address by the core's one rule
/// ([`TrustedProxies::client`]): the socket peer, or, when it is one of
/// [`trusted_proxies`](crate::HttpSettings::trusted_proxies), the
/// right-most forwarded address that is not; loopback for in-process
/// callers (tests) that have no peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    fn of(parts: &Parts, proxies: &TrustedProxies) -> IpAddr {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |ConnectInfo(peer)| peer.ip());
        proxies.client(peer, |name| parts.headers.get_all(name).iter().filter_map(|v| v.to_str().ok()))
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Self(Self::of(parts, &state.settings.trusted_proxies)))
    }
}

/// Extracting this spends one attempt of the client's sign-in quota (429
/// with `Retry-After` when it is used up). Put it before the body
/// extractor so that malformed requests count too.
#[derive(Debug, Clone, Copy)]
pub struct AuthRateLimit;

impl FromRequestParts<AppState> for AuthRateLimit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = ClientIp::of(parts, &state.settings.trusted_proxies);
        state.market.auth.admit_client(ip).await?;
        Ok(Self)
    }
}
