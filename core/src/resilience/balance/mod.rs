//! Client-side load balancing over endpoints named by id: round robin,
//! smooth weighted round robin, random, P2C least-request, P2C peak-EWMA,
//! ring hash and Maglev, with outlier ejection and a panic threshold.
//!
//! # Model
//! - The endpoint set is an immutable snapshot behind an `Arc`, swapped on
//!   every add / remove / set (copy-on-write). A pick clones the `Arc` under
//!   a read lock held for a few nanoseconds and works on that snapshot, so
//!   concurrent updates never invalidate it, and once an update returns no
//!   later pick can see a removed endpoint. Live state (in-flight count,
//!   EWMA, ejection) lives per endpoint id and survives updates.
//! - [`LoadBalancer::pick`] returns a [`Pick`] guard: it counts as in flight
//!   until [`Pick::success`] / [`Pick::failure`] records latency and outcome,
//!   or until it is dropped (a cancelled request: no outcome recorded).
//! - Outlier ejection follows Envoy (see [`OutlierConfig`]).
//! - Panic threshold (default 50 %): when fewer than that share of the
//!   endpoints is available (healthy and not ejected), the balancer ignores
//!   health and balances over all of them, as Envoy does, because sending
//!   everything to a few survivors would take them down too.
//! - Without a key, ring hash and Maglev hash a random number (so unkeyed
//!   traffic is spread randomly); P2C strategies ignore weights (as tower).
//!
//! # Example
//! ```
//! use bazaar_core::resilience::balance::{Endpoint, LoadBalancer, Strategy};
//!
//! let lb = LoadBalancer::builder(Strategy::Maglev).build();
//! lb.set_endpoints([Endpoint::new("a"), Endpoint::new("b"), Endpoint::new("c")]);
//! let first = lb.pick(Some(b"user-42")).unwrap();
//! let id = first.id().clone();
//! first.success();
//! // Sticky: the same key lands on the same endpoint while it is available.
//! assert_eq!(lb.pick(Some(b"user-42")).unwrap().id(), &id);
//! ```

mod endpoint;
mod hash;
mod maglev;
mod outlier;
mod ring;
#[cfg(feature = "tower")]
mod service;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

pub use endpoint::{Endpoint, EndpointId, EndpointStatus};
pub use hash::{stable_hash, stable_hash_seeded};
pub use outlier::OutlierConfig;
#[cfg(feature = "tower")]
pub use service::{Balance, NoKey, RequestKey};

use endpoint::EndpointState;
use maglev::Maglev;
use ring::Ring;

use crate::resilience::clock::{JitterSource, MonotonicClock, SystemClock, ThreadRngJitter};

/// How the balancer chooses among available endpoints.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Strategy {
    /// Each endpoint in turn.
    RoundRobin,
    /// nginx's smooth weighted round robin: each endpoint exactly its weight
    /// share over every cycle of `Σweights` picks, interleaved.
    WeightedRoundRobin,
    /// Uniformly at random.
    Random,
    /// Power of two choices on in-flight requests (Envoy least-request).
    LeastRequest,
    /// Power of two choices on `rtt_ewma · (pending + 1)`.
    PeakEwma {
        /// The EWMA time constant τ.
        decay: Duration,
        /// The estimate before any response is seen.
        default_rtt: Duration,
    },
    /// Consistent hashing on a ring of weighted virtual nodes (Ketama).
    RingHash {
        /// Points on the ring per unit of weight (Ketama uses 160).
        vnodes_per_weight: u32,
    },
    /// Maglev consistent hashing with a 65 537-slot table.
    Maglev,
}

impl Strategy {
    /// Peak-EWMA with tower's defaults (τ = 10 s, default RTT 30 ms).
    pub fn peak_ewma() -> Self {
        Self::PeakEwma { decay: Duration::from_secs(10), default_rtt: Duration::from_millis(30) }
    }

    /// Ring hash with Ketama's 160 points per unit of weight.
    pub fn ring_hash() -> Self {
        Self::RingHash { vnodes_per_weight: 160 }
    }
}

