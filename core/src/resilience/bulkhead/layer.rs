//! Tower layer wrapping a service in a bulkhead.

use tower_layer::Layer;

use super::Bulkhead;
use super::service::BulkheadService;

/// Wraps services in [`BulkheadService`], all sharing one limit.
///
/// # Example
/// ```
/// use bazaar_core::resilience::bulkhead::{Bulkhead, BulkheadLayer};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let svc = ServiceBuilder::new()
///     .layer(BulkheadLayer::new(Bulkhead::new(32)))
///     .service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n * 2) });
/// assert_eq!(svc.oneshot(21).await.unwrap(), 42);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl BulkheadLayer {
    /// A layer sharing `bulkhead` between every service it wraps.
    pub fn new(bulkhead: Bulkhead) -> Self {
        Self { bulkhead }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService::new(inner, self.bulkhead.clone())
    }
}
