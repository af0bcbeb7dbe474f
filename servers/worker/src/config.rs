//! [`WorkerConfig`]: which loops a [`Worker`](crate::Worker) runs and how
//! eagerly they poll.

use std::time::Duration;

use bazaar_core::events::Relay;
use bazaar_core::marketplace::Marketplace;

/// What a [`Worker`](crate::Worker) runs.
///
/// Every replica of `bazaar worker` may run the relay: outbox leases keep
/// two relays from holding the same entry, so extra relays only add
/// throughput and failover. Consumers of one group compete for its
/// messages, across tasks and across processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Run the outbox relay loop.
    pub relay: bool,
    /// How many consumer loops (tasks) run the handlers; 0 for a relay-only
    /// worker.
    pub consumers: usize,
    /// Deliveries a consumer loop takes per step (at least 1): they are
    /// handled concurrently and settled with one inbox read, one inbox
    /// write and one ack flush, on buses that hand out several per request
    /// (JetStream); others hand out one at a time whatever this says. The
    /// handlers also get the step's events together
    /// (`EventHandler::handle_batch`), so a larger step costs fewer store
    /// round trips per event; 32 measured better than 8 under load
    /// (`benches/README.md`).
    pub batch: usize,
    /// Outbox entries claimed per relay step (at least 1).
    pub relay_batch: usize,
    /// How long the relay sleeps when the outbox was empty, and how long a
    /// consumer waits when the bus had nothing due (at least 1 ms). It bounds
    /// the pickup latency of an idle worker; a busy one never sleeps.
    pub idle_poll: Duration,
    /// How long a claimed outbox batch stays reserved for this relay; a
    /// relay killed mid-batch delays those entries by at most this much.
    pub relay_lease: Duration,
    /// Run the vendor webhook delivery loop (when the marketplace has a
    /// webhook transport). Replicas share the delivery queue through its
    /// leases, so any number may run it.
    pub webhooks: bool,
    /// How long the delivery loop sleeps when nothing was due (at least
    /// 1 ms): the pickup latency of a new delivery or a retry.
    pub webhook_poll: Duration,
    /// The consumer group: the inbox keys (`"{group}/{handler}"`) and dead
    /// letters are recorded under it, so every replica of one deployment
    /// must use the same name.
    pub group: String,
}

impl Default for WorkerConfig {
    /// The relay, 4 consumers taking up to 32 deliveries a step, relay
    /// batches of 100, a 25 ms idle poll, the core's default lease, the
    /// webhook delivery loop polling every 250 ms, group
    /// [`Marketplace::CONSUMER`].
    fn default() -> Self {
        Self {
            relay: true,
            consumers: 4,
            batch: 32,
            relay_batch: Marketplace::RELAY_BATCH,
            idle_poll: Duration::from_millis(25),
            relay_lease: Relay::DEFAULT_LEASE,
            webhooks: true,
            webhook_poll: Duration::from_millis(250),
            group: Marketplace::CONSUMER.to_owned(),
        }
    }
}

impl WorkerConfig {
    /// The same settings with out-of-range values raised to their minimum
    /// (a zero batch or idle poll would spin without doing anything useful).
    pub(crate) fn normalized(mut self) -> Self {
        self.batch = self.batch.max(1);
        self.relay_batch = self.relay_batch.max(1);
        self.idle_poll = self.idle_poll.max(Duration::from_millis(1));
        self.webhook_poll = self.webhook_poll.max(Duration::from_millis(1));
        self.relay_lease = self.relay_lease.max(Duration::from_secs(1));
        if self.group.trim().is_empty() {
            self.group = Marketplace::CONSUMER.to_owned();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_are_raised_to_usable_minimums() {
        let c = WorkerConfig {
            batch: 0,
            relay_batch: 0,
            idle_poll: Duration::ZERO,
            relay_lease: Duration::ZERO,
            group: " ".into(),
            ..WorkerConfig::default()
        }
        .normalized();
        assert_eq!(c.batch, 1);
        assert_eq!(c.relay_batch, 1);
        assert_eq!(c.idle_poll, Duration::from_millis(1));
        assert_eq!(c.relay_lease, Duration::from_secs(1));
        assert_eq!(c.group, Marketplace::CONSUMER);
    }

    #[test]
    fn defaults_share_the_marketplace_group() {
        let c = WorkerConfig::default();
        assert_eq!(c.clone().normalized(), c, "the defaults are already in range");
        assert_eq!(c.group, Marketplace::CONSUMER, "replays and pump() use the same inbox keys");
    }
}
