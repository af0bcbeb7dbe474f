//! Tower layer wrapping a service in a circuit breaker.

use std::sync::Arc;

use tower_layer::Layer;

use super::breaker::CircuitBreaker;
use super::classify::DefaultClassifier;
use super::service::CircuitBreakerService;

/// Wraps services in [`CircuitBreakerService`], all sharing one breaker.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use bazaar_core::resilience::circuit_breaker::{
///     CircuitBreaker, CircuitBreakerConfig, CircuitBreakerLayer, Outcome,
/// };
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let breaker = Arc::new(CircuitBreaker::new("upstream", CircuitBreakerConfig::default()));
/// // A 5xx response counts as a failure even though it is `Ok`.
/// let classifier = |r: &Result<u16, std::io::Error>| match r {
///     Ok(s) if *s >= 500 => Outcome::Failure,
///     Ok(_) => Outcome::Success,
///     Err(_) => Outcome::Failure,
/// };
/// let svc = ServiceBuilder::new()
///     .layer(CircuitBreakerLayer::with_classifier(breaker, classifier))
///     .service_fn(|_req: ()| async { Ok::<u16, std::io::Error>(200) });
/// assert_eq!(svc.oneshot(()).await.unwrap(), 200);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = DefaultClassifier> {
    breaker: Arc<CircuitBreaker>,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// `Ok` is a success, `Err` a failure.
    pub fn new(breaker: Arc<CircuitBreaker>) -> Self {
        Self { breaker, classifier: DefaultClassifier }
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Outcomes decided by `classifier`, which sees the whole result.
    pub fn with_classifier(breaker: Arc<CircuitBreaker>, classifier: C) -> Self {
        Self { breaker, classifier }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::with_classifier(inner, Arc::clone(&self.breaker), self.classifier.clone())
    }
}
