//! Bulkhead: a limit on concurrent calls to one dependency, held until each
//! call's work (the whole response future) completes, so one slow
//! dependency cannot take every task or connection.
//!
//! A full bulkhead rejects with `ResilienceError::Rejected("bulkhead_full")`,
//! at once or after an optional maximum wait for a slot.
// The layer exists only with the feature, so only then is its name a link.
#![cfg_attr(feature = "tower", doc = "With the `tower` feature, [`BulkheadLayer`] wraps any service.")]
#![cfg_attr(not(feature = "tower"), doc = "With the `tower` feature, `BulkheadLayer` wraps any service.")]

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::resilience::ResilienceError;

#[cfg(feature = "tower")]
mod layer;
#[cfg(feature = "tower")]
mod service;

#[cfg(feature = "tower")]
pub use layer::BulkheadLayer;
#[cfg(feature = "tower")]
pub use service::{BulkheadFuture, BulkheadService};

/// The rejection reason a full bulkhead reports.
pub const BULKHEAD_FULL: &str = "bulkhead_full";

/// A concurrency limit. Cheap to clone; clones share the limit.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use bazaar_core::resilience::ResilienceError;
/// use bazaar_core::resilience::bulkhead::Bulkhead;
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let bulkhead = Bulkhead::new(2).with_max_wait(Duration::from_millis(50));
/// let held = bulkhead.try_acquire().unwrap();
/// let answer = bulkhead.call(|| async { Ok::<_, std::io::Error>(7) }).await;
/// assert_eq!(answer.unwrap(), 7);
/// let second = bulkhead.try_acquire().unwrap();
/// assert!(matches!(bulkhead.try_acquire(), Err(ResilienceError::Rejected("bulkhead_full"))));
/// drop((held, second));
/// assert_eq!(bulkhead.metrics().available, 2);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Bulkhead {
    semaphore: Arc<Semaphore>,
    max: usize,
    max_wait: Duration,
}

/// A slot in the bulkhead, returned when dropped.
#[derive(Debug)]
pub struct BulkheadPermit {
    _slot: OwnedSemaphorePermit,
}

/// A point-in-time view of a bulkhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkheadMetrics {
    /// Free slots.
    pub available: usize,
    /// The limit.
    pub max: usize,
}

impl BulkheadMetrics {
    /// Calls currently holding a slot.
    pub fn in_flight(&self) -> usize {
        self.max - self.available
    }
}

impl Bulkhead {
    /// At most `max_concurrent` calls at once (clamped to
    /// `1..=Semaphore::MAX_PERMITS`); a full bulkhead rejects at once.
    pub fn new(max_concurrent: usize) -> Self {
        let max = max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Self { semaphore: Arc::new(Semaphore::new(max)), max, max_wait: Duration::ZERO }
    }

    /// Waits up to `max_wait` for a slot before rejecting (tokio time).
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The configured maximum wait for a slot.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// Free slots and the limit.
    pub fn metrics(&self) -> BulkheadMetrics {
        BulkheadMetrics { available: self.semaphore.available_permits(), max: self.max }
    }

    /// Takes a slot without waiting.
    ///
    /// # Errors
    /// `ResilienceError::Rejected("bulkhead_full")` when every slot is taken.
    pub fn try_acquire(&self) -> Result<BulkheadPermit, ResilienceError<Infallible>> {
        Arc::clone(&self.semaphore)
            .try_acquire_owned()
            .map(|slot| BulkheadPermit { _slot: slot })
            .map_err(|_| ResilienceError::Rejected(BULKHEAD_FULL))
    }

