//! Tower adapter: `RetryLayer` and the `Retry<S, P>` service.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, poll_fn};
use tower_layer::Layer;
use tower_service::Service;

use super::{Idempotency, Retrier, RetryDecision};

/// What the tower retry needs to know about a request and its result.
///
/// # Example
/// ```
/// use bazaar_core::resilience::retry::{Idempotency, Policy, RetryDecision};
///
/// struct Request { method: &'static str, idempotency_key: Option<String> }
///
/// #[derive(Debug)]
/// struct HttpPolicy;
///
/// impl Policy<Request, u16, std::io::Error> for HttpPolicy {
///     fn idempotency(&self, req: &Request) -> Idempotency {
///         match (req.method, &req.idempotency_key) {
///             ("GET" | "PUT" | "DELETE", _) => Idempotency::Idempotent,
///             (_, Some(_)) => Idempotency::MarkedSafe,
///             _ => Idempotency::NonIdempotent,
///         }
///     }
///
///     fn classify(&self, result: &Result<u16, std::io::Error>) -> RetryDecision {
///         match result {
///             Ok(502..=504) => RetryDecision::Retry,
///             Ok(_) => RetryDecision::Done,
///             Err(e) if e.kind() == std::io::ErrorKind::TimedOut => RetryDecision::RetryTimeout,
///             Err(_) => RetryDecision::Retry,
///         }
///     }
/// }
///
/// let post = Request { method: "POST", idempotency_key: Some("k1".into()) };
/// assert_eq!(HttpPolicy.idempotency(&post), Idempotency::MarkedSafe);
/// assert_eq!(HttpPolicy.classify(&Ok(503)), RetryDecision::Retry);
/// ```
pub trait Policy<Req, Res, E>: Send + Sync + 'static {
    /// Whether `req` may be repeated (e.g. by HTTP method, or because it
    /// carries an `Idempotency-Key`).
    fn idempotency(&self, req: &Req) -> Idempotency;

    /// The verdict on one attempt's result.
    fn classify(&self, result: &Result<Res, E>) -> RetryDecision;
}

/// A [`Policy`] from two closures: an idempotency predicate and a classifier.
#[derive(Clone, Copy)]
pub struct FnPolicy<I, C> {
    is_idempotent: I,
    classify: C,
}

impl<I, C> fmt::Debug for FnPolicy<I, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnPolicy").finish_non_exhaustive()
    }
}

impl<I, C> FnPolicy<I, C> {
    /// Requests for which `is_idempotent` is true are retried as `classify` says.
    pub fn new(is_idempotent: I, classify: C) -> Self {
        Self { is_idempotent, classify }
    }
}

impl<Req, Res, E, I, C> Policy<Req, Res, E> for FnPolicy<I, C>
where
    I: Fn(&Req) -> bool + Send + Sync + 'static,
    C: Fn(&Result<Res, E>) -> RetryDecision + Send + Sync + 'static,
{
    fn idempotency(&self, req: &Req) -> Idempotency {
        if (self.is_idempotent)(req) { Idempotency::Idempotent } else { Idempotency::NonIdempotent }
    }

    fn classify(&self, result: &Result<Res, E>) -> RetryDecision {
        (self.classify)(result)
    }
}

/// Retries requests to the wrapped service with a [`Retrier`] (its backoff,
/// limits and budget) and a [`Policy`].
#[derive(Debug)]
pub struct RetryLayer<P> {
    retrier: Retrier,
    policy: Arc<P>,
}

impl<P> Clone for RetryLayer<P> {
    fn clone(&self) -> Self {
        Self { retrier: self.retrier.clone(), policy: Arc::clone(&self.policy) }
    }
}

impl<P> RetryLayer<P> {
    /// A layer; every service it builds shares the retrier's budget.
    pub fn new(retrier: Retrier, policy: P) -> Self {
        Self { retrier, policy: Arc::new(policy) }
    }
}

impl<S, P> Layer<S> for RetryLayer<P> {
    type Service = Retry<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry { inner, retrier: self.retrier.clone(), policy: Arc::clone(&self.policy) }
    }
}

