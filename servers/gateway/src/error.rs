//! Answers the gateway gives itself, in the API's error shape:
//! `{"error":{"code","message"},"request_id"}`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{ProxyBody, full};

/// Why the gateway answered instead of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// No route matches the host and path.
    NoRoute,
    /// The bearer token is missing, invalid or expired.
    Unauthenticated(crate::auth::TokenRejection),
    /// A rate limit refused the request.
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
    /// No instance could take the request (none healthy, every breaker open).
    NoUpstream,
    /// The pool's bulkhead is full.
    UpstreamBusy,
    /// The upstream could not be reached or broke the connection.
    BadGateway,
    /// The request's deadline passed before a response.
    Timeout,
    /// The gateway is shutting down.
    ShuttingDown,
}

impl GatewayError {
    /// Status, code and message.
    pub fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            Self::NoRoute => (StatusCode::NOT_FOUND, "not_found", "no route for this path".into()),
            Self::Unauthenticated(why) => (StatusCode::UNAUTHORIZED, "unauthenticated", why.to_string()),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests".into()),
            Self::NoUpstream => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "no healthy upstream instance".into()),
            Self::UpstreamBusy => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "upstream is at capacity".into()),
            Self::BadGateway => (StatusCode::BAD_GATEWAY, "bad_gateway", "the upstream did not answer".into()),
            Self::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout", "the upstream did not answer in time".into()),
            Self::ShuttingDown => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the gateway is shutting down".into())
            }
        }
    }

    /// The JSON response.
    pub fn into_response(self, request_id: &str) -> Response<ProxyBody> {
        let (status, code, message) = self.parts();
        let body = serde_json::json!({ "error": { "code": code, "message": message }, "request_id": request_id });
        let mut response = json_response(status, body.to_string());
        if let Self::RateLimited { retry_after } = self {
            let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if let Self::Unauthenticated(_) = self {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON response with `status`.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
