//! Events a circuit breaker publishes, and the listeners that receive them.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use super::state::State;

/// Something that happened in a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitBreakerEvent {
    /// The state changed; published exactly once per transition.
    StateTransition {
        /// The state left.
        from: State,
        /// The state entered.
        to: State,
    },
    /// The breaker was reset to closed with empty metrics.
    Reset,
    /// A call was recorded as a success.
    Success {
        /// How long the call took.
        elapsed: Duration,
    },
    /// A call was recorded as a failure.
    Error {
        /// How long the call took.
        elapsed: Duration,
    },
    /// A call's outcome was classified as neither success nor failure.
    Ignored {
        /// How long the call took.
        elapsed: Duration,
    },
    /// A recorded call was at or above the slow-call threshold; published in
    /// addition to its `Success` or `Error`.
    Slow {
        /// How long the call took.
        elapsed: Duration,
    },
    /// A call was rejected.
    NotPermitted,
}

/// Receives a breaker's events, synchronously, on the thread that caused
/// them. Keep it short: it runs on the request path.
///
/// Closures `Fn(&str, &CircuitBreakerEvent)` are listeners.
///
/// # Example
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use bazaar_core::resilience::circuit_breaker::{
///     CircuitBreaker, CircuitBreakerConfig, CircuitBreakerEvent,
/// };
///
/// let breaker = CircuitBreaker::new("payments", CircuitBreakerConfig::default());
/// let opened = Arc::new(AtomicUsize::new(0));
/// let seen = Arc::clone(&opened);
/// breaker.subscribe(move |_name: &str, event: &CircuitBreakerEvent| {
///     if let CircuitBreakerEvent::StateTransition { to, .. } = event {
///         if to.as_str() == "forced_open" {
///             seen.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// });
/// breaker.transition_to_forced_open();
/// assert_eq!(opened.load(Ordering::Relaxed), 1);
/// ```
pub trait CircuitBreakerListener: Send + Sync {
    /// Called for every event of the breaker named `breaker`.
    fn on_event(&self, breaker: &str, event: &CircuitBreakerEvent);
}

impl<F> CircuitBreakerListener for F
where
    F: Fn(&str, &CircuitBreakerEvent) + Send + Sync,
{
    fn on_event(&self, breaker: &str, event: &CircuitBreakerEvent) {
        self(breaker, event)
    }
}

type Listeners = Arc<Vec<Arc<dyn CircuitBreakerListener>>>;

/// The subscriber list. Publishing checks one flag when nobody listens, and
/// otherwise clones an `Arc` of the list so a listener may subscribe others
/// without deadlocking.
#[derive(Default)]
pub(crate) struct EventHub {
    any: AtomicBool,
    listeners: RwLock<Listeners>,
}

impl fmt::Debug for EventHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventHub").field("listeners", &self.listeners.read().len()).finish()
    }
}

impl EventHub {
    pub(crate) fn subscribe(&self, listener: Arc<dyn CircuitBreakerListener>) {
        let mut guard = self.listeners.write();
        let mut next: Vec<_> = guard.iter().cloned().collect();
        next.push(listener);
        *guard = Arc::new(next);
        self.any.store(true, Ordering::Release);
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        !self.any.load(Ordering::Acquire)
    }

    pub(crate) fn publish(&self, breaker: &str, event: CircuitBreakerEvent) {
        if self.is_empty() {
            return;
        }
        let listeners = Arc::clone(&self.listeners.read());
        for l in listeners.iter() {
            l.on_event(breaker, &event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    #[test]
    fn listeners_receive_events_in_order_and_may_subscribe_more() {
        let hub = Arc::new(EventHub::default());
        assert!(hub.is_empty());
        hub.publish("x", CircuitBreakerEvent::Reset);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let h = Arc::clone(&hub);
        hub.subscribe(Arc::new(move |name: &str, e: &CircuitBreakerEvent| {
            s.lock().push((name.to_owned(), *e));
            if *e == CircuitBreakerEvent::Reset {
                h.subscribe(Arc::new(|_: &str, _: &CircuitBreakerEvent| {}));
            }
        }));
        hub.publish("x", CircuitBreakerEvent::Reset);
        hub.publish("x", CircuitBreakerEvent::NotPermitted);
        assert_eq!(
            *seen.lock(),
            vec![("x".to_owned(), CircuitBreakerEvent::Reset), ("x".to_owned(), CircuitBreakerEvent::NotPermitted)]
        );
        assert_eq!(hub.listeners.read().len(), 2);
    }
}
