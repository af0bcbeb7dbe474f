//! An [`OutboxStore`] decorator that reports the relay lag on every claim.
//!
//! The core's outbox entries carry no commit time, so the lag is measured
//! from the oldest claimed event's `occurred_at`, which the services set
//! just before committing: it differs from the commit time only by the
//! length of that transaction.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bazaar_core::Result;
use bazaar_core::clock::Timestamp;
use bazaar_core::events::{OutboxEntry, OutboxStore};

/// Wraps the marketplace's outbox; every call goes through unchanged.
pub(crate) struct LagMeter {
    inner: Arc<dyn OutboxStore>,
}

impl fmt::Debug for LagMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LagMeter").finish_non_exhaustive()
    }
}

impl LagMeter {
    pub(crate) fn new(inner: Arc<dyn OutboxStore>) -> Self {
        Self { inner }
    }
}

/// Seconds from the oldest entry's event to `now`; 0 for an empty claim
/// (nothing trails) and never negative (clocks of different hosts).
pub(crate) fn lag_seconds(batch: &[OutboxEntry], now: Timestamp) -> f64 {
    batch
        .iter()
        .map(|e| e.event.occurred_at)
        .min()
        .map_or(0.0, |oldest| (now - oldest).to_std().map_or(0.0, |d| d.as_secs_f64()))
}

#[async_trait]
impl OutboxStore for LagMeter {
    async fn claim(&self, limit: usize, now: Timestamp, lease_until: Timestamp) -> Result<Vec<OutboxEntry>> {
        let batch = self.inner.claim(limit, now, lease_until).await?;
        crate::metrics::relay_lag(lag_seconds(&batch, now));
        Ok(batch)
    }

    async fn mark_published(&self, seqs: &[u64]) -> Result<()> {
        self.inner.mark_published(seqs).await
    }

    async fn release(&self, seqs: &[u64]) -> Result<()> {
        self.inner.release(seqs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bazaar_core::clock::{Clock, ManualClock};
    use bazaar_core::events::{Event, UserRegistered};
    use bazaar_core::ids::UserId;

    fn entry(seq: u64, at: Timestamp) -> OutboxEntry {
        OutboxEntry { seq, event: Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, at) }
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_entry() {
        let clock = ManualClock::at_epoch_secs(1_000);
        let older = clock.now();
        clock.advance(chrono::Duration::milliseconds(1_500));
        let newer = clock.now();
        clock.advance(chrono::Duration::milliseconds(500));
        let batch = vec![entry(2, newer), entry(1, older)];
        assert_eq!(lag_seconds(&batch, clock.now()), 2.0);
    }

    #[test]
    fn an_empty_claim_or_a_future_event_is_no_lag() {
        let clock = ManualClock::at_epoch_secs(1_000);
        assert_eq!(lag_seconds(&[], clock.now()), 0.0);
        let ahead = clock.now() + chrono::Duration::seconds(3);
        assert_eq!(lag_seconds(&[entry(1, ahead)], clock.now()), 0.0);
    }
}
