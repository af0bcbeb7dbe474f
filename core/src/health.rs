//! Readiness probes: one named check per backend (database, bus, …), run
//! concurrently under a timeout by `/health/ready` and the gRPC health
//! service.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::Result;

/// How long one readiness probe may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A named readiness check.
#[derive(Clone)]
pub struct Probe {
    /// What is checked (`database`, `bus`, …).
    pub name: &'static str,
    check: Arc<dyn Fn() -> BoxFuture<'static, Result<()>> + Send + Sync>,
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Probe {
    /// A check that runs `check` each time it is asked.
    pub fn new(name: &'static str, check: impl Fn() -> BoxFuture<'static, Result<()>> + Send + Sync + 'static) -> Self {
        Self { name, check: Arc::new(check) }
    }

    /// Runs the check.
    ///
    /// # Errors
    /// The backend's error when it does not answer.
    pub async fn check(&self) -> Result<()> {
        (self.check)().await
    }
}

/// Runs every probe at once, each within `timeout`; returns each probe's
/// name with `Err(cause)` when it failed. Failures are logged here, so
/// health endpoints only choose what to show (causes can carry host names
/// and stay out of responses).
pub async fn check_probes(probes: &[Probe], timeout: Duration) -> Vec<(&'static str, Result<(), String>)> {
    futures::future::join_all(probes.iter().map(|probe| async move {
        let outcome = match tokio::time::timeout(timeout, probe.check()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
        };
        if let Err(cause) = &outcome {
            tracing::warn!(probe = probe.name, cause, "readiness probe failed");
        }
        (probe.name, outcome)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn failures_and_timeouts_are_named_and_passes_are_ok() {
        let probes = [
            Probe::new("database", || Box::pin(async { Ok(()) })),
            Probe::new("bus", || Box::pin(async { Err(crate::Error::unavailable("bus", "refused")) })),
            Probe::new("slow", || Box::pin(std::future::pending())),
        ];
        let results = check_probes(&probes, Duration::from_millis(20)).await;
        assert_eq!(results[0], ("database", Ok(())));
        assert_eq!(results[1].0, "bus");
        assert!(results[1].1.as_ref().unwrap_err().contains("unavailable"));
        assert_eq!(results[2], ("slow", Err("no answer within 20 ms".into())));
    }
}