/// The result of a request made through a [`Pick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The endpoint answered well.
    Success,
    /// The endpoint failed (5xx, connect error, timeout): counts towards
    /// outlier ejection.
    Failure,
}

/// Builds a [`LoadBalancer`].
#[derive(Debug)]
pub struct LoadBalancerBuilder {
    strategy: Strategy,
    outlier: Option<OutlierConfig>,
    panic_threshold_percent: u32,
    clock: Arc<dyn MonotonicClock>,
    random: Arc<dyn JitterSource>,
    maglev_table_size: usize,
}

impl LoadBalancerBuilder {
    /// Enables outlier ejection (off by default).
    #[must_use]
    pub fn outlier_detection(self, config: OutlierConfig) -> Self {
        Self { outlier: Some(config), ..self }
    }

    /// Sets the panic threshold in percent (default 50; 0 disables panic
    /// mode, so with nothing available `pick` returns `None`).
    #[must_use]
    pub fn panic_threshold(self, percent: u32) -> Self {
        Self { panic_threshold_percent: percent.min(100), ..self }
    }

    /// Injects the clock (ejection times, latencies).
    #[must_use]
    pub fn clock(self, clock: Arc<dyn MonotonicClock>) -> Self {
        Self { clock, ..self }
    }

    /// Injects the randomness (random, P2C, unkeyed hashing).
    #[must_use]
    pub fn random(self, random: Arc<dyn JitterSource>) -> Self {
        Self { random, ..self }
    }

    /// Overrides Maglev's table size (should be prime and ≫ 100 × endpoints).
    #[must_use]
    pub fn maglev_table_size(self, size: usize) -> Self {
        Self { maglev_table_size: size.max(1), ..self }
    }

    /// The balancer, with no endpoints yet.
    pub fn build(self) -> LoadBalancer {
        LoadBalancer {
            shared: Arc::new(Shared {
                strategy: self.strategy,
                outlier: self.outlier,
                panic_threshold_percent: self.panic_threshold_percent,
                clock: self.clock,
                random: self.random,
                maglev_table_size: self.maglev_table_size,
                snapshot: RwLock::new(Arc::new(Snapshot::empty())),
                admin: Mutex::new(()),
                ejected: AtomicUsize::new(0),
                unhealthy: AtomicUsize::new(0),
                cursor: AtomicUsize::new(0),
            }),
        }
    }
}

/// An immutable endpoint set plus the lookup structures built from it.
#[derive(Debug)]
struct Snapshot {
    endpoints: Vec<Arc<EndpointState>>,
    weights: Vec<u32>,
    index: HashMap<EndpointId, usize>,
    ring: Option<Ring>,
    maglev: Option<Maglev>,
    /// Smooth-WRR current weights, by position in this snapshot.
    wrr: Mutex<Vec<i64>>,
}

impl Snapshot {
    fn empty() -> Self {
        Self {
            endpoints: Vec::new(),
            weights: Vec::new(),
            index: HashMap::new(),
            ring: None,
            maglev: None,
            wrr: Mutex::new(Vec::new()),
        }
    }
}

#[derive(Debug)]
struct Shared {
    strategy: Strategy,
    outlier: Option<OutlierConfig>,
    panic_threshold_percent: u32,
    clock: Arc<dyn MonotonicClock>,
    random: Arc<dyn JitterSource>,
    maglev_table_size: usize,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Serialises updates and ejections (rare); picks never take it.
    admin: Mutex<()>,
    /// Endpoints with a non-zero `ejected_until` (expired ones included
    /// until a pick re-admits them). Zero together with `unhealthy` means
    /// the pick fast path: every endpoint is a candidate, no allocation.
    ejected: AtomicUsize,
    unhealthy: AtomicUsize,
    cursor: AtomicUsize,
}

/// Which positions of a snapshot a pick may choose from.
enum Candidates {
    All(usize),
    Some { list: Vec<usize>, allowed: Vec<bool> },
}

impl Candidates {
    fn len(&self) -> usize {
        match self {
            Self::All(n) => *n,
            Self::Some { list, .. } => list.len(),
        }
    }