/// A service that retries idempotent requests.
///
/// Needs `Req: Clone` (each attempt sends a fresh copy) and `S: Clone`
/// (retries drive a clone of the service to readiness, as tower's `Retry`
/// does). The error type is the inner one: giving up returns the last result.
#[derive(Debug)]
pub struct Retry<S, P> {
    inner: S,
    retrier: Retrier,
    policy: Arc<P>,
}

impl<S: Clone, P> Clone for Retry<S, P> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), retrier: self.retrier.clone(), policy: Arc::clone(&self.policy) }
    }
}

impl<S, P> Retry<S, P> {
    /// Wraps `inner`.
    pub fn new(inner: S, retrier: Retrier, policy: P) -> Self {
        Self { inner, retrier, policy: Arc::new(policy) }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, P, Req> Service<Req> for Retry<S, P>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send,
    S::Error: Send,
    Req: Clone + Send + 'static,
    P: Policy<Req, S::Response, S::Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // The service that was polled ready serves the first attempt; the
        // clone left behind stays in `self` for the next poll_ready.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        let retrier = self.retrier.clone();
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let idempotency = policy.idempotency(&req);
            if !idempotency.allows_retry() {
                let mut ready = ready;
                return ready.call(req).await;
            }
            let prototype = ready.clone();
            let template = req.clone();
            let mut first = Some((ready, req));
            retrier
                .call_with(
                    idempotency,
                    |r| policy.classify(r),
                    move || {
                        let (svc, req, is_ready) = match first.take() {
                            Some((svc, req)) => (svc, req, true),
                            None => (prototype.clone(), template.clone(), false),
                        };
                        async move {
                            let mut svc = svc;
                            if !is_ready {
                                poll_fn(|cx| svc.poll_ready(cx)).await?;
                            }
                            svc.call(req).await
                        }
                    },
                )
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::resilience::clock::{FixedJitter, ManualClock};
    use crate::resilience::retry::{Backoff, ManualSleeper, RetryPolicy, TokenBucketBudget};

    #[derive(Clone, Debug)]
    struct Req {
        method: &'static str,
    }

    fn setup(budget: u32) -> (RetryLayer<impl Policy<Req, u32, &'static str>>, Arc<AtomicU32>) {
        let clock = ManualClock::new();
        let retrier = Retrier::new(RetryPolicy::new(4, Backoff::constant(Duration::from_millis(10))))
            .with_clock(Arc::new(clock.clone()))
            .with_jitter(Arc::new(FixedJitter(0.0)))
            .with_sleeper(Arc::new(ManualSleeper::new(clock)))
            .with_budget(Arc::new(TokenBucketBudget::new(budget)));
        let policy = FnPolicy::new(|r: &Req| r.method == "GET", RetryDecision::on_err::<u32, &'static str>);
        (RetryLayer::new(retrier, policy), Arc::new(AtomicU32::new(0)))
    }

    fn flaky(
        calls: Arc<AtomicU32>,
        failures: u32,
    ) -> impl Service<Req, Response = u32, Error = &'static str, Future: Send> + Clone + Send + 'static {
        service_fn(move |_req: Req| {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move { if n < failures { Err("503") } else { Ok(n) } }
        })
    }

    #[tokio::test]
    async fn retries_idempotent_requests_until_success() {
        let (layer, calls) = setup(500);
        let mut svc = layer.layer(flaky(calls.clone(), 2));
        assert_eq!(svc.ready().await.unwrap().call(Req { method: "GET" }).await, Ok(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn never_retries_non_idempotent_requests() {
        let (layer, calls) = setup(500);
        let mut svc = layer.layer(flaky(calls.clone(), 2));
        assert_eq!(svc.ready().await.unwrap().call(Req { method: "POST" }).await, Err("503"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn budget_caps_retries() {
        let (layer, calls) = setup(5);
        let mut svc = layer.layer(flaky(calls.clone(), 10));
        assert_eq!(svc.ready().await.unwrap().call(Req { method: "GET" }).await, Err("503"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        let _: &_ = svc.get_ref();
        let _: &mut _ = svc.get_mut();
        let _inner = svc.into_inner();
    }
}
