//! One circuit breaker per upstream key, created on demand.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

use super::breaker::CircuitBreaker;
use super::config::CircuitBreakerConfig;
use super::events::CircuitBreakerListener;
use super::state::State;
use crate::resilience::clock::{JitterSource, MonotonicClock, SystemClock, ThreadRngJitter};

struct Entry {
    breaker: Arc<CircuitBreaker>,
    last_used: AtomicU64,
}

/// Breakers keyed by upstream (host, endpoint, tenant…), each created on
/// first use from its key's config or the default, sharing the registry's
/// clock, jitter and listeners.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use bazaar_core::resilience::circuit_breaker::{CircuitBreakerConfig, CircuitBreakerRegistry};
///
/// let registry = CircuitBreakerRegistry::new(CircuitBreakerConfig::default());
/// let a = registry.get(&"payments.example".to_owned());
/// let b = registry.get(&"payments.example".to_owned());
/// assert!(std::sync::Arc::ptr_eq(&a, &b));
/// drop((a, b));
/// registry.evict_idle(Duration::ZERO);
/// assert!(registry.is_empty());
/// ```
pub struct CircuitBreakerRegistry<K> {
    default_config: CircuitBreakerConfig,
    configs: RwLock<HashMap<K, CircuitBreakerConfig>>,
    entries: RwLock<HashMap<K, Entry>>,
    listeners: Mutex<Vec<Arc<dyn CircuitBreakerListener>>>,
    clock: Arc<dyn MonotonicClock>,
    jitter: Arc<dyn JitterSource>,
}

impl<K> CircuitBreakerRegistry<K>
where
    K: Hash + Eq + Clone + fmt::Display,
{
    /// An empty registry on the system clock.
    pub fn new(default_config: CircuitBreakerConfig) -> Self {
        Self {
            default_config,
            configs: RwLock::new(HashMap::new()),
            entries: RwLock::new(HashMap::new()),
            listeners: Mutex::new(Vec::new()),
            clock: Arc::new(SystemClock::new()),
            jitter: Arc::new(ThreadRngJitter),
        }
    }

    /// Replaces the clock given to breakers created from now on.
    pub fn with_clock(mut self, clock: Arc<dyn MonotonicClock>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces the jitter source given to breakers created from now on.
    pub fn with_jitter(mut self, jitter: Arc<dyn JitterSource>) -> Self {
        self.jitter = jitter;
        self
    }

    /// Uses `config` for `key`'s breaker when it is next created.
    pub fn set_config(&self, key: K, config: CircuitBreakerConfig) {
        self.configs.write().insert(key, config);
    }

    /// Adds a listener to every breaker, present and future.
    pub fn subscribe(&self, listener: impl CircuitBreakerListener + 'static) {
        let listener: Arc<dyn CircuitBreakerListener> = Arc::new(listener);
        // Holding the listener lock while walking the entries keeps a
        // breaker created concurrently from missing the new listener.
        let mut listeners = self.listeners.lock();
        for entry in self.entries.read().values() {
            entry.breaker.subscribe_arc(Arc::clone(&listener));
        }
        listeners.push(listener);
    }

    /// The breaker for `key`, created if absent.
    pub fn get(&self, key: &K) -> Arc<CircuitBreaker> {
        let now = self.clock.now_nanos();
        if let Some(entry) = self.entries.read().get(key) {
            entry.last_used.fetch_max(now, Ordering::Relaxed);
            return Arc::clone(&entry.breaker);
        }
        let listeners = self.listeners.lock();
        let mut entries = self.entries.write();
        let entry = entries.entry(key.clone()).or_insert_with(|| {
            let config = self.configs.read().get(key).cloned().unwrap_or_else(|| self.default_config.clone());
            let breaker = CircuitBreaker::new(key.to_string(), config)
                .with_clock(Arc::clone(&self.clock))
                .with_jitter(Arc::clone(&self.jitter));
            for l in listeners.iter() {
                breaker.subscribe_arc(Arc::clone(l));
            }
            Entry { breaker: Arc::new(breaker), last_used: AtomicU64::new(now) }
        });
        entry.last_used.fetch_max(now, Ordering::Relaxed);
        Arc::clone(&entry.breaker)
    }

    /// The breaker for `key` if it exists, without creating one.
    pub fn find(&self, key: &K) -> Option<Arc<CircuitBreaker>> {
        self.entries.read().get(key).map(|e| Arc::clone(&e.breaker))
    }

    /// Removes `key`'s breaker; the next [`get`](Self::get) creates a new one.
    pub fn remove(&self, key: &K) -> Option<Arc<CircuitBreaker>> {
        self.entries.write().remove(key).map(|e| e.breaker)
    }

    /// Removes breakers unused for at least `idle` that are closed and not
    /// held anywhere else; returns how many were removed.
    ///
    /// Open, half-open and manually set breakers stay: dropping them would
    /// forget an outage or an operator's decision. A breaker still held by a
    /// caller stays so one key never has two live breakers.
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let now = self.clock.now_nanos();
        let idle = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
        let mut entries = self.entries.write();
        let before = entries.len();
        entries.retain(|_, e| {
            let unused = now.saturating_sub(e.last_used.load(Ordering::Relaxed)) >= idle;
            !(unused && Arc::strong_count(&e.breaker) == 1 && e.breaker.state() == State::Closed)
        });
        before - entries.len()
    }

    /// Number of breakers.
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// Whether there are no breakers.
    pub fn is_empty(&self) -> bool {
        self.entries.read().is_empty()
    }

    /// The keys that have a breaker.
    pub fn keys(&self) -> Vec<K> {
        self.entries.read().keys().cloned().collect()
    }
}