    fn get(&self, i: usize) -> usize {
        match self {
            Self::All(_) => i,
            Self::Some { list, .. } => list[i],
        }
    }

    fn allows(&self, position: usize) -> bool {
        match self {
            Self::All(_) => true,
            Self::Some { allowed, .. } => allowed[position],
        }
    }
}

/// A load balancer; cheap to clone (clones share everything).
#[derive(Debug, Clone)]
pub struct LoadBalancer {
    shared: Arc<Shared>,
}

impl LoadBalancer {
    /// Starts a builder with the system clock, thread-rng randomness, no
    /// outlier detection and a 50 % panic threshold.
    pub fn builder(strategy: Strategy) -> LoadBalancerBuilder {
        LoadBalancerBuilder {
            strategy,
            outlier: None,
            panic_threshold_percent: 50,
            clock: Arc::new(SystemClock::new()),
            random: Arc::new(ThreadRngJitter),
            maglev_table_size: maglev::DEFAULT_TABLE_SIZE,
        }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.shared.strategy
    }

    /// Replaces the endpoint set. Endpoints whose id stays keep their live
    /// state (in-flight count, EWMA, ejection); others start fresh.
    pub fn set_endpoints(&self, endpoints: impl IntoIterator<Item = Endpoint>) {
        let mut seen = HashMap::new();
        for e in endpoints {
            // Last one wins for duplicate ids; order of first appearance kept.
            let weight = e.weight.max(1);
            seen.entry(e.id.clone()).and_modify(|w| *w = weight).or_insert(weight);
        }
        let _admin = self.shared.admin.lock();
        let old = self.snapshot();
        let mut order: Vec<EndpointId> =
            old.endpoints.iter().map(|e| e.id.clone()).filter(|id| seen.contains_key(id)).collect();
        let mut fresh: Vec<EndpointId> = seen.keys().filter(|id| !old.index.contains_key(*id)).cloned().collect();
        fresh.sort();
        order.extend(fresh);
        let list = order.into_iter().map(|id| {
            let w = seen[&id];
            (id, w)
        });
        self.install(&old, list.collect());
    }

    /// Adds an endpoint, or updates its weight if the id exists.
    pub fn add(&self, endpoint: Endpoint) {
        let _admin = self.shared.admin.lock();
        let old = self.snapshot();
        let mut list: Vec<(EndpointId, u32)> =
            old.endpoints.iter().zip(&old.weights).map(|(e, &w)| (e.id.clone(), w)).collect();
        match old.index.get(&endpoint.id) {
            Some(&i) => list[i].1 = endpoint.weight.max(1),
            None => list.push((endpoint.id, endpoint.weight.max(1))),
        }
        self.install(&old, list);
    }

    /// Removes an endpoint; returns whether it was present. Once this
    /// returns, no pick returns it (picks already made stay valid and
    /// report their outcome harmlessly).
    pub fn remove(&self, id: &EndpointId) -> bool {
        let _admin = self.shared.admin.lock();
        let old = self.snapshot();
        if !old.index.contains_key(id) {
            return false;
        }
        let list = old
            .endpoints
            .iter()
            .zip(&old.weights)
            .filter(|(e, _)| &e.id != id)
            .map(|(e, &w)| (e.id.clone(), w))
            .collect();
        self.install(&old, list);
        true
    }

    /// Sets an endpoint's health flag (from active health checks or the
    /// registry); returns whether the id is known.
    pub fn set_healthy(&self, id: &EndpointId, healthy: bool) -> bool {
        let _admin = self.shared.admin.lock();
        let snap = self.snapshot();
        let Some(&i) = snap.index.get(id) else {
            return false;
        };
        let was = snap.endpoints[i].healthy.swap(healthy, Ordering::SeqCst);
        match (was, healthy) {
            (true, false) => {
                self.shared.unhealthy.fetch_add(1, Ordering::SeqCst);
            }
            (false, true) => {
                self.shared.unhealthy.fetch_sub(1, Ordering::SeqCst);
            }
            _ => {}
        }
        true
    }