    /// Takes a slot, waiting up to the maximum wait.
    ///
    /// # Errors
    /// `ResilienceError::Rejected("bulkhead_full")` when no slot freed up in
    /// time.
    pub async fn acquire(&self) -> Result<BulkheadPermit, ResilienceError<Infallible>> {
        if self.max_wait.is_zero() {
            return self.try_acquire();
        }
        match tokio::time::timeout(self.max_wait, Arc::clone(&self.semaphore).acquire_owned()).await {
            Ok(Ok(slot)) => Ok(BulkheadPermit { _slot: slot }),
            // The semaphore is never closed; a closed one is as full as it gets.
            Ok(Err(_)) | Err(_) => Err(ResilienceError::Rejected(BULKHEAD_FULL)),
        }
    }

    /// Runs `f` in a slot held until its future completes or is dropped.
    ///
    /// # Errors
    /// `ResilienceError::Rejected("bulkhead_full")` when no slot was free in
    /// time (`f` is not called), [`ResilienceError::Inner`] with the call's
    /// own error.
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, ResilienceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let _slot = self.acquire().await.map_err(|e| e.map_inner(|never| match never {}))?;
        f().await.map_err(ResilienceError::Inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use tokio::sync::oneshot;

    #[test]
    fn rejects_when_full_and_frees_on_drop() {
        let b = Bulkhead::new(2);
        let p1 = b.try_acquire().unwrap();
        let _p2 = b.try_acquire().unwrap();
        assert!(matches!(b.try_acquire(), Err(ResilienceError::Rejected(BULKHEAD_FULL))));
        let m = b.metrics();
        assert_eq!((m.available, m.max, m.in_flight()), (0, 2, 2));
        drop(p1);
        assert_eq!(b.metrics().available, 1);
        assert!(b.clone().try_acquire().is_ok(), "clones share the limit");
        assert_eq!(Bulkhead::new(0).metrics().max, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn waits_at_most_max_wait() {
        let b = Bulkhead::new(1).with_max_wait(Duration::from_millis(100));
        let _held = b.try_acquire().unwrap();
        let start = tokio::time::Instant::now();
        assert!(matches!(b.acquire().await, Err(ResilienceError::Rejected(BULKHEAD_FULL))));
        assert_eq!(start.elapsed(), Duration::from_millis(100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_freed_within_max_wait_is_taken() {
        let b = Bulkhead::new(1).with_max_wait(Duration::from_millis(100));
        let held = b.try_acquire().unwrap();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(40)).await;
            drop(held);
        });
        let start = tokio::time::Instant::now();
        assert!(b.acquire().await.is_ok());
        assert_eq!(start.elapsed(), Duration::from_millis(40));
    }

    #[tokio::test]
    async fn without_max_wait_a_full_bulkhead_rejects_at_once() {
        let b = Bulkhead::new(1);
        let _held = b.try_acquire().unwrap();
        let r = b.acquire().now_or_never().expect("no waiting");
        assert!(r.is_err());
    }

    #[tokio::test]
    async fn the_slot_is_held_until_the_work_completes_or_is_dropped() {
        let b = Bulkhead::new(1);
        let (tx, rx) = oneshot::channel::<u8>();
        let mut call = Box::pin(b.call(|| async { rx.await.map_err(|_| "dropped") }));
        assert!((&mut call).now_or_never().is_none());
        assert_eq!(b.metrics().available, 0);
        let mut called = false;
        let rejected = b
            .call(|| {
                called = true;
                async { Ok::<(), ()>(()) }
            })
            .await;
        assert!(matches!(rejected, Err(ResilienceError::Rejected(BULKHEAD_FULL))));
        assert!(!called);
        tx.send(5).unwrap();
        assert_eq!(call.await.unwrap(), 5);
        assert_eq!(b.metrics().available, 1);

        let cancelled = b.call(futures::future::pending::<Result<(), ()>>);
        assert!(cancelled.now_or_never().is_none());
        assert_eq!(b.metrics().available, 1, "a dropped call frees its slot");
    }

    #[tokio::test]
    async fn inner_errors_pass_through() {
        let r: Result<(), _> = Bulkhead::new(1).call(|| async { Err("boom") }).await;
        assert!(matches!(r, Err(ResilienceError::Inner("boom"))));
    }
}
