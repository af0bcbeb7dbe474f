//! Endpoint identity, per-endpoint live state and the peak-EWMA estimator.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// A stable endpoint identity (instance id, `host:port`, ...). Picks and
/// updates always name endpoints by id, never by position, so a concurrent
/// add or remove can never make a pick point at the wrong endpoint.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(Arc<str>);

impl EndpointId {
    /// An id from any string.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EndpointId {
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl From<String> for EndpointId {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// An endpoint as configured: id and weight (at least 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The identity.
    pub id: EndpointId,
    /// The relative weight for weighted strategies (0 is raised to 1).
    pub weight: u32,
}

impl Endpoint {
    /// An endpoint of weight 1.
    pub fn new(id: impl Into<EndpointId>) -> Self {
        Self { id: id.into(), weight: 1 }
    }

    /// An endpoint with a weight.
    pub fn weighted(id: impl Into<EndpointId>, weight: u32) -> Self {
        Self { id: id.into(), weight: weight.max(1) }
    }
}

/// A point-in-time view of one endpoint, for status pages and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    /// The identity.
    pub id: EndpointId,
    /// Configured weight.
    pub weight: u32,
    /// Requests in flight.
    pub pending: u64,
    /// Last health flag set by [`LoadBalancer::set_healthy`](super::LoadBalancer::set_healthy).
    pub healthy: bool,
    /// Remaining ejection time, if ejected.
    pub ejected_for: Option<Duration>,
    /// How many times outlier detection ejected it.
    pub times_ejected: u32,
    /// Current run of consecutive failures.
    pub consecutive_failures: u32,
}

/// Peak-EWMA round-trip estimate (Finagle / tower `PeakEwma`): a slower
/// response than the estimate replaces it at once (the peak), a faster one
/// is blended in with weight `1 − e^(−Δt/τ)`.
#[derive(Debug)]
pub(crate) struct Ewma {
    rtt_nanos: f64,
    stamp_nanos: u64,
}

impl Ewma {
    pub(crate) fn new(default_rtt: Duration, now: u64) -> Self {
        Self { rtt_nanos: default_rtt.as_nanos() as f64, stamp_nanos: now }
    }

    pub(crate) fn observe(&mut self, now: u64, rtt: Duration, tau: Duration) {
        let rtt = rtt.as_nanos() as f64;
        if rtt > self.rtt_nanos {
            self.rtt_nanos = rtt;
        } else {
            let elapsed = now.saturating_sub(self.stamp_nanos) as f64;
            let tau = (tau.as_nanos() as f64).max(1.0);
            let decay = (-elapsed / tau).exp();
            self.rtt_nanos = self.rtt_nanos * decay + rtt * (1.0 - decay);
        }
        self.stamp_nanos = self.stamp_nanos.max(now);
    }

    #[cfg(test)]
    pub(crate) fn rtt_nanos(&self) -> f64 {
        self.rtt_nanos
    }

    /// The estimate as read at `now`: decayed towards zero for the time
    /// since the last observation, as tower's `PeakEwma` does on every
    /// load read. Without it an endpoint that stopped being picked (after
    /// one slow response, or a restart) keeps its old peak and P2C never
    /// picks it again while others are faster; with it, idle endpoints
    /// drift back into contention and get re-measured.
    pub(crate) fn decayed_nanos(&self, now: u64, tau: Duration) -> f64 {
        let elapsed = now.saturating_sub(self.stamp_nanos) as f64;
        let tau = (tau.as_nanos() as f64).max(1.0);
        self.rtt_nanos * (-elapsed / tau).exp()
    }
}

/// Live state of one endpoint, shared by every snapshot that contains it
/// and by outstanding picks.
#[derive(Debug)]
pub(crate) struct EndpointState {
    pub(crate) id: EndpointId,
    pub(crate) pending: AtomicU64,
    pub(crate) healthy: AtomicBool,
    /// 0 = not ejected; otherwise the clock time (ns) when it may return.
    pub(crate) ejected_until: AtomicU64,
    pub(crate) times_ejected: AtomicU32,
    pub(crate) consecutive_failures: AtomicU32,
    pub(crate) removed: AtomicBool,
    pub(crate) ewma: Mutex<Ewma>,
}

impl EndpointState {
    pub(crate) fn new(id: EndpointId, default_rtt: Duration, now: u64) -> Self {
        Self {
            id,
            pending: AtomicU64::new(0),
            healthy: AtomicBool::new(true),
            ejected_until: AtomicU64::new(0),
            times_ejected: AtomicU32::new(0),
            consecutive_failures: AtomicU32::new(0),
            removed: AtomicBool::new(false),
            ewma: Mutex::new(Ewma::new(default_rtt, now)),
        }
    }

    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Peak-EWMA cost at `now`: the decayed RTT estimate scaled by the
    /// queue it would join.
    pub(crate) fn ewma_cost(&self, now: u64, tau: Duration) -> f64 {
        self.ewma.lock().decayed_nanos(now, tau) * (self.pending() + 1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_ewma_jumps_up_and_decays_down() {
        let tau = Duration::from_secs(10);
        let mut e = Ewma::new(Duration::from_millis(10), 0);
        e.observe(0, Duration::from_millis(500), tau);
        assert_eq!(e.rtt_nanos(), 500e6);
        // After one τ a fast response pulls the estimate 63 % of the way down.
        e.observe(10_000_000_000, Duration::from_millis(100), tau);
        let expected = 500e6 * (-1.0f64).exp() + 100e6 * (1.0 - (-1.0f64).exp());
        assert!((e.rtt_nanos() - expected).abs() < 1.0);
    }

    #[test]
    fn an_idle_estimate_decays_when_read() {
        let tau = Duration::from_secs(10);
        let mut e = Ewma::new(Duration::from_millis(10), 0);
        e.observe(0, Duration::from_millis(500), tau);
        assert_eq!(e.decayed_nanos(0, tau), 500e6);
        let later = e.decayed_nanos(20_000_000_000, tau);
        assert!((later - 500e6 * (-2.0f64).exp()).abs() < 1.0, "{later}");
        assert_eq!(e.rtt_nanos(), 500e6, "reading changes nothing");
    }
}