    /// The ids in the current set.
    pub fn ids(&self) -> Vec<EndpointId> {
        self.snapshot().endpoints.iter().map(|e| e.id.clone()).collect()
    }

    /// How many endpoints are configured.
    pub fn len(&self) -> usize {
        self.snapshot().endpoints.len()
    }

    /// Whether no endpoint is configured.
    pub fn is_empty(&self) -> bool {
        self.snapshot().endpoints.is_empty()
    }

    /// A status line per endpoint (in-flight, health, ejection).
    pub fn status(&self) -> Vec<EndpointStatus> {
        let snap = self.snapshot();
        let now = self.shared.clock.now_nanos();
        snap.endpoints
            .iter()
            .zip(&snap.weights)
            .map(|(e, &weight)| {
                let until = e.ejected_until.load(Ordering::SeqCst);
                EndpointStatus {
                    id: e.id.clone(),
                    weight,
                    pending: e.pending(),
                    healthy: e.healthy.load(Ordering::SeqCst),
                    ejected_for: (until > now).then(|| Duration::from_nanos(until - now)),
                    times_ejected: e.times_ejected.load(Ordering::SeqCst),
                    consecutive_failures: e.consecutive_failures.load(Ordering::SeqCst),
                }
            })
            .collect()
    }

    /// Chooses an endpoint; `key` makes ring hash and Maglev sticky (other
    /// strategies ignore it). `None` only when there is no endpoint (or,
    /// with panic mode disabled, none available).
    pub fn pick(&self, key: Option<&[u8]>) -> Option<Pick> {
        let snap = self.snapshot();
        let n = snap.endpoints.len();
        if n == 0 {
            return None;
        }
        // The clock is read only when a rule needs it (ejection, health or
        // EWMA): on a VM a clock read can cost more than the whole pick.
        let is_ewma = matches!(self.shared.strategy, Strategy::PeakEwma { .. });
        let degraded =
            self.shared.ejected.load(Ordering::Acquire) != 0 || self.shared.unhealthy.load(Ordering::Acquire) != 0;
        let now = if is_ewma || degraded { self.shared.clock.now_nanos() } else { 0 };
        let candidates = if degraded { self.candidates(&snap, now) } else { Candidates::All(n) };
        let m = candidates.len();
        if m == 0 {
            return None;
        }
        let position = match self.shared.strategy {
            Strategy::RoundRobin => candidates.get(self.shared.cursor.fetch_add(1, Ordering::Relaxed) % m),
            Strategy::Random => candidates.get(self.random_below(m)),
            Strategy::WeightedRoundRobin => self.smooth_wrr(&snap, &candidates),
            Strategy::LeastRequest => self.p2c(&candidates, |i| snap.endpoints[i].pending() as f64),
            Strategy::PeakEwma { decay, .. } => self.p2c(&candidates, |i| snap.endpoints[i].ewma_cost(now, decay)),
            Strategy::RingHash { .. } => {
                let hash = self.key_hash(key);
                snap.ring.as_ref()?.lookup(hash, |i| candidates.allows(i))?
            }
            Strategy::Maglev => {
                let hash = self.key_hash(key);
                snap.maglev.as_ref()?.lookup(hash, |i| candidates.allows(i))?
            }
        };
        let endpoint = Arc::clone(&snap.endpoints[position]);
        endpoint.pending.fetch_add(1, Ordering::Relaxed);
        Some(Pick { endpoint, shared: Arc::clone(&self.shared), started_nanos: now, finished: false })
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.shared.snapshot.read())
    }

    fn random_below(&self, m: usize) -> usize {
        ((self.shared.random.next_unit() * m as f64) as usize).min(m - 1)
    }

    fn key_hash(&self, key: Option<&[u8]>) -> u64 {
        match key {
            Some(k) => stable_hash(k),
            None => (self.shared.random.next_unit() * u64::MAX as f64) as u64,
        }
    }

    fn p2c(&self, candidates: &Candidates, load: impl Fn(usize) -> f64) -> usize {
        let m = candidates.len();
        if m == 1 {
            return candidates.get(0);
        }
        let a = self.random_below(m);
        let mut b = self.random_below(m - 1);
        if b >= a {
            b += 1;
        }
        let (a, b) = (candidates.get(a), candidates.get(b));
        if load(b) < load(a) { b } else { a }
    }

    fn smooth_wrr(&self, snap: &Snapshot, candidates: &Candidates) -> usize {
        let mut current = snap.wrr.lock();
        let mut total = 0i64;
        let mut best = candidates.get(0);
        for k in 0..candidates.len() {
            let i = candidates.get(k);
            let w = i64::from(snap.weights[i]);
            current[i] += w;
            total += w;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        best
    }

    /// Positions a pick may use right now when some endpoint is ejected or
    /// unhealthy: the available ones, or all in panic mode. Re-admits
    /// endpoints whose ejection expired.
    fn candidates(&self, snap: &Snapshot, now: u64) -> Candidates {
        let n = snap.endpoints.len();
        let mut list = Vec::with_capacity(n);
        let mut allowed = vec![false; n];
        for (i, e) in snap.endpoints.iter().enumerate() {
            if self.available(e, now) {
                list.push(i);
                allowed[i] = true;
            }
        }
        let threshold = u64::from(self.shared.panic_threshold_percent);
        if (list.len() as u64) * 100 < threshold * n as u64 {
            tracing::debug!(available = list.len(), total = n, "load balancer in panic mode");
            return Candidates::All(n);
        }
        Candidates::Some { list, allowed }
    }

    fn available(&self, e: &EndpointState, now: u64) -> bool {
        let until = e.ejected_until.load(Ordering::Acquire);
        if until != 0 {
            if until > now {
                return false;
            }
            readmit(&self.shared, e, until);
        }
        e.healthy.load(Ordering::Acquire)
    }

    /// Builds and publishes a snapshot; caller holds `admin`.
    fn install(&self, old: &Snapshot, list: Vec<(EndpointId, u32)>) {
        let now = self.shared.clock.now_nanos();
        let default_rtt = match self.shared.strategy {
            Strategy::PeakEwma { default_rtt, .. } => default_rtt,
            _ => Duration::from_millis(30),
        };
        let mut endpoints = Vec::with_capacity(list.len());
        let mut weights = Vec::with_capacity(list.len());
        let mut index = HashMap::with_capacity(list.len());
        let mut wrr = Vec::with_capacity(list.len());
        let old_wrr = old.wrr.lock();
        for (pos, (id, w)) in list.into_iter().enumerate() {
            let (state, current) = match old.index.get(&id) {
                Some(&i) => (Arc::clone(&old.endpoints[i]), old_wrr.get(i).copied().unwrap_or(0)),
                None => (Arc::new(EndpointState::new(id.clone(), default_rtt, now)), 0),
            };
            index.insert(id, pos);
            endpoints.push(state);
            weights.push(w);
            wrr.push(current);
        }
        drop(old_wrr);
        for gone in old.endpoints.iter().filter(|e| !index.contains_key(&e.id)) {
            gone.removed.store(true, Ordering::SeqCst);
            if gone.ejected_until.swap(0, Ordering::AcqRel) != 0 {
                self.shared.ejected.fetch_sub(1, Ordering::AcqRel);
            }
            if !gone.healthy.swap(true, Ordering::SeqCst) {
                self.shared.unhealthy.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let ids: Vec<EndpointId> = endpoints.iter().map(|e| e.id.clone()).collect();
        let ring = match self.shared.strategy {
            Strategy::RingHash { vnodes_per_weight } => Some(Ring::build(&ids, &weights, vnodes_per_weight)),
            _ => None,
        };
        let maglev = match self.shared.strategy {
            Strategy::Maglev => Some(Maglev::build(&ids, &weights, self.shared.maglev_table_size)),
            _ => None,
        };
        let snapshot = Snapshot { endpoints, weights, index, ring, maglev, wrr: Mutex::new(wrr) };
        *self.shared.snapshot.write() = Arc::new(snapshot);
    }

    fn record_failure(shared: &Shared, endpoint: &EndpointState, now: u64) {
        let failures = endpoint.consecutive_failures.fetch_add(1, Ordering::SeqCst) + 1;
        let Some(config) = shared.outlier else { return };
        if failures < config.consecutive_failures {
            return;
        }
        let _admin = shared.admin.lock();
        if endpoint.removed.load(Ordering::SeqCst) || endpoint.ejected_until.load(Ordering::SeqCst) != 0 {
            return;
        }
        let snap = Arc::clone(&shared.snapshot.read());
        // Re-admit expired ejections first so they do not count against the cap.
        let mut ejected = 0;
        for e in &snap.endpoints {
            let until = e.ejected_until.load(Ordering::SeqCst);
            if until > now {
                ejected += 1;
            } else if until != 0 {
                readmit(shared, e, until);
            }
        }
        if ejected >= config.max_ejected(snap.endpoints.len()) {
            tracing::debug!(endpoint = %endpoint.id, "outlier not ejected: max ejection percent reached");
            return;
        }
        let times = endpoint.times_ejected.fetch_add(1, Ordering::SeqCst) + 1;
        let duration = config.ejection_time(times);
        let until = now.saturating_add(u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)).max(1);
        // Count first, then publish: a re-admitter can only decrement after
        // it sees the non-zero value, so the counter never underflows.
        shared.ejected.fetch_add(1, Ordering::AcqRel);
        endpoint.ejected_until.store(until, Ordering::Release);
        endpoint.consecutive_failures.store(0, Ordering::SeqCst);
        tracing::warn!(endpoint = %endpoint.id, times, ?duration, "endpoint ejected as an outlier");
    }
}

/// Ends an expired ejection. Exactly one caller wins the CAS and fixes the
/// count (`install` swaps the same word on removal for the same reason).
fn readmit(shared: &Shared, e: &EndpointState, until: u64) {
    if e.ejected_until.compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        e.consecutive_failures.store(0, Ordering::SeqCst);
        shared.ejected.fetch_sub(1, Ordering::AcqRel);
        tracing::info!(endpoint = %e.id, "endpoint re-admitted after ejection");
    }
}

