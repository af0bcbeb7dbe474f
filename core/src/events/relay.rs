//! The outbox relay: moves committed events from the outbox to the bus.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Dispatcher, Event, EventPublisher, OutboxStore, continue_trace, propagator};
use crate::clock::Clock;
use crate::error::{Error, Result};

/// Publishes the outbox. Several relays may run at once (one per worker
/// replica): leases keep them from publishing the same entry concurrently,
/// and an entry is marked published only after the bus accepted it.
///
/// Ordering: one relay publishes a claimed batch in `seq` order; across
/// relays (or after a failed publish) order is not guaranteed, which
/// at-least-once consumers tolerate anyway.
#[derive(Clone)]
pub struct Relay {
    outbox: Arc<dyn OutboxStore>,
    publisher: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
    lease: Duration,
    lag: Option<Arc<dyn Fn(Duration) + Send + Sync>>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay").field("lease", &self.lease).finish_non_exhaustive()
    }
}

/// The `<type> publish` spans (semantic conventions for messaging) of the
/// traced events of a batch; none when no propagator is installed.
fn publish_spans(events: &[Event]) -> Vec<tracing::Span> {
    if propagator().is_none() {
        return Vec::new();
    }
    events
        .iter()
        .filter_map(|event| {
            let parent = event.trace_context()?;
            let span = tracing::info_span!(
                parent: None,
                "event_publish",
                otel.name = format!("{} publish", event.event_type),
                otel.kind = "producer",
                messaging.operation.r#type = "send",
                messaging.operation.name = "publish",
                messaging.message.id = %event.id,
                cloudevents.event_id = %event.id,
                cloudevents.event_type = event.event_type.as_str(),
            );
            continue_trace(&span, &[&parent]);
            Some(span)
        })
        .collect()
}

impl Relay {
    /// The default lease on claimed entries: long enough for a slow
    /// publish, short enough that a crashed relay's batch is soon retried.
    pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

    /// A relay from `outbox` to `publisher`.
    pub fn new(outbox: Arc<dyn OutboxStore>, publisher: Arc<dyn EventPublisher>, clock: Arc<dyn Clock>) -> Self {
        Self { outbox, publisher, clock, lease: Self::DEFAULT_LEASE, lag: None }
    }

    /// Reports, on every claim, how far the relay trails: the age of the
    /// oldest event claimed (zero for an empty claim). Events carry no
    /// commit time, so this counts from `occurred_at`, set just before the
    /// commit. For metrics.
    #[must_use]
    pub fn observe_lag(mut self, observe: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.lag = Some(Arc::new(observe));
        self
    }

