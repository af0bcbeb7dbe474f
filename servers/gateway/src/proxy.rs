//! Forwarding one request to a pool: the bulkhead, the overall and per-try
//! deadlines, retries of idempotent requests inside the pool's budget (each
//! retry on another instance when there is one), and the response streamed
//! back with the bulkhead slot held until its body ends.
//!
//! What is retried: connect failures, attempts past the per-try deadline,
//! and 502 / 503 / 504 answers, for GET, HEAD, OPTIONS, or any request
//! carrying `Idempotency-Key`. A retried request's body must be replayable,
//! so one of known length up to `server.retry_body_limit` is read first;
//! any other body is streamed and the request gets exactly one attempt.
//! The same failures count against the instance's breaker and outlier
//! detection (Envoy's "gateway failures"): a 500 is the application's
//! answer, not a sign the instance is down.

use std::time::Instant;

use bazaar_core::resilience::balance::EndpointId;
use bazaar_core::resilience::retry::{Idempotency, RetryDecision};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use parking_lot::Mutex;

use crate::body::{Guarded, ProxyBody, boxed, full};
use crate::config::{Protocol, ms};
use crate::error::GatewayError;
use crate::gateway::{Context, Route, Shared, id_str};
use crate::headers::{REQUEST_ID, TRACEPARENT, add_forwarded, strip_hop_by_hop, traceparent};
use crate::pool::Pool;

/// Why one attempt produced no response.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// No instance admitted the call.
    NoUpstream,
    /// Connect or protocol failure.
    Failed,
    /// Past the per-try deadline.
    Timeout,
}

/// How far a request may be repeated.
pub(crate) fn idempotency(method: &Method, headers: &HeaderMap) -> Idempotency {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        Idempotency::Idempotent
    } else if headers.contains_key("idempotency-key") {
        Idempotency::MarkedSafe
    } else {
        Idempotency::NonIdempotent
    }
}

fn gateway_failure(status: StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

/// The parts of the request every attempt re-sends.
pub(crate) struct Template {
    pub(crate) method: Method,
    pub(crate) path_and_query: String,
    pub(crate) headers: HeaderMap,
}

impl Template {
    /// The upstream headers: hop-by-hop removed, forwarding and tracing
    /// headers added.
    pub(crate) fn new(route: &Route, request: &Request<Incoming>, ctx: &Context, keep_upgrade: bool) -> Self {
        let mut headers = request.headers().clone();
        strip_hop_by_hop(&mut headers, keep_upgrade);
        add_forwarded(&mut headers, ctx.peer.ip());
        headers.remove(http::header::HOST);
        headers.insert(REQUEST_ID, ctx.request_id.clone());
        // The gateway span's own context when traced; the caller's
        // `tracestate` travels on unchanged with the cloned headers.
        let own = ctx.trace.as_ref().and_then(|t| HeaderValue::from_str(t.traceparent()).ok());
        headers.insert(TRACEPARENT, own.unwrap_or_else(|| traceparent(request.headers())));
        let uri = request.uri();
        let mut path = uri.path();
        if route.config.strip_prefix {
            path = path.strip_prefix(route.config.prefix.trim_end_matches('/')).unwrap_or(path);
        }
        let path = if path.is_empty() { "/" } else { path };
        let path_and_query = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        Self { method: request.method().clone(), path_and_query, headers }
    }

    /// The request for one attempt at `authority`.
    pub(crate) fn build(&self, pool: &Pool, authority: &str, body: ProxyBody) -> Option<Request<ProxyBody>> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(self.path_and_query.as_str())
            .build()
            .ok()?;
        let mut request = Request::new(body);
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = uri;
        *request.headers_mut() = self.headers.clone();
        *request.version_mut() = match pool.config.protocol {
            Protocol::Http1 => Version::HTTP_11,
            Protocol::H2c => Version::HTTP_2,
        };
        Some(request)
    }
}

