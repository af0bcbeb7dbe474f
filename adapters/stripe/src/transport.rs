//! One call to the API and the resilience around it, in the kit's client
//! order (see `bazaar_core::resilience` GUIDE): circuit breaker → deadline
//! → retry (within a shared budget) → one HTTP attempt with its timeout.
//!
//! The deadline sits inside the breaker so a call that runs out of time
//! still counts as a failure there (a cancelled call would record
//! nothing). POSTs are retried only because each carries an
//! `Idempotency-Key`: Stripe answers a repeated key with the first
//! result, so a retry after a lost answer never charges twice.

use std::sync::Arc;
use std::time::Duration;

use bazaar_core::events::{TraceContext, outbound_context};
use bazaar_core::resilience::ResilienceError;
use bazaar_core::resilience::circuit_breaker::{CircuitBreaker, Outcome};
use bazaar_core::resilience::clock::MonotonicClock;
use bazaar_core::resilience::retry::{Idempotency, Retrier, RetryDecision, Sleeper, TokenBucketBudget};

use tracing::Instrument as _;

use crate::config::{API_VERSION, Secret, StripeConfig};
use crate::errors::StripeFailure;

/// GET or POST, the only methods the connector uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

/// What to send: method, path below the API base, form fields and, for a
/// POST, its idempotency key.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) form: Vec<(&'static str, String)>,
    pub(crate) idempotency_key: Option<&'a str>,
}

/// An HTTP answer of any status.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// `Retry-After`, as a delay from now.
    pub(crate) retry_after: Option<Duration>,
    /// `Stripe-Should-Retry`, Stripe's own verdict when it gives one.
    pub(crate) should_retry: Option<bool>,
}

/// The HTTP client, the key, and the guards every call passes.
pub(crate) struct Transport {
    http: reqwest::Client,
    base: String,
    key: Secret,
    breaker: Arc<CircuitBreaker>,
    retrier: Retrier,
    deadline: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base)
            .field("key", &self.key)
            .field("breaker", &self.breaker.state())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Transport {
    pub(crate) fn new(config: &StripeConfig) -> Result<Self, StripeFailure> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.attempt_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("bazaar-stripe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StripeFailure::Transport(format!("HTTP client set-up: {e}")))?;
        Ok(Self {
            http,
            base: config.api_base.trim_end_matches('/').to_owned(),
            key: config.secret_key.clone(),
            breaker: Arc::new(CircuitBreaker::new("stripe", config.breaker.clone())),
            retrier: Retrier::new(config.retry).with_budget(Arc::new(TokenBucketBudget::new(config.retry_budget))),
            deadline: config.deadline,
        })
    }

    /// Measures breaker and retry time on `clock` and waits between
    /// attempts with `sleeper` (tests pass a manual pair: no real waits).
    pub(crate) fn with_timing(mut self, clock: Arc<dyn MonotonicClock>, sleeper: Arc<dyn Sleeper>) -> Self {
        let config = self.breaker.config().clone();
        self.breaker = Arc::new(CircuitBreaker::new("stripe", config).with_clock(Arc::clone(&clock)));
        self.retrier = self.retrier.with_clock(clock).with_sleeper(sleeper);
        self
    }

    pub(crate) fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// Sends `request` through the breaker, the deadline and the retries;
    /// the last answer of any status, or why there was none.
    pub(crate) async fn send(&self, request: &Request<'_>) -> Result<Reply, StripeFailure> {
        let idempotency = match (request.method, request.idempotency_key) {
            (Method::Get, _) => Idempotency::Idempotent,
            (Method::Post, Some(_)) => Idempotency::MarkedSafe,
            (Method::Post, None) => Idempotency::NonIdempotent,
        };
        let guarded = self
            .breaker
            .call_with(breaker_outcome, || async {
                let attempts = self.retrier.call_with(idempotency, retry_decision, || self.attempt(request));
                tokio::time::timeout(self.deadline, attempts).await.unwrap_or(Err(StripeFailure::Deadline))
            })
            .await;
        match guarded {
            Ok(reply) => Ok(reply),
            Err(ResilienceError::Inner(failure)) => Err(failure),
            Err(ResilienceError::Open) => Err(StripeFailure::BreakerOpen),
            Err(other) => Err(StripeFailure::Transport(other.to_string())),
        }
    }

    /// One HTTP exchange in its client span, whose W3C context goes along
    /// in `traceparent` (the caller's, unchanged, when this process does
    /// not trace).
    async fn attempt(&self, request: &Request<'_>) -> Result<Reply, StripeFailure> {
        let method = match request.method {
            Method::Get => "GET",
            Method::Post => "POST",
        };
        let span = tracing::info_span!(
            "http_client",
            otel.name = method,
            otel.kind = "client",
            http.request.method = method,
            server.address = "stripe",
            http.response.status_code = tracing::field::Empty,
        );
        let context = outbound_context(&span);
        let reply = self.exchange(request, context).instrument(span.clone()).await;
        if let Ok(reply) = &reply {
            span.record("http.response.status_code", reply.status);
        }
        reply
    }

    async fn exchange(&self, request: &Request<'_>, trace: Option<TraceContext>) -> Result<Reply, StripeFailure> {
        let url = format!("{}{}", self.base, request.path);
        let builder = match request.method {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url).form(&request.form),
        };
        let mut builder = builder.bearer_auth(self.key.expose()).header("Stripe-Version", API_VERSION);
        if let Some(key) = request.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        if let Some(trace) = &trace {
            builder = builder.header("traceparent", trace.traceparent());
            if let Some(state) = trace.tracestate() {
                builder = builder.header("tracestate", state);
            }
        }
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let retry_after = header("retry-after").and_then(|v| parse_retry_after(&v, chrono::Utc::now()));
        let should_retry = header("stripe-should-retry").map(|v| v == "true");
        let request_id = header("request-id");
        let body = response.bytes().await.map_err(transport)?.to_vec();
        tracing::debug!(
            method = ?request.method, path = %request.path, status, request_id = request_id.as_deref().unwrap_or("-"),
            "stripe answered"
        );
        Ok(Reply { status, body, retry_after, should_retry })
    }
}

