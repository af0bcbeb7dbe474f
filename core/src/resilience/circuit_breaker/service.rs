//! Tower service guarding an inner service with a circuit breaker.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_service::Service;

use super::breaker::{CircuitBreaker, OwnedPermit};
use super::classify::{Classifier, DefaultClassifier};
use crate::resilience::ResilienceError;

/// A service whose calls pass through a [`CircuitBreaker`].
///
/// `poll_ready` only waits for the inner service: a rejection is returned
/// from `call` as an already-failed future with [`ResilienceError::Open`],
/// so an open breaker never stalls a caller waiting for readiness.
#[derive(Debug, Clone)]
pub struct CircuitBreakerService<S, C = DefaultClassifier> {
    inner: S,
    breaker: Arc<CircuitBreaker>,
    classifier: C,
}

impl<S> CircuitBreakerService<S> {
    /// `Ok` is a success, `Err` a failure.
    pub fn new(inner: S, breaker: Arc<CircuitBreaker>) -> Self {
        Self { inner, breaker, classifier: DefaultClassifier }
    }
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Outcomes decided by `classifier`, which sees the whole result.
    pub fn with_classifier(inner: S, breaker: Arc<CircuitBreaker>, classifier: C) -> Self {
        Self { inner, breaker, classifier }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    C: Classifier<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Ok(permit) => {
                let start = self.breaker.now_nanos();
                ResponseFuture {
                    state: FutureState::Running {
                        // Boxing pins the inner future without unsafe
                        // projection.
                        future: Box::pin(self.inner.call(req)),
                        permit,
                        start,
                        classifier: self.classifier.clone(),
                    },
                }
            }
            Err(_) => ResponseFuture { state: FutureState::Rejected },
        }
    }
}

/// The future of [`CircuitBreakerService`]: records the outcome when the
/// inner future completes; dropped early, it records nothing.
pub struct ResponseFuture<F, C> {
    state: FutureState<F, C>,
}

enum FutureState<F, C> {
    Rejected,
    Running { future: Pin<Box<F>>, permit: OwnedPermit, start: u64, classifier: C },
    Done,
}

// Nothing is pinned in place: the inner future lives in its own box.
impl<F, C> Unpin for ResponseFuture<F, C> {}

impl<F, C> fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            FutureState::Rejected => "rejected",
            FutureState::Running { .. } => "running",
            FutureState::Done => "done",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: Classifier<T, E>,
{
    type Output = Result<T, ResilienceError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let result = match &mut this.state {
            FutureState::Rejected => {
                this.state = FutureState::Done;
                return Poll::Ready(Err(ResilienceError::Open));
            }
            FutureState::Running { future, .. } => match future.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result,
            },
            FutureState::Done => panic!("ResponseFuture polled after completion"),
        };
        if let FutureState::Running { permit, start, classifier, .. } =
            std::mem::replace(&mut this.state, FutureState::Done)
        {
            let breaker = Arc::clone(permit.breaker());
            let elapsed = Duration::from_nanos(breaker.now_nanos().saturating_sub(start));
            permit.record(classifier.classify(&result), elapsed);
        }
        Poll::Ready(result.map_err(ResilienceError::Inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::circuit_breaker::{
        CircuitBreakerConfig, CircuitBreakerLayer, Outcome, SlidingWindow, State,
    };
    use crate::resilience::clock::ManualClock;
    use futures::FutureExt;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    fn breaker(clock: &ManualClock) -> Arc<CircuitBreaker> {
        let config = CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::CountBased(2))
            .minimum_number_of_calls(2)
            .permitted_calls_in_half_open(1)
            .wait_in_open(Duration::from_secs(5))
            .slow_call_duration_threshold(Duration::from_secs(1))
            .build()
            .unwrap();
        Arc::new(CircuitBreaker::new("svc", config).with_clock(Arc::new(clock.clone())))
    }

    #[tokio::test]
    async fn classifier_over_ok_values_opens_and_rejection_comes_from_call() {
        let clock = ManualClock::new();
        let b = breaker(&clock);
        let classify = |r: &Result<u16, &'static str>| match r {
            Ok(s) if *s >= 500 => Outcome::Failure,
            _ => Outcome::Success,
        };
        let c = clock.clone();
        let mut svc = ServiceBuilder::new()
            .layer(CircuitBreakerLayer::with_classifier(Arc::clone(&b), classify))
            .service(service_fn(move |status: u16| {
                c.advance(Duration::from_secs(2));
                async move { Ok::<_, &'static str>(status) }
            }));
        assert_eq!(svc.ready().await.unwrap().call(503).await.unwrap(), 503);
        assert_eq!(b.metrics().slow_calls, 1, "timed with the breaker's clock");
        assert_eq!(svc.ready().await.unwrap().call(500).await.unwrap(), 500);
        assert_eq!(b.state(), State::Open);
        // Ready, yet the call itself is refused without reaching the inner service.
        let fut = svc.ready().await.unwrap().call(200);
        assert!(matches!(fut.now_or_never(), Some(Err(ResilienceError::Open))));
        assert_eq!(b.metrics().not_permitted_calls, 1);
    }

    #[tokio::test]
    async fn inner_errors_are_wrapped_and_dropped_futures_free_probes() {
        let clock = ManualClock::new();
        let b = breaker(&clock);
        let svc = CircuitBreakerService::new(
            service_fn(|fail: bool| async move { if fail { Err("boom") } else { Ok(()) } }),
            Arc::clone(&b),
        );
        let r = svc.clone().oneshot(true).await;
        assert!(matches!(r, Err(ResilienceError::Inner("boom"))));
        b.transition_to_half_open();
        let mut pending = CircuitBreakerService::new(
            service_fn(|_: ()| futures::future::pending::<Result<(), ()>>()),
            Arc::clone(&b),
        );
        let fut = pending.call(());
        assert!(format!("{fut:?}").contains("running"));
        drop(fut);
        assert!(svc.clone().oneshot(false).await.is_ok(), "the dropped probe's slot was reused");
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn accessors_reach_the_inner_service() {
        let clock = ManualClock::new();
        let mut svc = CircuitBreakerService::new(7u8, breaker(&clock));
        assert_eq!(*svc.get_ref(), 7);
        *svc.get_mut() = 8;
        assert_eq!(svc.breaker().name(), "svc");
        assert_eq!(svc.into_inner(), 8);
    }
}
