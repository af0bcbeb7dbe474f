//! `grpc.health.v1` whose serving status follows the backends.
//!
//! [`HealthMonitor::check`] runs every readiness probe of the marketplace
//! (`market.probes()`: the database, …) and publishes `SERVING` when
//! all answer within the timeout, `NOT_SERVING` otherwise, for the whole
//! server (service `""`) and for each `bazaar.v1` service. [`serve`] checks
//! once before accepting calls, then [`HealthMonitor::run`] re-checks on an
//! interval in a background task. The health and reflection services
//! themselves need no backend and are not listed.
//!
//! [`serve`]: crate::serve

use std::fmt;
use std::time::Duration;

use bazaar_core::health::{PROBE_TIMEOUT, Probe, check_probes};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::pb;

/// The services whose status follows the backends, besides `""`.
pub const SERVICES: [&str; 4] = [
    pb::licensing_service_server::SERVICE_NAME,
    pb::catalog_service_server::SERVICE_NAME,
    pb::order_service_server::SERVICE_NAME,
    pb::notification_service_server::SERVICE_NAME,
];

/// Probes the backends and publishes the result to the health service.
#[derive(Clone)]
pub struct HealthMonitor {
    reporter: HealthReporter,
    probes: Vec<Probe>,
    probe_timeout: Duration,
}

impl fmt::Debug for HealthMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.probes.iter().map(|p| p.name).collect();
        f.debug_struct("HealthMonitor").field("probes", &names).field("probe_timeout", &self.probe_timeout).finish()
    }
}

impl HealthMonitor {
    /// How long one probe may take before it counts as failed.
    pub const DEFAULT_PROBE_TIMEOUT: Duration = PROBE_TIMEOUT;

    /// A monitor publishing to `reporter` the outcome of `probes`.
    pub fn new(reporter: HealthReporter, probes: Vec<Probe>) -> Self {
        Self { reporter, probes, probe_timeout: Self::DEFAULT_PROBE_TIMEOUT }
    }

    /// Uses `timeout` per probe instead of [`Self::DEFAULT_PROBE_TIMEOUT`].
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// The reporter the health service reads (to add statuses of your own).
    pub fn reporter(&self) -> &HealthReporter {
        &self.reporter
    }

    /// Runs every probe once and publishes the result; returns it.
    pub async fn check(&self) -> ServingStatus {
        let results = check_probes(&self.probes, self.probe_timeout).await;
        let status = if results.iter().all(|(_, outcome)| outcome.is_ok()) {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.publish(status).await;
        status
    }

    /// Checks every `every` until the task is dropped or aborted; logs each change.
    pub async fn run(self, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = None;
        loop {
            ticker.tick().await;
            let now = self.check().await;
            if last.is_some_and(|l| l != now) {
                tracing::info!(status = %now, "gRPC serving status changed");
            }
            last = Some(now);
        }
    }

    async fn publish(&self, status: ServingStatus) {
        self.reporter.set_service_status("", status).await;
        for name in SERVICES {
            self.reporter.set_service_status(name, status).await;
        }
    }
}