fn transport(e: reqwest::Error) -> StripeFailure {
    if e.is_timeout() { StripeFailure::AttemptTimeout } else { StripeFailure::Transport(e.to_string()) }
}

/// `Retry-After` as delta-seconds or an HTTP date, as a delay from `now`.
pub(crate) fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some((at.with_timezone(&chrono::Utc) - now).to_std().unwrap_or(Duration::ZERO))
}

/// Which answers deserve another attempt: conflicts on a key still in
/// flight (409), rate limits (429), server errors, timeouts and failed
/// connections, unless Stripe says `Stripe-Should-Retry: false`.
fn retry_decision(result: &Result<Reply, StripeFailure>) -> RetryDecision {
    match result {
        Ok(reply) if reply.should_retry == Some(false) => RetryDecision::Done,
        Ok(reply) if matches!(reply.status, 409 | 429 | 500..=599) => {
            reply.retry_after.map_or(RetryDecision::Retry, RetryDecision::RetryAfter)
        }
        Ok(reply) if reply.should_retry == Some(true) => RetryDecision::Retry,
        Ok(_) => RetryDecision::Done,
        Err(StripeFailure::AttemptTimeout) => RetryDecision::RetryTimeout,
        Err(StripeFailure::Transport(_)) => RetryDecision::Retry,
        Err(_) => RetryDecision::Done,
    }
}

/// What counts against Stripe's health: server errors, rate limits and no
/// answer at all. A decline or a bad request is Stripe working as meant.
fn breaker_outcome(result: &Result<Reply, StripeFailure>) -> Outcome {
    match result {
        Ok(reply) if reply.status >= 500 || reply.status == 429 => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Failure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, retry_after: Option<u64>, should_retry: Option<bool>) -> Result<Reply, StripeFailure> {
        Ok(Reply { status, body: Vec::new(), retry_after: retry_after.map(Duration::from_secs), should_retry })
    }

    #[test]
    fn retries_what_a_repeat_can_fix_and_honours_stripes_word() {
        assert_eq!(retry_decision(&reply(200, None, None)), RetryDecision::Done);
        assert_eq!(retry_decision(&reply(402, None, None)), RetryDecision::Done);
        assert_eq!(retry_decision(&reply(400, None, None)), RetryDecision::Done);
        assert_eq!(retry_decision(&reply(409, None, None)), RetryDecision::Retry);
        assert_eq!(retry_decision(&reply(429, Some(3), None)), RetryDecision::RetryAfter(Duration::from_secs(3)));
        assert_eq!(retry_decision(&reply(503, None, None)), RetryDecision::Retry);
        assert_eq!(retry_decision(&reply(500, None, Some(false))), RetryDecision::Done);
        assert_eq!(retry_decision(&reply(400, None, Some(true))), RetryDecision::Retry);
        assert_eq!(retry_decision(&Err(StripeFailure::AttemptTimeout)), RetryDecision::RetryTimeout);
        assert_eq!(retry_decision(&Err(StripeFailure::Transport("reset".into()))), RetryDecision::Retry);
    }

    #[test]
    fn only_stripes_own_trouble_counts_against_it() {
        assert_eq!(breaker_outcome(&reply(402, None, None)), Outcome::Success);
        assert_eq!(breaker_outcome(&reply(404, None, None)), Outcome::Success);
        assert_eq!(breaker_outcome(&reply(429, None, None)), Outcome::Failure);
        assert_eq!(breaker_outcome(&reply(502, None, None)), Outcome::Failure);
        assert_eq!(breaker_outcome(&Err(StripeFailure::Deadline)), Outcome::Failure);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT").unwrap().to_utc();
        assert_eq!(parse_retry_after(" 2 ", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now), Some(Duration::ZERO), "past dates: now");
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