/// One attempt: choose an instance, send, wait up to the per-try deadline
/// for the response head, and record the outcome.
pub(crate) async fn attempt(
    shared: &Shared,
    pool: &Pool,
    template: &Template,
    body: ProxyBody,
    avoid: Option<&EndpointId>,
) -> (Option<EndpointId>, Result<Response<Incoming>, AttemptError>) {
    let Some(chosen) = pool.choose(avoid) else { return (None, Err(AttemptError::NoUpstream)) };
    let id = chosen.instance.id.clone();
    let Some(request) = template.build(pool, &chosen.instance.base.authority, body) else {
        return (Some(id), Err(AttemptError::Failed));
    };
    let started = Instant::now();
    let sent = tokio::time::timeout(ms(pool.config.per_try_timeout_ms), pool.client.request(request)).await;
    let result = match sent {
        Ok(Ok(response)) => Ok(response),
        Ok(Err(e)) => {
            tracing::debug!(pool = %pool.name, instance = %id, error = %e, "upstream attempt failed");
            Err(AttemptError::Failed)
        }
        Err(_) => Err(AttemptError::Timeout),
    };
    let failed = match &result {
        Ok(response) => gateway_failure(response.status()),
        Err(_) => true,
    };
    shared.metrics.upstream(&pool.name, id.as_str(), failed, started.elapsed());
    pool.finish(chosen, failed);
    (Some(id), result)
}

/// The request body: read for replay, or streamed once.
enum Payload {
    Replay(Bytes),
    Stream(ProxyBody),
}

async fn payload(request: Request<Incoming>, idempotency: Idempotency, limit: u64) -> Result<Payload, GatewayError> {
    let body = request.into_body();
    if !idempotency.allows_retry() {
        return Ok(Payload::Stream(boxed(body)));
    }
    let hint = body.size_hint();
    if hint.exact() == Some(0) || body.is_end_stream() {
        return Ok(Payload::Replay(Bytes::new()));
    }
    match hint.exact() {
        Some(n) if n <= limit => {
            let limit = usize::try_from(limit).unwrap_or(usize::MAX);
            let collected = Limited::new(body, limit).collect().await.map_err(|_| GatewayError::BadGateway)?;
            Ok(Payload::Replay(collected.to_bytes()))
        }
        _ => Ok(Payload::Stream(boxed(body))),
    }
}

/// Forwards a request to the route's pool and streams the answer back.
pub(crate) async fn forward(
    shared: &Shared,
    route: &Route,
    request: Request<Incoming>,
    ctx: &Context,
) -> Response<ProxyBody> {
    match forward_inner(shared, route, request, ctx).await {
        Ok(response) => response,
        Err(e) => e.into_response(id_str(&ctx.request_id)),
    }
}

async fn forward_inner(
    shared: &Shared,
    route: &Route,
    request: Request<Incoming>,
    ctx: &Context,
) -> Result<Response<ProxyBody>, GatewayError> {
    let pool = &*route.pool;
    let slot = pool.bulkhead.try_acquire().map_err(|_| GatewayError::UpstreamBusy)?;
    let template = Template::new(route, &request, ctx, false);
    let idempotency = idempotency(&template.method, &template.headers);
    let payload = payload(request, idempotency, shared.config.server.retry_body_limit).await?;
    let deadline = ms(pool.config.timeout_ms);
    let outcome = match payload {
        Payload::Stream(body) => {
            tokio::time::timeout(deadline, attempt(shared, pool, &template, body, None)).await.map(|(_, r)| r)
        }
        Payload::Replay(bytes) => {
            let last_failed: Mutex<Option<EndpointId>> = Mutex::new(None);
            let attempts = pool.retrier.call_with(idempotency, classify, || {
                let bytes = bytes.clone();
                let (template, last_failed) = (&template, &last_failed);
                async move {
                    let avoid = last_failed.lock().clone();
                    let (id, result) = attempt(shared, pool, template, full(bytes), avoid.as_ref()).await;
                    let failed = match &result {
                        Ok(r) => gateway_failure(r.status()),
                        Err(_) => true,
                    };
                    *last_failed.lock() = if failed { id } else { None };
                    result
                }
            });
            tokio::time::timeout(deadline, attempts).await
        }
    };
    let response = match outcome {
        Err(_) | Ok(Err(AttemptError::Timeout)) => return Err(GatewayError::Timeout),
        Ok(Err(AttemptError::NoUpstream)) => return Err(GatewayError::NoUpstream),
        Ok(Err(AttemptError::Failed)) => return Err(GatewayError::BadGateway),
        Ok(Ok(response)) => response,
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    Ok(Response::from_parts(parts, boxed(Guarded::new(body, Box::new(slot)))))
}

fn classify(result: &Result<Response<Incoming>, AttemptError>) -> RetryDecision {
    match result {
        Ok(r) if gateway_failure(r.status()) => RetryDecision::Retry,
        Ok(_) => RetryDecision::Done,
        Err(AttemptError::Timeout) => RetryDecision::RetryTimeout,
        Err(AttemptError::Failed | AttemptError::NoUpstream) => RetryDecision::Retry,
    }
}