    /// Sets how long a claimed batch stays reserved for this relay.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Claims up to `limit` entries, publishes them and marks them
    /// published; returns how many were published (0: nothing to do).
    ///
    /// # Errors
    /// The publisher's or the store's error. A failed publish releases the
    /// batch so the next call retries it; nothing is marked published.
    pub async fn relay_once(&self, limit: usize) -> Result<usize> {
        let now = self.clock.now();
        let lease =
            chrono::Duration::from_std(self.lease).map_err(|e| Error::internal("relay lease out of range", e))?;
        let batch = self.outbox.claim(limit, now, now + lease).await?;
        if let Some(observe) = &self.lag {
            let oldest = batch.iter().map(|e| e.event.occurred_at).min();
            // Never negative: clocks of different hosts.
            observe(oldest.and_then(|t| (now - t).to_std().ok()).unwrap_or_default());
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let seqs: Vec<u64> = batch.iter().map(|e| e.seq).collect();
        let events: Vec<_> = batch.into_iter().map(|e| e.event).collect();
        // One publish span per traced event, in the trace of the request
        // that caused it; they end when the bus has accepted the batch.
        let _publish_spans = publish_spans(&events);
        if let Err(err) = self.publisher.publish(&events).await {
            tracing::warn!(error = %err, batch = seqs.len(), "outbox publish failed; releasing the batch");
            // Best effort: if the release fails too, the lease runs out.
            if let Err(release_err) = self.outbox.release(&seqs).await {
                tracing::warn!(error = %release_err, "releasing the outbox batch failed");
            }
            return Err(err);
        }
        self.outbox.mark_published(&seqs).await?;
        tracing::debug!(published = seqs.len(), "outbox batch published");
        Ok(seqs.len())
    }

    /// Calls [`Relay::relay_once`] until the outbox has nothing left to
    /// claim; returns the total published.
    ///
    /// # Errors
    /// As [`Relay::relay_once`].
    pub async fn drain(&self, batch: usize) -> Result<usize> {
        let mut total = 0;
        loop {
            let n = self.relay_once(batch).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }
}

/// Relays the outbox and dispatches group `consumer` until neither has
/// anything due (handlers commit new events, which need relaying in turn);
/// returns how many deliveries were taken. Deliveries waiting out a retry
/// delay are left for a later call. This is the in-process worker of tests
/// and single-process deployments.
///
/// # Errors
/// The relay's or the dispatcher's own errors (handler failures are retried
/// or dead-lettered, not returned).
pub async fn pump(relay: &Relay, dispatcher: &Dispatcher, consumer: &str, batch: usize) -> Result<usize> {
    let mut taken = 0;
    loop {
        let relayed = relay.drain(batch).await?;
        let dispatched = dispatcher.drain(consumer).await?;
        taken += dispatched;
        if relayed == 0 && dispatched == 0 {
            return Ok(taken);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::events::{Event, MockEventPublisher, MockOutboxStore, OutboxEntry, UserRegistered};
    use crate::ids::UserId;
    use mockall::predicate::eq;

    fn entry(seq: u64, clock: &ManualClock) -> OutboxEntry {
        OutboxEntry {
            seq,
            event: Event::new(&UserRegistered { user_id: UserId::new(), role: "customer".into() }, clock.now()),
        }
    }

    #[tokio::test]
    async fn publishes_the_claimed_batch_then_marks_it_published() {
        let clock = ManualClock::at_epoch_secs(1_000);
        let batch = vec![entry(1, &clock), entry(2, &clock)];
        let ids: Vec<_> = batch.iter().map(|e| e.event.id).collect();
        let now = clock.now();
        let mut outbox = MockOutboxStore::new();
        outbox
            .expect_claim()
            .withf(move |limit, at, until| *limit == 10 && *at == now && *until == now + chrono::Duration::seconds(30))
            .times(1)
            .return_once(move |_, _, _| Ok(batch));
        outbox.expect_mark_published().with(eq(vec![1u64, 2])).times(1).returning(|_| Ok(()));
        outbox.expect_release().never();
        let mut publisher = MockEventPublisher::new();
        publisher
            .expect_publish()
            .withf(move |events| events.iter().map(|e| e.id).collect::<Vec<_>>() == ids)
            .times(1)
            .returning(|_| Ok(()));
        let relay = Relay::new(Arc::new(outbox), Arc::new(publisher), Arc::new(clock));
        assert_eq!(relay.relay_once(10).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_failed_publish_releases_the_batch_and_marks_nothing() {
        let clock = ManualClock::at_epoch_secs(1_000);
        let batch = vec![entry(7, &clock)];
        let mut outbox = MockOutboxStore::new();
        outbox.expect_claim().return_once(move |_, _, _| Ok(batch));
        outbox.expect_mark_published().never();
        outbox.expect_release().with(eq(vec![7u64])).times(1).returning(|_| Ok(()));
        let mut publisher = MockEventPublisher::new();
        publisher.expect_publish().returning(|_| Err(Error::unavailable("bus", std::io::Error::other("down"))));
        let relay = Relay::new(Arc::new(outbox), Arc::new(publisher), Arc::new(clock));
        assert_eq!(relay.relay_once(10).await.unwrap_err().code(), "unavailable");
    }

    #[tokio::test]
    async fn an_empty_outbox_publishes_nothing() {
        let clock = ManualClock::at_epoch_secs(1_000);
        let mut outbox = MockOutboxStore::new();
        outbox.expect_claim().returning(|_, _, _| Ok(vec![]));
        let mut publisher = MockEventPublisher::new();
        publisher.expect_publish().never();
        let relay = Relay::new(Arc::new(outbox), Arc::new(publisher), Arc::new(clock));
        assert_eq!(relay.drain(10).await.unwrap(), 0);
    }
}