/// A chosen endpoint, counted as in flight until completed or dropped.
///
/// Complete it with [`success`](Self::success) / [`failure`](Self::failure)
/// (or [`complete`](Self::complete)) to record latency (for peak-EWMA) and
/// outcome (for outlier ejection). Dropping it without completing means the
/// request was cancelled: the in-flight count drops, nothing is recorded.
#[derive(Debug)]
pub struct Pick {
    endpoint: Arc<EndpointState>,
    shared: Arc<Shared>,
    started_nanos: u64,
    finished: bool,
}

impl Pick {
    /// The chosen endpoint.
    pub fn id(&self) -> &EndpointId {
        &self.endpoint.id
    }

    /// Records a success.
    pub fn success(self) {
        self.complete(Outcome::Success);
    }

    /// Records a failure.
    pub fn failure(self) {
        self.complete(Outcome::Failure);
    }

    /// Records `outcome` and the latency since the pick.
    pub fn complete(mut self, outcome: Outcome) {
        self.finished = true;
        self.endpoint.pending.fetch_sub(1, Ordering::Relaxed);
        if let Strategy::PeakEwma { decay, .. } = self.shared.strategy {
            let now = self.shared.clock.now_nanos();
            let rtt = Duration::from_nanos(now.saturating_sub(self.started_nanos));
            self.endpoint.ewma.lock().observe(now, rtt, decay);
        }
        match outcome {
            Outcome::Success => {
                // Skip the store when already zero: keeps the endpoint's
                // cache line shared across cores on the happy path.
                if self.endpoint.consecutive_failures.load(Ordering::Relaxed) != 0 {
                    self.endpoint.consecutive_failures.store(0, Ordering::SeqCst);
                }
            }
            Outcome::Failure => {
                let now = self.shared.clock.now_nanos();
                LoadBalancer::record_failure(&self.shared, &self.endpoint, now);
            }
        }
    }
}

impl Drop for Pick {
    fn drop(&mut self) {
        if !self.finished {
            self.endpoint.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests;