impl<K> fmt::Debug for CircuitBreakerRegistry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerRegistry")
            .field("breakers", &self.entries.read().len())
            .field("default_config", &self.default_config)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resilience::circuit_breaker::{CircuitBreakerEvent, Outcome, SlidingWindow};
    use crate::resilience::clock::ManualClock;
    use std::sync::atomic::AtomicUsize;

    fn registry(clock: &ManualClock) -> CircuitBreakerRegistry<String> {
        CircuitBreakerRegistry::new(CircuitBreakerConfig::default()).with_clock(Arc::new(clock.clone()))
    }

    #[test]
    fn creates_once_per_key_with_per_key_config() {
        let clock = ManualClock::new();
        let r = registry(&clock);
        let small = CircuitBreakerConfig::builder()
            .sliding_window(SlidingWindow::CountBased(2))
            .minimum_number_of_calls(2)
            .build()
            .unwrap();
        r.set_config("b".into(), small.clone());
        let a1 = r.get(&"a".into());
        let a2 = r.get(&"a".into());
        let b = r.get(&"b".into());
        assert!(Arc::ptr_eq(&a1, &a2));
        assert_eq!(a1.name(), "a");
        assert_eq!(*a1.config(), CircuitBreakerConfig::default());
        assert_eq!(*b.config(), small);
        assert_eq!(r.len(), 2);
        assert!(r.find(&"c".into()).is_none());
        let mut keys = r.keys();
        keys.sort();
        assert_eq!(keys, ["a", "b"]);
    }

    #[test]
    fn evicts_only_idle_unshared_closed_breakers() {
        let clock = ManualClock::new();
        let r = registry(&clock);
        drop(r.get(&"idle".into()));
        let held = r.get(&"held".into());
        r.get(&"open".into()).transition_to_forced_open();
        clock.advance(Duration::from_secs(30));
        drop(r.get(&"fresh".into()));
        assert_eq!(r.evict_idle(Duration::from_secs(60)), 0);
        clock.advance(Duration::from_secs(30));
        assert_eq!(r.evict_idle(Duration::from_secs(60)), 1);
        let mut keys = r.keys();
        keys.sort();
        assert_eq!(keys, ["fresh", "held", "open"]);
        drop(held);
        assert!(r.remove(&"open".into()).is_some());
        assert!(r.remove(&"open".into()).is_none());
        clock.advance(Duration::from_secs(60));
        assert_eq!(r.evict_idle(Duration::from_secs(60)), 2);
        assert!(r.is_empty());
    }

    #[test]
    fn listeners_reach_existing_and_new_breakers() {
        let clock = ManualClock::new();
        let r = registry(&clock);
        let before = r.get(&"before".into());
        let count = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&count);
        r.subscribe(move |_: &str, e: &CircuitBreakerEvent| {
            if matches!(e, CircuitBreakerEvent::Success { .. }) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        });
        let after = r.get(&"after".into());
        before.try_acquire().unwrap().record(Outcome::Success, Duration::ZERO);
        after.try_acquire().unwrap().record(Outcome::Success, Duration::ZERO);
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }
}
