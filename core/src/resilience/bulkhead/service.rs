//! Tower service limiting concurrent calls to an inner service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower_service::Service;

use super::{BULKHEAD_FULL, Bulkhead};
use crate::resilience::ResilienceError;

/// The boxed response future of [`BulkheadService`].
pub type BulkheadFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, ResilienceError<E>>> + Send>>;

/// A service whose calls each hold a [`Bulkhead`] slot until their response
/// future completes (or is dropped).
///
/// `poll_ready` only waits for the inner service. A full bulkhead without a
/// maximum wait fails the call at once with
/// `ResilienceError::Rejected("bulkhead_full")`; with a maximum wait the
/// returned future waits for a slot, then calls the service that was made
/// ready (the clone left behind serves the next caller, tower's usual
/// pattern). The future is boxed, so the inner service and its future must
/// be `Send + 'static`.
#[derive(Debug, Clone)]
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
}

impl<S> BulkheadService<S> {
    /// Guards `inner` with `bulkhead`.
    pub fn new(inner: S, bulkhead: Bulkhead) -> Self {
        Self { inner, bulkhead }
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

    /// The bulkhead.
    pub fn bulkhead(&self) -> &Bulkhead {
        &self.bulkhead
    }
}

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = ResilienceError<S::Error>;
    type Future = BulkheadFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ResilienceError::Inner)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if let Ok(slot) = self.bulkhead.try_acquire() {
            let future = self.inner.call(req);
            return Box::pin(async move {
                let result = future.await;
                drop(slot);
                result.map_err(ResilienceError::Inner)
            });
        }
        if self.bulkhead.max_wait().is_zero() {
            return Box::pin(std::future::ready(Err(ResilienceError::Rejected(BULKHEAD_FULL))));
        }
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let bulkhead = self.bulkhead.clone();
        Box::pin(async move {
            let slot = bulkhead.acquire().await.map_err(|e| e.map_inner(|never| match never {}))?;
            let result = ready.call(req).await;
            drop(slot);
            result.map_err(ResilienceError::Inner)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::bulkhead::BulkheadLayer;
    use futures::FutureExt;
    use std::time::Duration;
    use tokio::sync::oneshot;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    #[tokio::test]
    async fn holds_the_slot_until_the_response_completes() {
        let bulkhead = Bulkhead::new(1);
        let mut svc = ServiceBuilder::new()
            .layer(BulkheadLayer::new(bulkhead.clone()))
            .service(service_fn(|rx: oneshot::Receiver<u8>| async move { rx.await.map_err(|_| "closed") }));
        let (tx, rx) = oneshot::channel();
        let first = svc.ready().await.unwrap().call(rx);
        assert_eq!(bulkhead.metrics().available, 0);
        let (_tx2, rx2) = oneshot::channel();
        let second = svc.ready().await.unwrap().call(rx2);
        assert!(matches!(second.now_or_never(), Some(Err(ResilienceError::Rejected(BULKHEAD_FULL)))));
        tx.send(9).unwrap();
        assert_eq!(first.await.unwrap(), 9);
        assert_eq!(bulkhead.metrics().available, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_a_slot_up_to_max_wait() {
        let bulkhead = Bulkhead::new(1).with_max_wait(Duration::from_millis(100));
        let mut svc = BulkheadService::new(service_fn(|n: u8| async move { Ok::<_, ()>(n) }), bulkhead.clone());
        let held = bulkhead.try_acquire().unwrap();
        let start = tokio::time::Instant::now();
        let r = svc.ready().await.unwrap().call(1).await;
        assert!(matches!(r, Err(ResilienceError::Rejected(BULKHEAD_FULL))));
        assert_eq!(start.elapsed(), Duration::from_millis(100));
        let waiting = svc.ready().await.unwrap().call(2);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(held);
        });
        assert_eq!(waiting.await.unwrap(), 2);
    }

    #[tokio::test]
    async fn inner_errors_are_wrapped_and_accessors_work() {
        let mut svc = BulkheadService::new(service_fn(|_: ()| async { Err::<(), _>("boom") }), Bulkhead::new(1));
        let r = svc.ready().await.unwrap().call(()).await;
        assert!(matches!(r, Err(ResilienceError::Inner("boom"))));
        assert_eq!(svc.bulkhead().metrics().available, 1);
        let mut plain = BulkheadService::new(3u8, Bulkhead::new(1));
        *plain.get_mut() += 1;
        assert_eq!(*plain.get_ref(), 4);
        assert_eq!(plain.into_inner(), 4);
    }
}
