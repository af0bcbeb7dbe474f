//! Outlier detection settings (Envoy's consecutive-5xx detector).

use std::time::Duration;

/// When an endpoint is ejected and for how long.
///
/// After `consecutive_failures` failures in a row an endpoint is ejected for
/// `base_ejection_time × times ejected`, capped at `max_ejection_time`, then
/// re-admitted automatically when that time has passed (checked lazily on
/// the next pick). At most `max_ejection_percent` % of the endpoints are
/// ejected at once, rounded down but never below one endpoint (Envoy's
/// rule: "will eject at least one host regardless of the value"). The
/// ejection multiplier does not decay in this version: an endpoint that
/// keeps flapping stays at the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutlierConfig {
    /// Failures in a row that eject (Envoy default 5).
    pub consecutive_failures: u32,
    /// Ejection time per time ejected (default 30 s).
    pub base_ejection_time: Duration,
    /// Upper bound of one ejection (default 300 s).
    pub max_ejection_time: Duration,
    /// Largest share of endpoints ejected at once, in percent (default 10).
    pub max_ejection_percent: u32,
}

impl Default for OutlierConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
        }
    }
}

impl OutlierConfig {
    /// How long the `times`-th ejection lasts.
    pub fn ejection_time(&self, times: u32) -> Duration {
        self.base_ejection_time.saturating_mul(times.max(1)).min(self.max_ejection_time)
    }

    /// How many of `endpoints` may be ejected at once.
    pub fn max_ejected(&self, endpoints: usize) -> usize {
        (endpoints * self.max_ejection_percent.min(100) as usize / 100).max(1)
    }
}
