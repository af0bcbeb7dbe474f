//! Tower adapter: `RateLimitLayer` and the `RateLimit<S>` service.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, MapErr, Ready, TryFutureExt, ready};
use tower_layer::Layer;
use tower_service::Service;

use super::RateLimiter;
use crate::resilience::ResilienceError;

/// Applies a shared [`RateLimiter`] to a service.
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limiter: Arc<RateLimiter>,
}

impl RateLimitLayer {
    /// A layer whose services all share `limiter`.
    pub fn new(limiter: Arc<RateLimiter>) -> Self {
        Self { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::clone(&self.limiter))
    }
}

/// A service that rejects calls over the quota with
/// [`ResilienceError::RateLimited`].
///
/// The check happens in `call`, not in `poll_ready`: a limiter that said
/// "not ready" would make callers wait (or spin) instead of answering 429
/// with a `Retry-After`, and readiness would be consumed by the wrong request.
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiter: Arc<RateLimiter>,
}

impl<S> RateLimit<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limiter: Arc<RateLimiter>) -> Self {
        Self { inner, limiter }
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

type Wrap<E> = fn(E) -> ResilienceError<E>;

impl<S, Req> Service<Req> for RateLimit<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = Either<MapErr<S::Future, Wrap<S::Error>>, Ready<Result<S::Response, Self::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.limiter.check() {
            Ok(()) => Either::Left(self.inner.call(req).map_err(ResilienceError::Inner as Wrap<S::Error>)),
            Err(not_until) => {
                Either::Right(ready(Err(ResilienceError::RateLimited { retry_after: not_until.wait_time() })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::time::Duration;

    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::resilience::clock::ManualClock;
    use crate::resilience::rate_limit::Quota;

    #[tokio::test]
    async fn rejects_from_call_with_retry_after() {
        let clock = ManualClock::new();
        let limiter = Arc::new(RateLimiter::with_clock(
            Quota::per_second(NonZeroU32::new(2).unwrap()).allow_burst(NonZeroU32::MIN),
            Arc::new(clock.clone()),
        ));
        let svc = service_fn(|x: u32| async move { Ok::<_, std::convert::Infallible>(x * 2) });
        let mut svc = RateLimitLayer::new(limiter).layer(svc);
        assert_eq!(svc.ready().await.unwrap().call(2).await.unwrap(), 4);
        match svc.ready().await.unwrap().call(2).await {
            Err(ResilienceError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Duration::from_millis(500))
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
        clock.advance(Duration::from_millis(500));
        assert_eq!(svc.ready().await.unwrap().call(3).await.unwrap(), 6);
        let _: &_ = svc.get_ref();
        let _: &mut _ = svc.get_mut();
        let _inner = svc.into_inner();
    }
}
